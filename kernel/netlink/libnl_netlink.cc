// Links over libnl-route. Rows (addresses, routes, neighbours) are in libnl_rows.cc.
#include "kernel/netlink/libnl_netlink.h"

#include <linux/if.h>
#include <linux/if_arp.h>
#include <netlink/route/link/bridge.h>
#include <netlink/route/link/macvlan.h>
#include <netlink/route/link/veth.h>
#include <netlink/route/link/vlan.h>
#include <netlink/route/link/vxlan.h>

#include <unistd.h>

#include <atomic>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "base/status.h"
#include "kernel/netlink/errors.h"
#include "kernel/netlink/libnl_netlink_impl.h"
#include "kernel/netlink/nl_util.h"

namespace shoal::kernel {

using nl::LinkPtr;

absl::StatusOr<std::unique_ptr<Netlink>> LibnlNetlinkFactory::Open(int netns_fd) {
  ASSIGN_OR_RETURN(nl::Socket sk, nl::OpenRouteSocket(netns_fd));
  return std::unique_ptr<Netlink>(new LibnlNetlink(std::move(sk)));
}

namespace {

LinkKind KindOf(rtnl_link* l) {
  const char* t = rtnl_link_get_type(l);
  if (t == nullptr) {
    return rtnl_link_get_arptype(l) == ARPHRD_LOOPBACK ? LinkKind::kLoopback : LinkKind::kUnknown;
  }
  std::string s(t);
  if (s == "veth") return LinkKind::kVeth;
  if (s == "bridge") return LinkKind::kBridge;
  if (s == "vxlan") return LinkKind::kVxlan;
  if (s == "macvlan") return LinkKind::kMacvlan;
  if (s == "vlan") return LinkKind::kVlan;
  if (s == "dummy") return LinkKind::kDummy;
  return LinkKind::kUnknown;
}

}  // namespace

Link LibnlNetlink::ToLink(rtnl_link* l) {
  Link r;
  r.index = rtnl_link_get_ifindex(l);
  if (const char* n = rtnl_link_get_name(l)) r.name = n;
  r.kind = KindOf(l);
  r.mtu = rtnl_link_get_mtu(l);
  r.up = (rtnl_link_get_flags(l) & IFF_UP) != 0;
  r.master_index = rtnl_link_get_master(l);
  r.parent_index = rtnl_link_get_link(l);
  r.mac = nl::FromNlMac(rtnl_link_get_addr(l));
  if (r.kind == LinkKind::kVxlan) {
    uint32_t id = 0, port = 0;
    if (rtnl_link_vxlan_get_id(l, &id) == 0) r.vxlan.vni = id;
    if (rtnl_link_vxlan_get_port(l, &port) == 0) r.vxlan.port = static_cast<uint16_t>(port);
    r.vxlan.learning = rtnl_link_vxlan_get_learning(l) > 0;
    r.vxlan.proxy = rtnl_link_vxlan_get_proxy(l) > 0;
    nl_addr* local = nullptr;
    if (rtnl_link_vxlan_get_local(l, &local) == 0 && local != nullptr) {
      r.vxlan.local = nl::FromNlIp(local);
      nl_addr_put(local);
    }
    uint32_t under = 0;
    if (rtnl_link_vxlan_get_link(l, &under) == 0) r.vxlan.underlay_index = static_cast<int>(under);
  } else if (r.kind == LinkKind::kMacvlan) {
    r.macvlan.mode = static_cast<MacvlanMode>(rtnl_link_macvlan_get_mode(l));
  } else if (r.kind == LinkKind::kVlan) {
    r.vlan.id = static_cast<uint16_t>(rtnl_link_vlan_get_id(l));
  }
  return r;
}

absl::StatusOr<Link> LibnlNetlink::CreateLink(const LinkSpec& s) {
  RETURN_IF_ERROR(ValidateLinkSpec(s));
  LinkPtr l;
  switch (s.kind) {
    case LinkKind::kVeth: {
      l.reset(rtnl_link_veth_alloc());
      if (!l) return absl::ResourceExhaustedError("alloc veth");
      // The peer is created directly in its namespace (no move, dataplane.md §9.1).
      rtnl_link* peer = rtnl_link_veth_get_peer(l.get());
      rtnl_link_set_name(peer, s.veth.peer_name.c_str());
      if (s.veth.peer_netns_fd >= 0) rtnl_link_set_ns_fd(peer, s.veth.peer_netns_fd);
      if (s.mtu) rtnl_link_set_mtu(peer, s.mtu);
      if (s.veth.peer_mac) rtnl_link_set_addr(peer, nl::ToNl(*s.veth.peer_mac).get());
      rtnl_link_put(peer);
      break;
    }
    case LinkKind::kBridge:
      l.reset(rtnl_link_bridge_alloc());
      break;
    case LinkKind::kVxlan: {
      l.reset(rtnl_link_vxlan_alloc());
      if (!l) return absl::ResourceExhaustedError("alloc vxlan");
      rtnl_link_vxlan_set_id(l.get(), s.vxlan.vni);
      rtnl_link_vxlan_set_port(l.get(), s.vxlan.port);  // host order; libnl converts
      rtnl_link_vxlan_set_learning(l.get(), s.vxlan.learning ? 1 : 0);
      rtnl_link_vxlan_set_proxy(l.get(), s.vxlan.proxy ? 1 : 0);
      if (s.vxlan.local.is_set()) rtnl_link_vxlan_set_local(l.get(), nl::ToNl(s.vxlan.local).get());
      if (s.vxlan.underlay_index > 0) rtnl_link_vxlan_set_link(l.get(), s.vxlan.underlay_index);
      break;
    }
    case LinkKind::kMacvlan:
      l.reset(rtnl_link_macvlan_alloc());
      if (!l) return absl::ResourceExhaustedError("alloc macvlan");
      rtnl_link_macvlan_set_mode(l.get(), static_cast<uint32_t>(s.macvlan.mode));
      break;
    case LinkKind::kVlan:
      l.reset(rtnl_link_vlan_alloc());
      if (!l) return absl::ResourceExhaustedError("alloc vlan");
      rtnl_link_vlan_set_id(l.get(), s.vlan.id);
      break;
    default:
      l.reset(rtnl_link_alloc());
      if (l) rtnl_link_set_type(l.get(), "dummy");
      break;
  }
  if (!l) return absl::ResourceExhaustedError("alloc link");
  // Older kernels (Debian 12's 6.1; not 6.18) look the new name up in the *requesting* namespace
  // even when the link is created in another one (IFLA_NET_NS_FD), so "eth0" for a container
  // fails with EEXIST when the host has an eth0 too (seen in the VM lab). Then the link is
  // created under a temporary name and renamed inside its namespace.
  const bool rename_after = s.netns_fd >= 0 && GetLink(s.name).ok();
  std::string create_name = s.name;
  if (rename_after) {
    static std::atomic<uint32_t> counter{0};
    create_name = absl::StrCat("shltmp", ::getpid() % 100000, "x", counter.fetch_add(1) % 100);
  }
  rtnl_link_set_name(l.get(), create_name.c_str());
  if (s.mtu) rtnl_link_set_mtu(l.get(), s.mtu);
  if (s.mac) rtnl_link_set_addr(l.get(), nl::ToNl(*s.mac).get());
  if (s.parent_index > 0) rtnl_link_set_link(l.get(), s.parent_index);
  if (s.netns_fd >= 0) rtnl_link_set_ns_fd(l.get(), s.netns_fd);
  if (s.up && !rename_after) rtnl_link_set_flags(l.get(), IFF_UP);
  int err = rtnl_link_add(sock(), l.get(), NLM_F_CREATE | NLM_F_EXCL);
  std::string what = absl::StrCat("create ", LinkKindName(s.kind), " ", s.name);
  if (s.kind == LinkKind::kVeth) absl::StrAppend(&what, " (peer ", s.veth.peer_name, ")");
  if (err < 0) return sk_.Check(err, what);
  if (s.netns_fd < 0) return GetLink(s.name);
  ASSIGN_OR_RETURN(nl::Socket other, nl::OpenRouteSocket(s.netns_fd));
  LibnlNetlink there(std::move(other));
  if (rename_after) {
    ASSIGN_OR_RETURN(Link tmp, there.GetLink(create_name));
    LinkPtr change(rtnl_link_alloc());
    rtnl_link_set_name(change.get(), s.name.c_str());
    if (s.up) rtnl_link_set_flags(change.get(), IFF_UP);
    absl::Status renamed = there.Change(tmp.index, change.get(), what);
    if (!renamed.ok()) {
      (void)there.DeleteLink(tmp.index);  // leave nothing half-built
      return renamed;
    }
  }
  return there.GetLink(s.name);
}

absl::Status LibnlNetlink::DeleteLink(int index) {
  LinkPtr l(rtnl_link_alloc());
  rtnl_link_set_ifindex(l.get(), index);
  return sk_.Check(rtnl_link_delete(sock(), l.get()), absl::StrCat("delete link #", index));
}

absl::StatusOr<Link> LibnlNetlink::GetLink(absl::string_view name) {
  std::string n(name);
  rtnl_link* raw = nullptr;
  int err = rtnl_link_get_kernel(sock(), 0, n.c_str(), &raw);
  if (err < 0) return sk_.Check(err, absl::StrCat("get link ", n));
  LinkPtr l(raw);
  return ToLink(l.get());
}

absl::StatusOr<Link> LibnlNetlink::GetLinkByIndex(int index) {
  rtnl_link* raw = nullptr;
  int err = rtnl_link_get_kernel(sock(), index, nullptr, &raw);
  if (err < 0) return sk_.Check(err, absl::StrCat("get link #", index));
  LinkPtr l(raw);
  return ToLink(l.get());
}

absl::StatusOr<std::vector<Link>> LibnlNetlink::ListLinks() {
  std::vector<Link> out;
  struct ifinfomsg hdr {};
  hdr.ifi_family = AF_UNSPEC;
  RETURN_IF_ERROR(nl::Dump(sock(), RTM_GETLINK, &hdr, sizeof(hdr), [&](nl_object* obj) {
    out.push_back(ToLink(reinterpret_cast<rtnl_link*>(obj)));
  }));
  return out;
}

absl::Status LibnlNetlink::Change(int index, rtnl_link* change, absl::string_view what) {
  LinkPtr orig(rtnl_link_alloc());
  rtnl_link_set_ifindex(orig.get(), index);
  return sk_.Check(rtnl_link_change(sock(), orig.get(), change, 0),
                   absl::StrCat(what, " link #", index));
}

absl::Status LibnlNetlink::SetLinkUp(int index, bool up) {
  LinkPtr c(rtnl_link_alloc());
  if (up) {
    rtnl_link_set_flags(c.get(), IFF_UP);
  } else {
    rtnl_link_unset_flags(c.get(), IFF_UP);
  }
  return Change(index, c.get(), up ? "set up" : "set down");
}

absl::Status LibnlNetlink::SetLinkMtu(int index, uint32_t mtu) {
  LinkPtr c(rtnl_link_alloc());
  rtnl_link_set_mtu(c.get(), mtu);
  return Change(index, c.get(), absl::StrCat("set mtu ", mtu, " on"));
}

absl::Status LibnlNetlink::SetLinkMaster(int index, int master_index) {
  LinkPtr c(rtnl_link_alloc());
  rtnl_link_set_master(c.get(), master_index);
  return Change(index, c.get(), absl::StrCat("set master #", master_index, " of"));
}

absl::Status LibnlNetlink::MoveLink(int index, int netns_fd, absl::string_view new_name) {
  LinkPtr c(rtnl_link_alloc());
  rtnl_link_set_ns_fd(c.get(), netns_fd);
  if (!new_name.empty()) rtnl_link_set_name(c.get(), std::string(new_name).c_str());
  return Change(index, c.get(), "move");
}

}  // namespace shoal::kernel
