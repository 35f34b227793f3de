#include "netdrv/driver.h"

#include "absl/strings/str_cat.h"
#include "base/status.h"

namespace shoal::netdrv {

kernel::MacAddr RandomMac(uint64_t random) {
  kernel::MacAddr m;
  for (int i = 0; i < 6; ++i) m.bytes[i] = static_cast<uint8_t>(random >> (8 * i));
  m.bytes[0] = static_cast<uint8_t>((m.bytes[0] & 0xfc) | 0x02);  // local, unicast
  return m;
}

absl::Status CheckNoOverlapInContainer(kernel::Netlink& ctr, const EndpointSpec& spec) {
  kernel::IpPrefix subnet = spec.address.Network();
  auto overlaps = [&](const kernel::IpPrefix& other) {
    return other.addr.family == subnet.addr.family &&
           (subnet.Contains(other.addr) || other.Network().Contains(subnet.addr));
  };
  auto link_name = [&](int index) {
    auto l = ctr.GetLinkByIndex(index);
    return l.ok() ? l->name : absl::StrCat("link ", index);
  };
  ASSIGN_OR_RETURN(std::vector<kernel::Address> addrs, ctr.ListAddresses());
  for (const kernel::Address& a : addrs) {
    if (a.prefix.len > 0 && !(a.prefix.addr.is_v4() && a.prefix.addr.bytes[0] == 127) &&
        overlaps(a.prefix)) {
      return absl::InvalidArgumentError(
          absl::StrCat("endpoint ", spec.id, ": subnet ", subnet.ToString(),
                       " overlaps the container's address ", a.prefix.ToString(), " on ",
                       link_name(a.link_index)));
    }
  }
  ASSIGN_OR_RETURN(std::vector<kernel::Route> routes, ctr.ListRoutes(subnet.addr.family));
  for (const kernel::Route& r : routes) {
    if (r.dst.len > 0 && overlaps(r.dst)) {
      return absl::InvalidArgumentError(
          absl::StrCat("endpoint ", spec.id, ": subnet ", subnet.ToString(),
                       " overlaps the container's route to ", r.dst.ToString()));
    }
  }
  return absl::OkStatus();
}

absl::Status AttachVethToBridge(kernel::NetlinkFactory& factory, kernel::Netlink& host,
                                int bridge_index, const std::string& host_ifname,
                                const EndpointSpec& spec, const kernel::MacAddr& mac, uint32_t mtu,
                                const kernel::IpAddr& gateway) {
  {
    ASSIGN_OR_RETURN(auto ctr, factory.Open(spec.netns_fd));
    RETURN_IF_ERROR(CheckNoOverlapInContainer(*ctr, spec));
  }
  kernel::LinkSpec v;
  v.kind = kernel::LinkKind::kVeth;
  v.name = host_ifname;
  v.mtu = mtu;
  v.veth.peer_name = spec.ifname;
  v.veth.peer_netns_fd = spec.netns_fd;
  v.veth.peer_mac = mac;
  auto host_end = host.CreateLink(v);
  if (!host_end.ok()) return base::Annotate(host_end.status(), absl::StrCat("endpoint ", spec.id));
  auto finish = [&]() -> absl::Status {
    RETURN_IF_ERROR(host.SetLinkMaster(host_end->index, bridge_index));
    RETURN_IF_ERROR(host.SetLinkUp(host_end->index, true));
    ASSIGN_OR_RETURN(auto ctr, factory.Open(spec.netns_fd));
    ASSIGN_OR_RETURN(kernel::Link eth, ctr->GetLink(spec.ifname));
    RETURN_IF_ERROR(ctr->AddAddress({eth.index, spec.address}));
    RETURN_IF_ERROR(ctr->SetLinkUp(eth.index, true));
    if (spec.default_route) {
      RETURN_IF_ERROR(
          ctr->AddRoute({kernel::IpPrefix{kernel::IpAddr::V4(0, 0, 0, 0), 0}, gateway, eth.index}));
    }
    return absl::OkStatus();
  };
  absl::Status st = finish();
  if (!st.ok()) {
    (void)host.DeleteLink(host_end->index);  // takes the container end with it
    return base::Annotate(st, absl::StrCat("endpoint ", spec.id));
  }
  return absl::OkStatus();
}

absl::Status ValidateEndpointSpec(const EndpointSpec& s, const NetworkSpec& n) {
  if (s.id.empty()) return absl::InvalidArgumentError("endpoint id: must not be empty");
  if (s.netns_fd < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("endpoint ", s.id, ": netns_fd: a container namespace is required"));
  }
  if (s.ifname.empty() || s.ifname.size() > 15) {
    return absl::InvalidArgumentError(
        absl::StrCat("endpoint ", s.id, ": ifname \"", s.ifname, "\" must be 1..15 bytes"));
  }
  if (!s.address.addr.is_set()) {
    return absl::InvalidArgumentError(absl::StrCat("endpoint ", s.id, ": address is required"));
  }
  if (n.subnet.addr.is_set() &&
      (!n.subnet.Contains(s.address.addr) || s.address.len != n.subnet.len)) {
    return absl::InvalidArgumentError(absl::StrCat("endpoint ", s.id, ": address ",
                                                   s.address.ToString(), " is not in subnet ",
                                                   n.subnet.ToString()));
  }
  if (n.gateway.is_set() && s.address.addr == n.gateway) {
    return absl::InvalidArgumentError(absl::StrCat(
        "endpoint ", s.id, ": address ", s.address.ToString(), " is the network's gateway"));
  }
  return absl::OkStatus();
}

}  // namespace shoal::netdrv
