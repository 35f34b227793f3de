// Seccomp BPF for containers: compile a profile (OCI `linux.seccomp`, profile.h) or Docker's
// default profile for a capability set with libseccomp once, cache it, and load it in the
// setup child with one raw syscall.
//
// Contract: CompileProfile()/CompileDockerDefault() are pure (no process state changes);
// SeccompCache is thread-safe; LoadFilter() makes raw syscalls only (safe after fork of a
// threaded process).
#pragma once

#include <linux/filter.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "kernel/caps/caps.h"
#include "kernel/seccomp/profile.h"

namespace shoal::kernel {

struct BpfProgram {
  std::vector<sock_filter> insns;
  // Largest x86_64 syscall number the profile names; larger ones return ENOSYS when the
  // ENOSYS prefix is present (0 = no prefix).
  int max_named_syscall = 0;
  // seccomp(2) flags. !flags_explicit: SECCOMP_FILTER_FLAG_SPEC_ALLOW, retried with none on
  // EINVAL; explicit: exactly `flags` (the profile's OCI `flags`).
  unsigned int flags = 0;
  bool flags_explicit = false;
};

// Compiles `profile` (ValidateSeccompProfile() first; errors name the field relative to the
// profile). SCMP_FLTATR_CTL_NNP is off: the caller decides about no_new_privs. Unless the
// default action allows (ALLOW, LOG) or already is ERRNO(ENOSYS), a runc-style prefix
// (runc PR #2750) returns ENOSYS for x86_64 syscall numbers above every syscall the profile
// names, so glibc can fall back from syscalls newer than the profile.
absl::StatusOr<BpfProgram> CompileProfile(const SeccompProfile& profile);

// CompileProfile(DockerDefaultProfile(caps)): rules gated on CAP_SYS_ADMIN etc. follow the
// container's bounding set, as moby's setupSeccomp does.
absl::StatusOr<BpfProgram> CompileDockerDefault(CapSet caps);

// Compiled programs, each compiled at most once per process: Docker's default keyed by
// capability set, other profiles by their content. With a disk cache directory, programs
// are also kept on disk under a SHA-256 of (libseccomp version, cache format, profile), so
// separate processes (one `shoal-runtime create` per container) compile a profile once.
class SeccompCache {
 public:
  absl::StatusOr<std::shared_ptr<const BpfProgram>> DockerDefault(CapSet caps);
  absl::StatusOr<std::shared_ptr<const BpfProgram>> Get(const SeccompProfile& profile);
  // Created (0700) on first use. Empty = memory only (the default).
  void SetDiskCacheDir(std::string dir);
  // libseccomp compilations done by this object (memory and disk hits excluded).
  int compilations() const;

 private:
  absl::StatusOr<std::shared_ptr<const BpfProgram>> Lookup(const SeccompProfile& profile)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  absl::flat_hash_map<CapSet, std::shared_ptr<const BpfProgram>> docker_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<SeccompProfile, std::shared_ptr<const BpfProgram>> profiles_
      ABSL_GUARDED_BY(mu_);
  std::string disk_dir_ ABSL_GUARDED_BY(mu_);
  int compilations_ ABSL_GUARDED_BY(mu_) = 0;
};

// Loads `prog` with its flags (see BpfProgram). Needs no_new_privs or CAP_SYS_ADMIN.
// Returns 0 or -errno.
int LoadFilter(const BpfProgram& prog);
// seccomp(SECCOMP_SET_MODE_FILTER, SPEC_ALLOW) with a fallback to no flags on EINVAL.
int LoadFilter(const sock_filter* insns, unsigned short count);

}  // namespace shoal::kernel
