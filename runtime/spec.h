// Container and process specs for the runtime library (DESIGN.md §4). Plain structs: the agent
// and the OCI CLI translate their own formats into these.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "kernel/cgroup/plan.h"
#include "kernel/ns/ns.h"
#include "kernel/seccomp/profile.h"

namespace shoal::runtime {

struct Rlimit {
  std::string type;  // "RLIMIT_NOFILE" or "nofile"
  uint64_t soft = 0;
  uint64_t hard = 0;
};

struct ProcessSpec {
  std::vector<std::string> args;  // args[0] is looked up in PATH when it has no '/'
  std::vector<std::string> env;   // "K=V"; PATH/HOSTNAME/HOME get Docker's defaults if absent
  std::string cwd = "/";
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::vector<uint32_t> additional_gids;
  // Effective = permitted = bounding = Docker's 14 defaults + cap_add - cap_drop ("ALL" ok).
  std::vector<std::string> cap_add;
  std::vector<std::string> cap_drop;
  bool no_new_privileges = true;
  bool seccomp = true;  // Docker's default profile; false = unconfined
  // With `seccomp`: this profile (OCI linux.seccomp, taken literally) instead of Docker's
  // default. Exec'd processes inherit the container process's profile unless they set one.
  std::optional<kernel::SeccompProfile> seccomp_profile;
  std::vector<Rlimit> rlimits;
  // A terminal (docker -t): fds 0/1/2 are a new pty slave from the container's own devpts
  // (/dev/pts/N inside), the process's controlling terminal; the Stdio given is not used. The
  // master goes to the caller (Container::TakeConsole, Process::TakeConsole); write it to
  // feed input, read it for output (EIO once every holder of the slave is gone).
  bool terminal = false;
  uint16_t terminal_rows = 0;  // initial window size (0 = unknown); ResizeTerminal() later
  uint16_t terminal_cols = 0;
};

struct MountSpec {
  std::string destination;           // absolute, inside the container
  std::string type = "bind";         // "bind" or "tmpfs"
  std::string source;                // bind: absolute host path (file or directory)
  std::vector<std::string> options;  // "ro", "nosuid", "size=64m", "rbind", ...
};

// An overlayfs of image layers, mounted by the container's setup child inside its own mount
// namespace (so it disappears with the container and never shows on the host).
struct OverlayRootfs {
  std::vector<std::string> lower_dirs;  // top-most layer first
  std::string upper_dir;                // empty: read-only overlay (needs >= 2 lower dirs)
  std::string work_dir;                 // same filesystem as upper_dir
};

struct ContainerSpec {
  std::string id;      // [A-Za-z0-9][A-Za-z0-9_.-]{0,127}
  std::string rootfs;  // absolute path of a directory; with `overlay`, its (empty) mountpoint
  OverlayRootfs overlay;
  bool readonly_rootfs = false;
  std::string hostname;  // default: first 12 characters of the id
  ProcessSpec process;
  std::string netns_path;  // join this network namespace (e.g. /run/netns/x); empty = new one
  std::vector<MountSpec> mounts;
  kernel::CgroupResources resources;
  bool mask_paths = true;  // Docker's masked and read-only /proc and /sys paths
  // Host path of a static init (shoal-init); when set it is bind-mounted read-only at
  // /dev/init and runs as PID 1 in front of process.args, reaping orphans (`docker --init`).
  std::string init_path;
  // Non-empty: the container gets its own user namespace with these maps (both must be set,
  // each must map container id 0 and the process's ids). Root inside is then an ordinary
  // host user: capabilities hold over the container's namespaces only, device nodes are
  // bind-mounted from the host, /sys is a read-only bind of the host's when the network
  // namespace is joined. The rootfs must be usable by the mapped root (e.g. owned by it).
  std::vector<kernel::IdMapping> uid_mappings;
  std::vector<kernel::IdMapping> gid_mappings;
  bool user_namespace() const { return !uid_mappings.empty() || !gid_mappings.empty(); }
};

// Borrowed descriptors for the container's stdio; -1 = /dev/null.
struct Stdio {
  int in = -1;
  int out = -1;
  int err = -1;
};

// Checks everything that can be checked without side effects; errors name the field
// ("mounts[1].destination: ..."). Rootfs-relative checks (symlink escapes) included.
absl::Status ValidateSpec(const ContainerSpec& spec);
absl::Status ValidateProcess(const ProcessSpec& process, const std::string& prefix);
absl::Status ValidateId(const std::string& id);
// Ranges, overlaps (inside and outside), at most 340 lines, id 0 and the process's ids mapped.
absl::Status ValidateIdMappings(const ContainerSpec& spec);

// RLIMIT_* number for "RLIMIT_NOFILE"/"nofile"; -1 when unknown.
int RlimitResource(const std::string& name);

}  // namespace shoal::runtime
