// Kernel capabilities, probed once at daemon start and passed down as a value (DESIGN.md §3).
//
// Code never re-probes: it branches on the Features it was given, so tests can exercise every
// path (cgroup v1/v2/hybrid, IPVS or not) by constructing the value they need.
#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace shoal::kernel {

enum class CgroupMode {
  kV1,      // only v1 controller hierarchies
  kHybrid,  // v1 controllers plus a (usually empty) v2 tree at /sys/fs/cgroup/unified
  kV2,      // unified hierarchy mounted at /sys/fs/cgroup
};

const char* CgroupModeName(CgroupMode mode);

struct Features {
  std::string kernel_release;  // uname -r
  int kernel_major = 0;
  int kernel_minor = 0;
  CgroupMode cgroup_mode = CgroupMode::kV1;
  bool clone3 = false;              // clone3(2), Linux 5.3
  bool clone_into_cgroup = false;   // CLONE_INTO_CGROUP, Linux 5.7, needs cgroup v2
  bool openat2 = false;             // openat2(2) with RESOLVE_IN_ROOT, Linux 5.6
  bool cgroup_kill = false;         // cgroup.kill, Linux 5.14, v2 only
  bool ipvs = false;                // IPVS usable (loaded, or its module is installed)
  bool nftables = false;            // nf_tables netlink answers
  bool user_namespaces = false;     // unprivileged or privileged user namespaces allowed
  bool bpf = false;                 // bpf(2) usable
  std::string ToString() const;
};

struct ProbeOptions {
  std::string cgroup_root = "/sys/fs/cgroup";
  std::string proc_root = "/proc";
  std::string modules_root = "/lib/modules";
};

// Probes the running kernel. Errors only when /proc or the cgroup root cannot be read.
absl::StatusOr<Features> ProbeFeatures(const ProbeOptions& options = {});

// Pure helpers, exposed for tests.
// Classifies from the filesystem magic of `<root>` and, if present, `<root>/unified`
// (0 when absent).
absl::StatusOr<CgroupMode> ClassifyCgroupMode(long root_magic, long unified_magic);
// Parses "6.18.44-fc-v669" -> {6, 18}.
bool ParseKernelRelease(const std::string& release, int* major, int* minor);

}  // namespace shoal::kernel
