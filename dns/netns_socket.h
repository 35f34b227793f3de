// Sockets created inside another network namespace.
//
// A socket belongs to the namespace it was created in, and keeps working from any thread
// afterwards. RunInNetns runs `fn` on a short-lived thread that setns(2)es into `netns_fd`
// first, so no long-lived thread ever changes namespace (a thread left in the wrong namespace
// after a failed switch back would silently serve the wrong container).
//
// Thread safety: free functions; safe to call concurrently.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "base/unique_fd.h"

namespace shoal::dns {

// Runs `fn` with the calling context switched to the network namespace `netns_fd`
// (-1 = the current one, run inline). Returns fn's status, or the setns error.
absl::Status RunInNetns(int netns_fd, const std::function<absl::Status()>& fn);

// A non-blocking, close-on-exec socket of `type` (SOCK_DGRAM / SOCK_STREAM) created in
// `netns_fd`, bound to `ip`:`port` (port 0 = kernel's choice) and, for streams, listening.
absl::StatusOr<base::UniqueFd> BoundSocketInNetns(int netns_fd, int type, const std::string& ip,
                                                  uint16_t port);

// An unbound non-blocking UDP socket of `family` created in `netns_fd` (for upstream queries).
absl::StatusOr<base::UniqueFd> UdpSocketInNetns(int netns_fd, int family);

// The local port a socket is bound to.
absl::StatusOr<uint16_t> LocalPort(int fd);

}  // namespace shoal::dns
