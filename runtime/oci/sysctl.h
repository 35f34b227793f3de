// linux.sysctl for the OCI CLI: only keys scoped to a namespace the container has are accepted
// (net.* -> its network namespace; kernel.msg*/sem/shm* and fs.mqueue.* -> its IPC namespace),
// and they are written from a short-lived child that joined that namespace (/proc/sys/net and
// the IPC keys resolve against the opener's namespaces), before the container starts.
#pragma once

#include <sys/types.h>

#include <map>
#include <string>

#include "absl/status/status.h"

namespace shoal::runtime {

// INVALID_ARGUMENT naming the key when it is not namespaced or malformed.
absl::Status ValidateSysctls(const std::map<std::string, std::string>& sysctls);
// Writes each key inside the namespaces of `pid` (the container's PID 1).
absl::Status ApplySysctls(pid_t pid, const std::map<std::string, std::string>& sysctls);

}  // namespace shoal::runtime
