// Task -> runtime::ContainerSpec (pure): the image's entrypoint/cmd/env/workdir/user merged
// with the task's container spec the way Docker does it, resources, mounts, ulimits,
// capabilities. Errors are INVALID_ARGUMENT naming the task spec field.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "api/objects.pb.h"
#include "runtime/images/manifest.h"
#include "runtime/spec.h"

namespace shoal::agent {

namespace api = ::shoal::api::v1;

struct SpecInputs {
  const api::Task* task = nullptr;
  const runtime::images::ImageConfig* image = nullptr;
  std::vector<std::string> lower_dirs;  // top-most first
  std::string rootfs_dir;               // empty overlay mountpoint
  std::string upper_dir;
  std::string work_dir;
  std::string init_path;    // shoal-init, used when the spec asks for an init
  std::string volumes_dir;  // named volumes live in <volumes_dir>/<name>
  // The image's /etc/passwd and /etc/group (may be empty), for user names.
  std::string passwd;
  std::string group;
  // Files prepared by the agent (secrets, configs, /etc/hosts, ...), mounted after the spec's.
  std::vector<runtime::MountSpec> extra_mounts;
};

absl::StatusOr<runtime::ContainerSpec> BuildContainerSpec(const SpecInputs& in);

// "SIGTERM", "TERM", "15" -> 15. INVALID_ARGUMENT otherwise.
absl::StatusOr<int> ParseSignal(const std::string& name);

// "uid[:gid]", "name[:group]" against passwd/group text. Empty user: root.
struct UserIds {
  uint32_t uid = 0;
  uint32_t gid = 0;
};
absl::StatusOr<UserIds> ResolveUser(const std::string& user, const std::string& passwd,
                                    const std::string& group);

}  // namespace shoal::agent
