// What shoal-runtime's commands share: the global runc flags (and the error path that honours
// --log), the runtime options for a cgroup parent, loading a bundle's config.json, and the
// small file writes create and run both do. Only the shoal-runtime executable uses this.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "kernel/cgroup/cgroup.h"
#include "runtime/container.h"
#include "runtime/oci/config.h"

namespace shoal::runtime::oci {

// Global runc flags, accepted before the command.
struct Globals {
  std::string root = "/run/shoal-runtime";      // --root: state directories <root>/<id>
  std::string cgroup_parent = "shoal-runtime";  // --cgroup-parent: when there is no cgroupsPath
  std::string log, log_format;                  // --log, --log-format (json)
  bool systemd_cgroup = false, debug = false;

  std::string StateDir(const std::string& id) const { return root + "/" + id; }
  // Prints "shoal-runtime: <message>" to stderr and appends it to --log (a JSON line with
  // --log-format json: where containerd-shim reads a runtime's errors). Returns 1, the exit code.
  int Fail(const absl::Status& s) const;
};

// Runtime options for containers under `cgroup_parent` (cgroup mode probed from the kernel).
RuntimeOptions Options(const std::string& cgroup_parent);
// The cgroup configuration (mode) for opening an existing container's cgroup.
kernel::CgroupConfig CgroupConfigFor();
// Compiled seccomp programs are kept under the root: docker passes the same profile for every
// container, and every create/run/exec is a new process.
void UseSeccompDiskCache(Runtime& rt, const std::string& root);

// The bundle path made absolute, normalized, without a trailing slash.
std::string AbsBundle(const std::string& bundle);
// Parses <bundle>/config.json for container `id`; without linux.cgroupsPath the container goes
// under --cgroup-parent (--systemd-cgroup is refused then: only cgroupfs paths are supported).
absl::StatusOr<OciBundle> LoadBundle(const std::string& bundle, const std::string& id,
                                     const Globals& g);

// --pid-file: written when given (errors ignored, as before the container is handed over).
void WritePidFile(const std::string& path, pid_t pid);
// process.oomScoreAdj into /proc/<pid>/oom_score_adj (nothing when unset).
absl::Status WriteOomScoreAdj(pid_t pid, const std::optional<int>& adj);
// The current time, RFC 3339 (OCI state "created").
std::string Now();

}  // namespace shoal::runtime::oci
