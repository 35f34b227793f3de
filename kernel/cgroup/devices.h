// Container device access control (runtime.md §2 "Devices on v2", checklist item 10).
//
// cgroup v1 has devices.allow/devices.deny files; cgroup v2 has no file: the allow-list is a
// BPF_PROG_TYPE_CGROUP_DEVICE program attached to the container's cgroup. Both are rendered
// from the same rule list. Rules apply in order and a later rule overrides an earlier one
// (as successive writes to the v1 files do); a request no rule matches is denied.
#pragma once

#include <linux/bpf.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace shoal::kernel {

struct DeviceRule {
  bool allow = false;
  char type = 'a';             // 'a' (all), 'c' (char), 'b' (block)
  int64_t major = -1;          // -1 = any
  int64_t minor = -1;          // -1 = any
  std::string access = "rwm";  // subset of "rwm"
};

// Docker's defaults (moby daemon/pkg/oci/defaults.go): deny everything; mknod of any char or
// block device; read/write/mknod of null, zero, full, random, urandom, tty, console, ptmx
// and the pty slaves (136:*).
const std::vector<DeviceRule>& DockerDefaultDeviceRules();

// The rules as devices.deny/devices.allow lines ("a", "c 1:3 rwm", "c 136:* rwm").
std::string DeviceRuleLine(const DeviceRule& rule);

// The v2 program, pure. It reads struct bpf_cgroup_dev_ctx and returns 1 (allow) or 0. The
// rules are checked newest first and the first match decides (= last rule wins); a rule
// matching everything ends the program, since the verifier rejects unreachable code. An
// allow rule matches a request whose access bits it all grants ("rw" covers a read); a deny
// rule matches a request asking for any of its bits ("w" refuses a read-write open).
std::vector<struct bpf_insn> BuildDeviceProgram(const std::vector<DeviceRule>& rules);

// Loads `program` and attaches it to the cgroup v2 directory `cgroup_dir` (BPF_CGROUP_DEVICE,
// BPF_F_ALLOW_MULTI). The cgroup keeps the program; it goes away with the cgroup. Errors
// carry the verifier's log.
absl::Status AttachDeviceProgram(const std::string& cgroup_dir,
                                 const std::vector<struct bpf_insn>& program);

}  // namespace shoal::kernel
