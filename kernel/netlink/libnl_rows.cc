// Addresses, routes and neighbour/FDB rows over libnl-route.
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <netlink/msg.h>

#include "absl/strings/str_cat.h"
#include "base/status.h"
#include "kernel/netlink/errors.h"
#include "kernel/netlink/libnl_netlink_impl.h"

namespace shoal::kernel {

namespace {

nl::RtAddrPtr ToRtAddr(const Address& a) {
  nl::RtAddrPtr r(rtnl_addr_alloc());
  rtnl_addr_set_ifindex(r.get(), a.link_index);
  rtnl_addr_set_local(r.get(), nl::ToNl(a.prefix.addr, a.prefix.len).get());
  rtnl_addr_set_prefixlen(r.get(), a.prefix.len);
  return r;
}

nl::RoutePtr ToRtRoute(const Route& rt) {
  nl::RoutePtr r(rtnl_route_alloc());
  rtnl_route_set_family(r.get(), rt.dst.addr.family);
  rtnl_route_set_table(r.get(), RT_TABLE_MAIN);
  rtnl_route_set_type(r.get(), RTN_UNICAST);
  rtnl_route_set_protocol(r.get(), RTPROT_BOOT);
  rtnl_route_set_scope(r.get(), rt.gateway.is_set() ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK);
  rtnl_route_set_dst(r.get(), nl::ToNl(rt.dst.Network().addr, rt.dst.len).get());
  rtnl_nexthop* nh = rtnl_route_nh_alloc();
  if (rt.out_index > 0) rtnl_route_nh_set_ifindex(nh, rt.out_index);
  if (rt.gateway.is_set()) rtnl_route_nh_set_gateway(nh, nl::ToNl(rt.gateway).get());
  rtnl_route_add_nexthop(r.get(), nh);  // the route owns nh now
  return r;
}

int FamilyOf(NeighFamily f) {
  switch (f) {
    case NeighFamily::kArp:
      return AF_INET;
    case NeighFamily::kNdp:
      return AF_INET6;
    case NeighFamily::kFdb:
      return AF_BRIDGE;
  }
  return AF_UNSPEC;
}

// Neighbour requests are built by hand: libnl 3.7's rtnl_neigh builder drops NDA_DST when the
// row's family (AF_BRIDGE) differs from the address family, and a vxlan FDB row without its
// VTEP is rejected with EINVAL.
absl::StatusOr<nl_msg*> BuildNeigh(int type, int flags, const Neighbor& n) {
  nl_msg* msg = nlmsg_alloc_simple(type, flags);
  if (msg == nullptr) return absl::ResourceExhaustedError("nlmsg_alloc");
  struct ndmsg ndm {};
  ndm.ndm_family = static_cast<unsigned char>(FamilyOf(n.family));
  ndm.ndm_ifindex = n.link_index;
  ndm.ndm_state = n.permanent ? NUD_PERMANENT : NUD_REACHABLE;
  if (n.self) ndm.ndm_flags |= NTF_SELF;
  if (n.master) ndm.ndm_flags |= NTF_MASTER;
  if (nlmsg_append(msg, &ndm, sizeof(ndm), NLMSG_ALIGNTO) < 0 ||
      nla_put(msg, NDA_LLADDR, 6, n.mac.bytes.data()) < 0 ||
      (n.dst.is_set() && nla_put(msg, NDA_DST, n.dst.byte_len(), n.dst.bytes.data()) < 0)) {
    nlmsg_free(msg);
    return absl::ResourceExhaustedError("build neighbour message");
  }
  return msg;
}

std::string Describe(const Neighbor& n) {
  const char* fam = n.family == NeighFamily::kFdb ? "fdb" : "neighbour";
  return absl::StrCat(fam, " ", n.mac.ToString(), n.dst.is_set() ? " dst " : "",
                      n.dst.is_set() ? n.dst.ToString() : "", " on link #", n.link_index);
}

}  // namespace

absl::Status LibnlNetlink::AddAddress(const Address& a) {
  auto r = ToRtAddr(a);
  return sk_.Check(rtnl_addr_add(sock(), r.get(), NLM_F_EXCL),
                   absl::StrCat("add address ", a.prefix.ToString(), " to link #", a.link_index));
}

absl::Status LibnlNetlink::DeleteAddress(const Address& a) {
  auto r = ToRtAddr(a);
  int err = rtnl_addr_delete(sock(), r.get(), 0);
  // The kernel answers EADDRNOTAVAIL for a missing address: errors.cc maps it to NOT_FOUND.
  return sk_.Check(
      err, absl::StrCat("delete address ", a.prefix.ToString(), " from link #", a.link_index));
}

absl::StatusOr<std::vector<Address>> LibnlNetlink::ListAddresses() {
  std::vector<Address> out;
  struct ifaddrmsg hdr {};
  hdr.ifa_family = AF_UNSPEC;
  RETURN_IF_ERROR(nl::Dump(sock(), RTM_GETADDR, &hdr, sizeof(hdr), [&](nl_object* obj) {
    auto* a = reinterpret_cast<rtnl_addr*>(obj);
    Address r;
    r.link_index = rtnl_addr_get_ifindex(a);
    r.prefix.addr = nl::FromNlIp(rtnl_addr_get_local(a));
    r.prefix.len = rtnl_addr_get_prefixlen(a);
    if (r.prefix.addr.is_set()) out.push_back(r);
  }));
  return out;
}

absl::Status LibnlNetlink::AddRoute(const Route& rt) {
  auto r = ToRtRoute(rt);
  return sk_.Check(rtnl_route_add(sock(), r.get(), NLM_F_EXCL),
                   absl::StrCat("add route ", rt.dst.ToString()));
}

absl::Status LibnlNetlink::DeleteRoute(const Route& rt) {
  auto r = ToRtRoute(rt);
  int err = rtnl_route_delete(sock(), r.get(), 0);
  // ESRCH (no such route) maps to NOT_FOUND.
  return sk_.Check(err, absl::StrCat("delete route ", rt.dst.ToString()));
}

absl::StatusOr<std::vector<Route>> LibnlNetlink::ListRoutes(int family) {
  std::vector<Route> out;
  struct rtmsg hdr {};
  hdr.rtm_family = static_cast<unsigned char>(family);
  RETURN_IF_ERROR(nl::Dump(sock(), RTM_GETROUTE, &hdr, sizeof(hdr), [&](nl_object* obj) {
    auto* r = reinterpret_cast<rtnl_route*>(obj);
    if (rtnl_route_get_table(r) != RT_TABLE_MAIN || rtnl_route_get_type(r) != RTN_UNICAST) return;
    if (static_cast<int>(rtnl_route_get_family(r)) != family) return;
    Route out_r;
    nl_addr* dst = rtnl_route_get_dst(r);
    out_r.dst.addr = nl::FromNlIp(dst);
    if (!out_r.dst.addr.is_set()) out_r.dst.addr.family = family;  // default route
    out_r.dst.len = dst ? static_cast<int>(nl_addr_get_prefixlen(dst)) : 0;
    if (rtnl_route_get_nnexthops(r) > 0) {
      rtnl_nexthop* nh = rtnl_route_nexthop_n(r, 0);
      out_r.out_index = rtnl_route_nh_get_ifindex(nh);
      out_r.gateway = nl::FromNlIp(rtnl_route_nh_get_gateway(nh));
    }
    out.push_back(out_r);
  }));
  return out;
}

absl::Status LibnlNetlink::SendNeigh(int type, int flags, const Neighbor& n,
                                     absl::string_view what) {
  ASSIGN_OR_RETURN(nl_msg * msg, BuildNeigh(type, flags, n));
  int err = nl_send_auto(sock(), msg);
  nlmsg_free(msg);
  std::string ctx = absl::StrCat(what, " ", Describe(n));
  if (err < 0) return sk_.Check(err, ctx);
  return sk_.Check(nl_wait_for_ack(sock()), ctx);
}

absl::Status LibnlNetlink::SetNeighbor(const Neighbor& n) {
  return SendNeigh(RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_REPLACE, n, "set");
}

absl::Status LibnlNetlink::DeleteNeighbor(const Neighbor& n) {
  return SendNeigh(RTM_DELNEIGH, 0, n, "delete");
}

absl::StatusOr<std::vector<Neighbor>> LibnlNetlink::ListNeighbors(NeighFamily family,
                                                                  int link_index) {
  std::vector<Neighbor> out;
  struct ndmsg hdr {};
  hdr.ndm_family = static_cast<unsigned char>(FamilyOf(family));
  int want = FamilyOf(family);
  RETURN_IF_ERROR(nl::Dump(sock(), RTM_GETNEIGH, &hdr, sizeof(hdr), [&](nl_object* obj) {
    auto* n = reinterpret_cast<rtnl_neigh*>(obj);
    if (rtnl_neigh_get_family(n) != want) return;
    if (link_index > 0 && rtnl_neigh_get_ifindex(n) != link_index) return;
    Neighbor r;
    r.family = family;
    r.link_index = rtnl_neigh_get_ifindex(n);
    r.mac = nl::FromNlMac(rtnl_neigh_get_lladdr(n));
    r.dst = nl::FromNlIp(rtnl_neigh_get_dst(n));
    r.permanent = (rtnl_neigh_get_state(n) & NUD_PERMANENT) != 0;
    unsigned flags = rtnl_neigh_get_flags(n);
    r.self = (flags & NTF_SELF) != 0;
    // The bridge reports its own rows with NDA_MASTER set and ndm_flags 0 (fdb_fill_info), so
    // "master" is the attribute, not the NTF_MASTER request flag.
    r.master = (flags & NTF_MASTER) != 0 || rtnl_neigh_get_master(n) > 0;
    out.push_back(r);
  }));
  return out;
}

}  // namespace shoal::kernel
