// Link events (RTM_NEWLINK / RTM_DELLINK) of one network namespace, for reconcilers that want to
// react quickly; they must still reconcile periodically (events can be lost on overrun, which
// Poll reports as UNAVAILABLE "resync needed").
//
// Not thread-safe: one owner polls.
#pragma once

#include <chrono>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "kernel/netlink/netlink.h"

namespace shoal::kernel {

class LinkWatcher {
 public:
  // Subscribes to RTNLGRP_LINK in `netns_fd` (-1: the caller's namespace).
  static absl::StatusOr<std::unique_ptr<LinkWatcher>> Open(int netns_fd);
  virtual ~LinkWatcher() = default;
  // Waits up to `timeout` for events and returns those received (possibly none).
  virtual absl::StatusOr<std::vector<LinkEvent>> Poll(std::chrono::milliseconds timeout) = 0;
  // The socket fd, for callers that multiplex with poll/epoll.
  virtual int fd() const = 0;
};

}  // namespace shoal::kernel
