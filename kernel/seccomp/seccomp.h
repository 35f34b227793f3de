// Seccomp BPF for containers: compile Docker's default profile for a capability set with
// libseccomp once, cache it, and load it in the setup child with one raw syscall.
//
// Contract: CompileDockerDefault() is pure (no process state changes); SeccompCache is
// thread-safe; LoadFilter() makes raw syscalls only (safe after fork of a threaded process).
#pragma once

#include <linux/filter.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "kernel/caps/caps.h"

namespace shoal::kernel {

struct BpfProgram {
  std::vector<sock_filter> insns;
  // Largest x86_64 syscall number the profile names; larger ones return ENOSYS.
  int max_named_syscall = 0;
};

// Builds Docker's default profile for `caps` (rules gated on CAP_SYS_ADMIN etc. follow the
// container's bounding set, as moby's setupSeccomp does). SCMP_FLTATR_CTL_NNP is off: the
// caller decides about no_new_privs. A runc-style prefix returns ENOSYS for x86_64 syscall
// numbers above every named syscall.
absl::StatusOr<BpfProgram> CompileDockerDefault(CapSet caps);

// Compiled programs keyed by capability set; each is compiled at most once per process.
class SeccompCache {
 public:
  absl::StatusOr<std::shared_ptr<const BpfProgram>> DockerDefault(CapSet caps);
  int compilations() const;

 private:
  mutable absl::Mutex mu_;
  absl::flat_hash_map<CapSet, std::shared_ptr<const BpfProgram>> cache_ ABSL_GUARDED_BY(mu_);
  int compilations_ ABSL_GUARDED_BY(mu_) = 0;
};

// seccomp(SECCOMP_SET_MODE_FILTER, SPEC_ALLOW) with a fallback to no flags on EINVAL.
// Needs no_new_privs or CAP_SYS_ADMIN. Returns 0 or -errno.
int LoadFilter(const sock_filter* insns, unsigned short count);

}  // namespace shoal::kernel
