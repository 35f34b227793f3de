// Deleting conntrack entries of flows to a removed backend (UDP has no FIN: without this a
// client keeps sending to the NAT binding of a backend that is gone).
//
// NetlinkConntrack speaks NETLINK_NETFILTER / nfnetlink_conntrack directly with kernel UAPI
// headers (dump the flows, delete those whose reply source is the backend). It lives here and
// not in kernel/ because it needs no C library; it is a candidate to move to kernel/conntrack.
// Thread safety: implementations are thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace shoal::lb {

class ConntrackCleaner {
 public:
  virtual ~ConntrackCleaner() = default;
  // Deletes flows of IP protocol `proto` whose reply comes from `ip`:`port` (i.e. NATed to that
  // backend). Returns how many were deleted.
  virtual absl::StatusOr<int> DeleteFlowsTo(uint8_t proto, const std::string& ip,
                                            uint16_t port) = 0;
};

// A socket in `netns_fd` (-1 = current namespace).
absl::StatusOr<std::unique_ptr<ConntrackCleaner>> OpenConntrack(int netns_fd = -1);

}  // namespace shoal::lb
