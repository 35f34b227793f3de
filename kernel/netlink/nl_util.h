// Internal helpers of the libnl-backed adapter: owning pointers for libnl objects and
// conversions between libnl addresses and kernel/netlink/types.h. Not a public header.
#pragma once

#include <netlink/addr.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/neighbour.h>
#include <netlink/route/route.h>

#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "kernel/netlink/types.h"

namespace shoal::kernel::nl {

struct SockDeleter {
  void operator()(nl_sock* s) const { nl_socket_free(s); }
};
struct LinkDeleter {
  void operator()(rtnl_link* l) const { rtnl_link_put(l); }
};
struct AddrDeleter {
  void operator()(nl_addr* a) const { nl_addr_put(a); }
};
struct RtAddrDeleter {
  void operator()(rtnl_addr* a) const { rtnl_addr_put(a); }
};
struct RouteDeleter {
  void operator()(rtnl_route* r) const { rtnl_route_put(r); }
};
using SockPtr = std::unique_ptr<nl_sock, SockDeleter>;
using LinkPtr = std::unique_ptr<rtnl_link, LinkDeleter>;
using AddrPtr = std::unique_ptr<nl_addr, AddrDeleter>;
using RtAddrPtr = std::unique_ptr<rtnl_addr, RtAddrDeleter>;
using RoutePtr = std::unique_ptr<rtnl_route, RouteDeleter>;

AddrPtr ToNl(const IpAddr& a, int prefix_len = -1);
AddrPtr ToNl(const MacAddr& m);
IpAddr FromNlIp(const nl_addr* a);  // unset when a is null or not IPv4/IPv6
MacAddr FromNlMac(const nl_addr* a);

// A socket plus the last kernel error it received: libnl folds errnos into coarse NLE_* codes
// (ENETUNREACH becomes NLE_FAILURE), so an NL_CB_ERR hook records the raw errno and the
// extended-ack message first. Check() turns a libnl return value into a Status using them.
struct ErrCapture {
  int sys_errno = 0;
  std::string extack;
};
struct Socket {
  SockPtr sk;
  std::unique_ptr<ErrCapture> err = std::make_unique<ErrCapture>();
  nl_sock* get() const { return sk.get(); }
  absl::Status Check(int nl_ret, absl::string_view context);
};

// Opens a NETLINK_ROUTE socket inside the namespace `netns_fd` (-1: the caller's), using a
// short-lived thread that setns()es so the calling thread never changes namespace.
absl::StatusOr<Socket> OpenRouteSocket(int netns_fd);

// Sends a dump request (`type`, header `hdr` of `len` bytes) and calls `on_object` for every
// object libnl parses from the reply.
absl::Status Dump(nl_sock* sk, int type, const void* hdr, size_t len,
                  const std::function<void(nl_object*)>& on_object);

}  // namespace shoal::kernel::nl
