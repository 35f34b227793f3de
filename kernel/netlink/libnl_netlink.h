// The real Netlink adapter over libnl-route (reference/dataplane.md §9.7).
#pragma once

#include <memory>

#include "kernel/netlink/netlink.h"

namespace shoal::kernel {

// Opens libnl-backed Netlink objects; each owns one NETLINK_ROUTE socket bound to the namespace
// it was opened for. Thread-safe (Open holds no shared state).
class LibnlNetlinkFactory : public NetlinkFactory {
 public:
  absl::StatusOr<std::unique_ptr<Netlink>> Open(int netns_fd) override;
};

}  // namespace shoal::kernel
