#include "netdrv/overlay.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "base/log.h"
#include "base/status.h"
#include "netdrv/peer_plan.h"

namespace shoal::netdrv {

using kernel::Link;
using kernel::LinkKind;
using kernel::LinkSpec;
using kernel::NeighFamily;

namespace {
constexpr char kBridge[] = "br0";
constexpr char kVxlan[] = "vxlan0";
constexpr char kSandboxPrefix[] = "ov-";
}  // namespace

std::string OverlayDriver::SandboxName(absl::string_view id) {
  return absl::StrCat(kSandboxPrefix, id.substr(0, 12));
}

std::string OverlayDriver::VethName(absl::string_view endpoint_id) {
  return absl::StrCat("v", endpoint_id.substr(0, 12));
}

absl::StatusOr<std::unique_ptr<OverlayDriver>> OverlayDriver::Create(
    const OverlayConfig& config, kernel::NetlinkFactory& netlink, kernel::NetnsStore& sandboxes,
    base::Random& random) {
  if (!config.vtep.is_set()) {
    return absl::InvalidArgumentError("overlay: vtep (data-path address) is required");
  }
  if (config.vxlan_port < 1024 || config.vxlan_port > 49151) {
    return absl::InvalidArgumentError(
        absl::StrCat("overlay: vxlan_port ", config.vxlan_port, " is outside 1024..49151"));
  }
  std::unique_ptr<OverlayDriver> d(new OverlayDriver(config, netlink, sandboxes, random));
  RETURN_IF_ERROR(d->Underlay().status());
  return d;
}

absl::StatusOr<std::pair<int, uint32_t>> OverlayDriver::Underlay() const {
  ASSIGN_OR_RETURN(auto nl, netlink_.Open(config_.node_netns_fd));
  ASSIGN_OR_RETURN(auto addrs, nl->ListAddresses());
  for (const kernel::Address& a : addrs) {
    if (a.prefix.addr == config_.vtep) {
      ASSIGN_OR_RETURN(Link l, nl->GetLinkByIndex(a.link_index));
      return std::make_pair(l.index, l.mtu);
    }
  }
  return absl::FailedPreconditionError(absl::StrCat(
      "overlay: data-path address ", config_.vtep.ToString(), " is not on any link of the node"));
}

absl::Status OverlayDriver::ValidateNetwork(const NetworkSpec& s) const {
  if (s.id.empty()) return absl::InvalidArgumentError("network id: must not be empty");
  std::string who = absl::StrCat("overlay network ", s.id, ": ");
  if (s.vni < 1 || s.vni > 0xFFFFFF) {
    return absl::InvalidArgumentError(absl::StrCat(who, "vni ", s.vni, " is outside 1..16777215"));
  }
  if (!s.subnet.addr.is_v4()) {
    return absl::InvalidArgumentError(who + "subnet: an IPv4 subnet is required");
  }
  if (!s.subnet.Contains(s.gateway)) {
    return absl::InvalidArgumentError(absl::StrCat(who, "gateway ", s.gateway.ToString(),
                                                   " is not in subnet ", s.subnet.ToString()));
  }
  for (const auto& [id, n] : networks_) {
    if (n.spec.vni == s.vni) {
      return absl::AlreadyExistsError(
          absl::StrCat(who, "vni ", s.vni, " is already used by network ", id));
    }
  }
  return absl::OkStatus();
}

absl::Status OverlayDriver::CreateNetwork(const NetworkSpec& spec) {
  if (networks_.count(spec.id)) {
    return absl::AlreadyExistsError(absl::StrCat("overlay network ", spec.id, " already exists"));
  }
  RETURN_IF_ERROR(ValidateNetwork(spec));
  ASSIGN_OR_RETURN(auto underlay, Underlay());
  uint32_t max_mtu = underlay.second - Overhead();
  uint32_t mtu = spec.mtu ? spec.mtu : max_mtu;
  std::string who = absl::StrCat("overlay network ", spec.id, ": ");
  if (mtu > max_mtu) {
    return absl::InvalidArgumentError(
        absl::StrCat(who, "mtu ", mtu, " exceeds what the underlay can carry (", underlay.second,
                     " - ", Overhead(), " = ", max_mtu, ")"));
  }
  if (mtu < kMinOverlayMtu) {
    return absl::InvalidArgumentError(absl::StrCat(who, "mtu ", mtu, " is below the minimum ",
                                                   kMinOverlayMtu, " (underlay mtu ",
                                                   underlay.second, ")"));
  }
  Network net;
  net.spec = spec;
  net.mtu = mtu;
  std::string name = SandboxName(spec.id);
  if (auto leftover = sandboxes_.Open(name); leftover.ok()) {  // nobody adopted it (Restore)
    EmptySandbox(leftover->get());
    leftover->Reset();
    (void)sandboxes_.Delete(name);
  }
  ASSIGN_OR_RETURN(net.sandbox, sandboxes_.Create(name));
  absl::Status st = BuildSandbox(net, underlay.first);
  if (!st.ok()) {
    EmptySandbox(net.sandbox.get());
    net.sandbox.Reset();
    (void)sandboxes_.Delete(name);
    return base::Annotate(st, absl::StripSuffix(who, ": "));
  }
  networks_.emplace(spec.id, std::move(net));
  return absl::OkStatus();
}

absl::Status OverlayDriver::BuildSandbox(Network& net, int underlay_index) {
  ASSIGN_OR_RETURN(auto sb, netlink_.Open(net.sandbox.get()));
  ASSIGN_OR_RETURN(auto node, netlink_.Open(config_.node_netns_fd));
  Link br;
  auto existing = sb->GetLink(kBridge);
  if (existing.ok()) {
    br = *existing;
  } else {
    LinkSpec b;
    b.kind = LinkKind::kBridge;
    b.name = kBridge;
    b.mtu = net.mtu;
    ASSIGN_OR_RETURN(br, sb->CreateLink(b));
  }
  if (br.mtu != net.mtu) RETURN_IF_ERROR(sb->SetLinkMtu(br.index, net.mtu));
  ASSIGN_OR_RETURN(auto addrs, sb->ListAddresses());
  kernel::Address gw{br.index, kernel::IpPrefix{net.spec.gateway, net.spec.subnet.len}};
  if (std::find(addrs.begin(), addrs.end(), gw) == addrs.end()) {
    RETURN_IF_ERROR(sb->AddAddress(gw));
  }
  // vxlan0: created from the node namespace (UDP socket there), placed into the sandbox.
  auto vx = sb->GetLink(kVxlan);
  bool wrong = vx.ok() && (vx->vxlan.vni != net.spec.vni || vx->vxlan.port != config_.vxlan_port ||
                           vx->vxlan.learning || !vx->vxlan.proxy ||
                           vx->vxlan.local != config_.vtep || vx->mtu != net.mtu);
  if (wrong) {
    RETURN_IF_ERROR(sb->DeleteLink(vx->index));
  }
  if (!vx.ok() || wrong) {
    LinkSpec v;
    v.kind = LinkKind::kVxlan;
    v.name = kVxlan;
    v.mtu = net.mtu;
    v.netns_fd = net.sandbox.get();
    v.vxlan.vni = net.spec.vni;
    v.vxlan.port = config_.vxlan_port;
    v.vxlan.learning = false;
    v.vxlan.proxy = true;
    v.vxlan.local = config_.vtep;
    v.vxlan.underlay_index = underlay_index;
    ASSIGN_OR_RETURN(vx, node->CreateLink(v));
  }
  if (vx->master_index != br.index) RETURN_IF_ERROR(sb->SetLinkMaster(vx->index, br.index));
  if (!vx->up) RETURN_IF_ERROR(sb->SetLinkUp(vx->index, true));
  if (!br.up) RETURN_IF_ERROR(sb->SetLinkUp(br.index, true));
  return absl::OkStatus();
}

// Deletes the sandbox's links before the namespace goes: the kernel tears a dead namespace down
// asynchronously, and until then the veths' container ends and the vxlan UDP port (held in the
// node namespace) would linger.
void OverlayDriver::EmptySandbox(int fd) {
  auto sb = netlink_.Open(fd);
  if (!sb.ok()) return;
  auto links = (*sb)->ListLinks();
  if (!links.ok()) return;
  for (const Link& l : *links) {
    if (l.kind != LinkKind::kLoopback) (void)(*sb)->DeleteLink(l.index);
  }
}

absl::Status OverlayDriver::DeleteNetwork(absl::string_view id) {
  auto it = networks_.find(id);
  if (it == networks_.end()) {
    return absl::NotFoundError(absl::StrCat("overlay network ", std::string(id), " not found"));
  }
  EmptySandbox(it->second.sandbox.get());
  it->second.sandbox.Reset();
  absl::Status st = sandboxes_.Delete(SandboxName(id));
  networks_.erase(it);
  if (absl::IsNotFound(st)) return absl::OkStatus();
  return st;
}

absl::StatusOr<Endpoint> OverlayDriver::CreateEndpoint(const EndpointSpec& spec) {
  auto it = networks_.find(spec.network_id);
  if (it == networks_.end()) {
    return absl::NotFoundError(
        absl::StrCat("endpoint ", spec.id, ": overlay network ", spec.network_id, " not found"));
  }
  Network& net = it->second;
  RETURN_IF_ERROR(ValidateEndpointSpec(spec, net.spec));
  for (const auto& [id, ep] : net.endpoints) {
    if (id == spec.id || ep.address.addr == spec.address.addr) {
      return absl::AlreadyExistsError(
          absl::StrCat("endpoint ", spec.id, ": ", id == spec.id ? "endpoint id" : "address ",
                       id == spec.id ? "" : spec.address.ToString(), " already in network ",
                       spec.network_id, id == spec.id ? "" : absl::StrCat(" (endpoint ", id, ")")));
    }
  }
  Endpoint ep;
  ep.id = spec.id;
  ep.ifname = spec.ifname;
  ep.mac = spec.mac ? *spec.mac : RandomMac(random_.Uint64());
  ep.address = spec.address;
  ep.mtu = net.mtu;
  ASSIGN_OR_RETURN(auto sb, netlink_.Open(net.sandbox.get()));
  ASSIGN_OR_RETURN(Link br, sb->GetLink(kBridge));
  RETURN_IF_ERROR(AttachVethToBridge(netlink_, *sb, br.index, VethName(spec.id), spec, ep.mac,
                                     net.mtu, net.spec.gateway));
  net.endpoints[spec.id] = ep;
  return ep;
}

absl::Status OverlayDriver::DeleteEndpoint(absl::string_view network_id,
                                           absl::string_view endpoint_id) {
  auto it = networks_.find(network_id);
  if (it == networks_.end()) {
    return absl::NotFoundError(
        absl::StrCat("overlay network ", std::string(network_id), " not found"));
  }
  Network& net = it->second;
  auto ep = net.endpoints.find(std::string(endpoint_id));
  if (ep == net.endpoints.end()) {
    return absl::NotFoundError(absl::StrCat("endpoint ", std::string(endpoint_id),
                                            " not in network ", std::string(network_id)));
  }
  ASSIGN_OR_RETURN(auto sb, netlink_.Open(net.sandbox.get()));
  auto link = sb->GetLink(VethName(endpoint_id));
  if (link.ok()) {
    absl::Status st = sb->DeleteLink(link->index);
    if (!st.ok() && !absl::IsNotFound(st)) return st;
  }
  net.endpoints.erase(ep);
  return absl::OkStatus();
}

absl::Status OverlayDriver::SetPeers(absl::string_view network_id, const std::vector<Peer>& peers) {
  auto it = networks_.find(network_id);
  if (it == networks_.end()) {
    return absl::NotFoundError(
        absl::StrCat("overlay network ", std::string(network_id), " not found"));
  }
  RETURN_IF_ERROR(ValidatePeers(peers, it->second.spec.subnet));
  it->second.peers = peers;
  ASSIGN_OR_RETURN(auto sb, netlink_.Open(it->second.sandbox.get()));
  return ReconcilePeers(it->second, *sb);
}

absl::Status OverlayDriver::ReconcilePeers(Network& net, kernel::Netlink& sb) {
  ASSIGN_OR_RETURN(Link vx, sb.GetLink(kVxlan));
  ASSIGN_OR_RETURN(auto fdb, sb.ListNeighbors(NeighFamily::kFdb, 0));
  ASSIGN_OR_RETURN(auto arp, sb.ListNeighbors(NeighFamily::kArp, vx.index));
  PeerOps ops = PlanPeers(net.peers, config_.vtep, vx.index, fdb, arp);
  for (const kernel::Neighbor& n : ops.remove) {
    absl::Status st = sb.DeleteNeighbor(n);
    if (!st.ok() && !absl::IsNotFound(st)) return st;
  }
  for (const kernel::Neighbor& n : ops.set) RETURN_IF_ERROR(sb.SetNeighbor(n));
  return absl::OkStatus();
}

absl::Status OverlayDriver::ReconcileNetwork(Network& net) {
  std::string name = SandboxName(net.spec.id);
  auto fd = sandboxes_.Open(name);
  if (!fd.ok()) {
    // The sandbox is gone (deleted by hand): rebuild it. Endpoints died with it.
    net.endpoints.clear();
    ASSIGN_OR_RETURN(net.sandbox, sandboxes_.Create(name));
  }
  ASSIGN_OR_RETURN(auto underlay, Underlay());
  RETURN_IF_ERROR(BuildSandbox(net, underlay.first));
  ASSIGN_OR_RETURN(auto sb, netlink_.Open(net.sandbox.get()));
  // Endpoints whose veth vanished (container gone) are forgotten; live ones stay br0 ports.
  ASSIGN_OR_RETURN(Link br, sb->GetLink(kBridge));
  for (auto it = net.endpoints.begin(); it != net.endpoints.end();) {
    auto l = sb->GetLink(VethName(it->first));
    if (!l.ok()) {
      it = net.endpoints.erase(it);
      continue;
    }
    if (l->master_index != br.index) RETURN_IF_ERROR(sb->SetLinkMaster(l->index, br.index));
    if (!l->up) RETURN_IF_ERROR(sb->SetLinkUp(l->index, true));
    ++it;
  }
  return ReconcilePeers(net, *sb);
}

absl::Status OverlayDriver::Reconcile() {
  absl::Status first;
  for (auto& [id, net] : networks_) {
    absl::Status st = ReconcileNetwork(net);
    if (!st.ok() && first.ok()) first = base::Annotate(st, absl::StrCat("reconcile ", id));
  }
  return first;
}

absl::Status OverlayDriver::Restore(
    const std::vector<NetworkSpec>& known,
    const std::map<std::string, std::vector<std::string>>& known_endpoints) {
  std::map<std::string, const NetworkSpec*> by_sandbox;
  for (const NetworkSpec& s : known) by_sandbox[SandboxName(s.id)] = &s;
  ASSIGN_OR_RETURN(auto names, sandboxes_.List());
  for (const std::string& name : names) {
    if (!absl::StartsWith(name, kSandboxPrefix)) continue;
    auto k = by_sandbox.find(name);
    if (k == by_sandbox.end() || networks_.count(k->second->id)) {
      if (k == by_sandbox.end()) {  // purge
        auto fd = sandboxes_.Open(name);
        if (fd.ok()) EmptySandbox(fd->get());
        RETURN_IF_ERROR(sandboxes_.Delete(name));
      }
      continue;
    }
    const NetworkSpec& spec = *k->second;
    RETURN_IF_ERROR(ValidateNetwork(spec));
    Network net;
    net.spec = spec;
    ASSIGN_OR_RETURN(auto underlay, Underlay());
    net.mtu = spec.mtu ? spec.mtu : underlay.second - Overhead();
    ASSIGN_OR_RETURN(net.sandbox, sandboxes_.Open(name));
    ASSIGN_OR_RETURN(auto sb, netlink_.Open(net.sandbox.get()));
    auto eps = known_endpoints.find(spec.id);
    ASSIGN_OR_RETURN(auto links, sb->ListLinks());
    for (const Link& l : links) {
      if (l.kind != LinkKind::kVeth) continue;
      bool keep = false;
      if (eps != known_endpoints.end()) {
        for (const std::string& e : eps->second) keep |= VethName(e) == l.name;
      }
      if (!keep) {
        RETURN_IF_ERROR(sb->DeleteLink(l.index));
        continue;
      }
      for (const std::string& e : eps->second) {
        if (VethName(e) == l.name) net.endpoints[e] = Endpoint{e, "", {}, {}, net.mtu};
      }
    }
    networks_.emplace(spec.id, std::move(net));
  }
  return Reconcile();
}

absl::StatusOr<int> OverlayDriver::SandboxFd(absl::string_view id) const {
  auto it = networks_.find(id);
  if (it == networks_.end()) return absl::NotFoundError("network not found");
  return it->second.sandbox.get();
}

absl::StatusOr<uint32_t> OverlayDriver::NetworkMtu(absl::string_view id) const {
  auto it = networks_.find(id);
  if (it == networks_.end()) return absl::NotFoundError("network not found");
  return it->second.mtu;
}

}  // namespace shoal::netdrv
