// Linux capabilities: names, Docker's default set, and the raw-syscall apply step used by a
// container's setup child (runtime.md §4).
//
// A CapSet is a 64-bit mask indexed by capability number (CAP_CHOWN = bit 0). Parsing uses
// libcap's name table, so every name the installed kernel headers know is accepted.
// ApplyCapabilities() makes only raw syscalls (prctl, capset): it is safe in a child forked from
// a multithreaded process. Thread safety: all functions are pure or act on the calling thread.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace shoal::kernel {

using CapSet = uint64_t;

// CAP_CHOWN DAC_OVERRIDE FSETID FOWNER MKNOD NET_RAW SETGID SETUID SETFCAP SETPCAP
// NET_BIND_SERVICE SYS_CHROOT KILL AUDIT_WRITE (moby daemon/pkg/oci/caps/defaults.go).
CapSet DockerDefaultCaps();

// Highest capability number the running kernel knows (/proc/sys/kernel/cap_last_cap).
int LastCap();

// "CAP_NET_ADMIN", "net_admin" or "NET_ADMIN" -> its number. "ALL" is not a single cap.
// INVALID_ARGUMENT naming the input when unknown.
absl::StatusOr<int> ParseCapName(absl::string_view name);

// Canonical "CAP_XXX" name for cap number `cap`.
std::string CapName(int cap);

// `base` plus `add`, minus `drop`; "ALL" in add/drop means every cap up to last_cap, and
// dropping ALL keeps exactly `add` (Docker's --cap-drop ALL --cap-add X).
// Errors name the offending entry ("cap_add[1]: unknown capability \"CAP_FOO\"").
absl::StatusOr<CapSet> ComputeCaps(CapSet base, const std::vector<std::string>& add,
                                   const std::vector<std::string>& drop, int last_cap);

// Names of the caps in `set`, ascending.
std::vector<std::string> CapNames(CapSet set);

// Raw-syscall steps, in the order the kernel requires (crun set_required_caps):
// 1. DropBoundingSet: PR_CAPBSET_DROP every cap <= last_cap not in `keep` (needs CAP_SETPCAP).
// Returns 0 or -errno. No allocation.
int DropBoundingSet(CapSet keep, int last_cap);
// 2. (caller: PR_SET_KEEPCAPS 1, setgroups, setresgid, setresuid)
// 3. SetProcessCaps: capset(E=P=`caps`, I=`inheritable`), then clear the ambient set.
int SetProcessCaps(CapSet caps, CapSet inheritable);

}  // namespace shoal::kernel
