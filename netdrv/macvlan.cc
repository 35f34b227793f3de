#include "netdrv/macvlan.h"

#include <unistd.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "base/status.h"

namespace shoal::netdrv {

using kernel::Link;
using kernel::LinkKind;
using kernel::LinkSpec;

absl::StatusOr<std::pair<std::string, uint16_t>> ParseParent(absl::string_view parent) {
  size_t dot = parent.rfind('.');
  if (parent.empty() || dot == 0 || parent.size() > 15) {
    return absl::InvalidArgumentError(
        absl::StrCat("option parent \"", std::string(parent), "\" is not a link name"));
  }
  if (dot == absl::string_view::npos) return std::make_pair(std::string(parent), uint16_t{0});
  int vid = 0;
  if (!absl::SimpleAtoi(parent.substr(dot + 1), &vid) || vid < 1 || vid > 4094) {
    return absl::InvalidArgumentError(
        absl::StrCat("option parent \"", std::string(parent), "\": VLAN id must be 1..4094"));
  }
  return std::make_pair(std::string(parent.substr(0, dot)), static_cast<uint16_t>(vid));
}

absl::Status MacvlanDriver::CreateNetwork(const NetworkSpec& spec) {
  std::string who = absl::StrCat("macvlan network ", spec.id, ": ");
  if (spec.id.empty()) return absl::InvalidArgumentError("network id: must not be empty");
  if (networks_.count(spec.id)) return absl::AlreadyExistsError(who + "already exists");
  auto p = spec.options.find("parent");
  if (p == spec.options.end() || p->second.empty()) {
    return absl::InvalidArgumentError(who + "option parent is required");
  }
  if (spec.subnet.addr.is_set() && spec.gateway.is_set() && !spec.subnet.Contains(spec.gateway)) {
    return absl::InvalidArgumentError(absl::StrCat(who, "gateway ", spec.gateway.ToString(),
                                                   " is not in subnet ", spec.subnet.ToString()));
  }
  Network net;
  net.spec = spec;
  net.parent = p->second;
  auto m = spec.options.find("mode");
  auto mode = kernel::ParseMacvlanMode(m == spec.options.end() ? "" : m->second);
  if (!mode.ok()) return base::Annotate(mode.status(), absl::StripSuffix(who, ": "));
  net.mode = *mode;
  ASSIGN_OR_RETURN(auto parsed, ParseParent(net.parent));
  for (const auto& [id, other] : networks_) {
    if (other.parent == net.parent && (other.mode == kernel::MacvlanMode::kPassthru ||
                                       net.mode == kernel::MacvlanMode::kPassthru)) {
      return absl::FailedPreconditionError(absl::StrCat(
          who, "parent ", net.parent, " is used by network ", id, " and passthru is exclusive"));
    }
  }
  ASSIGN_OR_RETURN(auto nl, netlink_.Open(config_.node_netns_fd));
  if (!nl->GetLink(net.parent).ok()) {
    if (parsed.second == 0) {
      return absl::NotFoundError(absl::StrCat(who, "parent link ", net.parent, " not found"));
    }
    auto base = nl->GetLink(parsed.first);
    if (!base.ok()) {
      return absl::NotFoundError(
          absl::StrCat(who, "parent link ", parsed.first, " (of ", net.parent, ") not found"));
    }
    LinkSpec v;
    v.kind = LinkKind::kVlan;
    v.name = net.parent;
    v.parent_index = base->index;
    v.vlan.id = parsed.second;
    v.up = true;
    auto created = nl->CreateLink(v);
    if (!created.ok()) return base::Annotate(created.status(), absl::StripSuffix(who, ": "));
    net.created_vlan = true;
  }
  networks_.emplace(spec.id, std::move(net));
  return absl::OkStatus();
}

absl::Status MacvlanDriver::DeleteNetwork(absl::string_view id) {
  auto it = networks_.find(id);
  if (it == networks_.end()) {
    return absl::NotFoundError(absl::StrCat("macvlan network ", std::string(id), " not found"));
  }
  Network net = std::move(it->second);
  networks_.erase(it);
  for (auto& [eid, ep] : net.endpoints) {
    auto nl = netlink_.Open(ep.netns.get());
    if (!nl.ok()) continue;
    auto l = (*nl)->GetLink(ep.ep.ifname);
    if (l.ok()) (void)(*nl)->DeleteLink(l->index);
  }
  bool still_used = false;
  for (const auto& [other_id, other] : networks_) still_used |= other.parent == net.parent;
  if (net.created_vlan && !still_used) {
    ASSIGN_OR_RETURN(auto nl, netlink_.Open(config_.node_netns_fd));
    auto l = nl->GetLink(net.parent);
    if (l.ok()) RETURN_IF_ERROR(nl->DeleteLink(l->index));
  } else if (net.created_vlan) {
    // Hand the "created by us" mark to a network still using the link.
    for (auto& [other_id, other] : networks_) {
      if (other.parent == net.parent) {
        other.created_vlan = true;
        break;
      }
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<Endpoint> MacvlanDriver::CreateEndpoint(const EndpointSpec& spec) {
  auto it = networks_.find(spec.network_id);
  if (it == networks_.end()) {
    return absl::NotFoundError(
        absl::StrCat("endpoint ", spec.id, ": macvlan network ", spec.network_id, " not found"));
  }
  Network& net = it->second;
  RETURN_IF_ERROR(ValidateEndpointSpec(spec, net.spec));
  for (const auto& [id, ep] : net.endpoints) {
    if (id == spec.id || ep.ep.address.addr == spec.address.addr) {
      return absl::AlreadyExistsError(absl::StrCat("endpoint ", spec.id, ": ",
                                                   id == spec.id ? "id" : "address",
                                                   " already in network ", spec.network_id));
    }
  }
  if (net.mode == kernel::MacvlanMode::kPassthru && !net.endpoints.empty()) {
    return absl::FailedPreconditionError(absl::StrCat("endpoint ", spec.id, ": passthru network ",
                                                      spec.network_id, " takes one endpoint"));
  }
  ASSIGN_OR_RETURN(auto ctr, netlink_.Open(spec.netns_fd));
  RETURN_IF_ERROR(CheckNoOverlapInContainer(*ctr, spec));
  ASSIGN_OR_RETURN(auto nl, netlink_.Open(config_.node_netns_fd));
  ASSIGN_OR_RETURN(Link parent, nl->GetLink(net.parent));
  Ep ep;
  ep.ep = Endpoint{spec.id, spec.ifname, spec.mac ? *spec.mac : RandomMac(random_.Uint64()),
                   spec.address, parent.mtu};
  LinkSpec m;
  m.kind = LinkKind::kMacvlan;
  m.name = spec.ifname;
  m.parent_index = parent.index;
  m.netns_fd = spec.netns_fd;  // created straight inside the container
  m.macvlan.mode = net.mode;
  if (net.mode != kernel::MacvlanMode::kPassthru) m.mac = ep.ep.mac;  // passthru keeps parent's
  ASSIGN_OR_RETURN(Link child, nl->CreateLink(m));
  ep.ep.mac = child.mac;
  auto finish = [&]() -> absl::Status {
    RETURN_IF_ERROR(ctr->AddAddress({child.index, spec.address}));
    RETURN_IF_ERROR(ctr->SetLinkUp(child.index, true));
    if (spec.default_route && net.spec.gateway.is_set()) {
      RETURN_IF_ERROR(ctr->AddRoute(
          {kernel::IpPrefix{kernel::IpAddr::V4(0, 0, 0, 0), 0}, net.spec.gateway, child.index}));
    }
    return absl::OkStatus();
  };
  absl::Status st = finish();
  if (!st.ok()) {
    (void)ctr->DeleteLink(child.index);
    return base::Annotate(st, absl::StrCat("endpoint ", spec.id));
  }
  ep.netns.Reset(::dup(spec.netns_fd));
  Endpoint out = ep.ep;
  net.endpoints.emplace(spec.id, std::move(ep));
  return out;
}

absl::Status MacvlanDriver::DeleteEndpoint(absl::string_view network_id,
                                           absl::string_view endpoint_id) {
  auto it = networks_.find(network_id);
  if (it == networks_.end()) {
    return absl::NotFoundError(
        absl::StrCat("macvlan network ", std::string(network_id), " not found"));
  }
  auto ep = it->second.endpoints.find(std::string(endpoint_id));
  if (ep == it->second.endpoints.end()) {
    return absl::NotFoundError(absl::StrCat("endpoint ", std::string(endpoint_id),
                                            " not in network ", std::string(network_id)));
  }
  auto nl = netlink_.Open(ep->second.netns.get());
  if (nl.ok()) {
    auto l = (*nl)->GetLink(ep->second.ep.ifname);
    if (l.ok()) {
      absl::Status st = (*nl)->DeleteLink(l->index);
      if (!st.ok() && !absl::IsNotFound(st)) return st;
    }
  }
  it->second.endpoints.erase(ep);
  return absl::OkStatus();
}

absl::Status MacvlanDriver::SetPeers(absl::string_view, const std::vector<Peer>& peers) {
  if (!peers.empty()) {
    return absl::InvalidArgumentError("macvlan networks are node-local: they have no peers");
  }
  return absl::OkStatus();
}

absl::Status MacvlanDriver::Reconcile() {
  ASSIGN_OR_RETURN(auto nl, netlink_.Open(config_.node_netns_fd));
  for (auto& [id, net] : networks_) {
    if (nl->GetLink(net.parent).ok() || !net.created_vlan) continue;
    // Our 802.1q link vanished: bring it back (its macvlan children died with it).
    ASSIGN_OR_RETURN(auto parsed, ParseParent(net.parent));
    ASSIGN_OR_RETURN(Link base, nl->GetLink(parsed.first));
    LinkSpec v;
    v.kind = LinkKind::kVlan;
    v.name = net.parent;
    v.parent_index = base.index;
    v.vlan.id = parsed.second;
    v.up = true;
    RETURN_IF_ERROR(nl->CreateLink(v).status());
    net.endpoints.clear();
  }
  return absl::OkStatus();
}

}  // namespace shoal::netdrv
