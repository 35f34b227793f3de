// A seccomp profile as plain data: the OCI runtime-spec `linux.seccomp` object (runtime-spec
// config-linux.md "Seccomp"), with names already resolved to enums. CompileProfile() in
// seccomp.h turns it into BPF. DockerDefaultProfile() renders Docker's default profile
// (docker_profile.h) for a capability set in the same form, the way dockerd does before it
// writes config.json.
//
// Semantics (runc's, which profiles in the wild are written for):
// - A syscall name unknown to the local libseccomp is skipped (profiles list newer syscalls).
// - The args of one syscalls[] entry are ANDed, unless two of them test the same argument
//   index: then each arg becomes its own rule (ORed), as runc does and Docker's profile needs.
// - ERRNO/TRACE without errnoRet return EPERM; defaultErrnoRet applies to defaultAction.
// - A rule whose action equals the default action is a no-op and skipped; a rule libseccomp
//   refuses as conflicting with an earlier one for the same syscall (-EEXIST) is dropped, so
//   the earlier entry wins (runc would fail the container instead).
// - SCMP_ACT_NOTIFY (and listenerPath) is refused: there is no seccomp listener support.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "kernel/caps/caps.h"

namespace shoal::kernel {

enum class SeccompAction { kKillThread, kKillProcess, kTrap, kErrno, kTrace, kAllow, kLog, kNotify };
enum class SeccompOp { kNe, kLt, kLe, kEq, kGe, kGt, kMaskedEq };
enum class SeccompFlag { kTsync, kLog, kSpecAllow, kWaitKillableRecv };

struct SeccompArgCmp {
  uint32_t index = 0;  // 0..5
  uint64_t value = 0;
  uint64_t value_two = 0;  // MASKED_EQ: (arg & value) == value_two
  SeccompOp op = SeccompOp::kEq;
  bool operator==(const SeccompArgCmp&) const = default;
};

struct SeccompSyscall {
  std::vector<std::string> names;
  SeccompAction action = SeccompAction::kAllow;
  std::optional<uint32_t> errno_ret;  // ERRNO/TRACE only; default EPERM
  std::vector<SeccompArgCmp> args;
  bool operator==(const SeccompSyscall&) const = default;
};

struct SeccompProfile {
  SeccompAction default_action = SeccompAction::kErrno;
  std::optional<uint32_t> default_errno_ret;  // ERRNO/TRACE only; default EPERM
  // OCI names ("SCMP_ARCH_X86"); the native architecture is always included.
  std::vector<std::string> architectures;
  // nullopt: SECCOMP_FILTER_FLAG_SPEC_ALLOW, retried without flags on EINVAL (crun's default).
  // Set (even empty): exactly these flags, an error if the kernel refuses them.
  std::optional<std::vector<SeccompFlag>> flags;
  std::vector<SeccompSyscall> syscalls;
  bool operator==(const SeccompProfile&) const = default;
};

template <typename H>
H AbslHashValue(H h, const SeccompArgCmp& a) {
  return H::combine(std::move(h), a.index, a.value, a.value_two, a.op);
}
template <typename H>
H AbslHashValue(H h, const SeccompSyscall& s) {
  return H::combine(std::move(h), s.names, s.action, s.errno_ret, s.args);
}
template <typename H>
H AbslHashValue(H h, const SeccompProfile& p) {
  h = H::combine(std::move(h), p.default_action, p.default_errno_ret, p.architectures,
                 p.flags.has_value());
  if (p.flags) {
    for (SeccompFlag f : *p.flags) h = H::combine(std::move(h), static_cast<int>(f));
    h = H::combine(std::move(h), p.flags->size());
  }
  return H::combine(std::move(h), p.syscalls);
}

// OCI names <-> enums ("SCMP_ACT_KILL" is KILL_THREAD, as in libseccomp).
std::optional<SeccompAction> SeccompActionFromName(absl::string_view name);
std::optional<SeccompOp> SeccompOpFromName(absl::string_view name);
std::optional<SeccompFlag> SeccompFlagFromName(absl::string_view name);
const char* SeccompActionName(SeccompAction a);
const char* SeccompOpName(SeccompOp op);
const char* SeccompFlagName(SeccompFlag f);
// Every OCI name known to this build (for `shoal-runtime features`).
std::vector<std::string> SeccompActionNames(bool supported_only);
std::vector<std::string> SeccompOpNames();
std::vector<std::string> SeccompFlagNames(bool supported_only);
std::vector<std::string> SeccompArchNames();  // those the local libseccomp supports
// "SCMP_ARCH_X86_64" -> "x86_64" (libseccomp's name); nullopt if not an OCI architecture.
std::optional<std::string> SeccompArchLibName(absl::string_view oci_name);

// Everything checkable without libseccomp: known architectures, names non-empty, arg index
// 0..5, errnoRet only with ERRNO/TRACE and in range, no NOTIFY / WAIT_KILLABLE_RECV. Errors
// name the field relative to the profile ("syscalls[3].errnoRet: ...").
absl::Status ValidateSeccompProfile(const SeccompProfile& p);

// Docker's default profile for a container holding `caps` (rules gated on capabilities
// resolved, as moby's setupSeccomp does): defaultAction ERRNO(EPERM), x86_64+x86+x32.
SeccompProfile DockerDefaultProfile(CapSet caps);

}  // namespace shoal::kernel
