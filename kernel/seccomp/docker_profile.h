// Docker's default seccomp profile (moby profiles/seccomp default.json v0.2.3, runtime.md §3.1)
// as data: which syscalls are allowed unconditionally, which are unlocked by a capability, and
// the argument-filtered rules. Compile() in seccomp.h turns it into BPF for a capability set.
#pragma once

#include <cstdint>
#include <vector>

namespace shoal::kernel {

struct SeccompArg {
  unsigned index = 0;
  enum Op { kEq, kLt, kGt, kMaskedEq } op = kEq;
  uint64_t value = 0;
  uint64_t value_two = 0;
};

struct SeccompRule {
  std::vector<const char*> names;
  // Allowed only when the container holds any cap in `requires_caps` (0 = always); skipped when
  // it holds any cap in `excludes_caps`.
  uint64_t requires_caps = 0;
  uint64_t excludes_caps = 0;
  // 0 = allow; otherwise return -errno_ret.
  int errno_ret = 0;
  // Each arg is a separate rule (libseccomp ANDs args of one rule; Docker means OR here).
  std::vector<SeccompArg> any_of;
};

// defaultAction ERRNO(EPERM); syscalls numbered above every named one return ENOSYS (runc's
// stub, so new syscalls like clone3/faccessat2 fail the way glibc can fall back from).
const std::vector<SeccompRule>& DockerDefaultRules();

}  // namespace shoal::kernel
