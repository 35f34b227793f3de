// Per-namespace sysctls (/proc/sys/net/... is per network namespace: the file must be opened by a
// thread inside that namespace, dataplane.md §9.2).
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace shoal::kernel {

// key: "net/ipv4/ip_forward". netns_fd -1 = the caller's namespace.
absl::Status WriteSysctl(int netns_fd, absl::string_view key, absl::string_view value);
absl::StatusOr<std::string> ReadSysctl(int netns_fd, absl::string_view key);

}  // namespace shoal::kernel
