#include "netdrv/bridge.h"

#include <sys/socket.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "base/status.h"
#include "kernel/netlink/sysctl.h"
#include "kernel/nft/plan.h"
#include "kernel/nft/rule.h"

namespace shoal::netdrv {

using kernel::Link;
using kernel::LinkKind;
using kernel::LinkSpec;
namespace nft = kernel::nft;

BridgeDriver::BridgeDriver(const BridgeConfig& config, kernel::NetlinkFactory& netlink,
                           nft::Nft& nft, base::Random& random)
    : config_(config), netlink_(netlink), nft_(nft), random_(random) {
  if (!config_.sysctl) config_.sysctl = &kernel::WriteSysctl;
}

absl::StatusOr<std::unique_ptr<BridgeDriver>> BridgeDriver::Create(const BridgeConfig& config,
                                                                   kernel::NetlinkFactory& netlink,
                                                                   nft::Nft& nft,
                                                                   base::Random& random) {
  if (config.bridge_name.empty() || config.bridge_name.size() > 15) {
    return absl::InvalidArgumentError(
        absl::StrCat("bridge: bridge_name \"", config.bridge_name, "\" must be 1..15 bytes"));
  }
  return std::unique_ptr<BridgeDriver>(new BridgeDriver(config, netlink, nft, random));
}

std::string BridgeDriver::VethName(absl::string_view endpoint_id) {
  return absl::StrCat("g", endpoint_id.substr(0, 12));
}

nft::Table BridgeDriver::DesiredTable() const {
  nft::Table t;
  t.family = nft::Family::kIp;
  t.name = config_.table;
  t.chains = {
      {"postrouting",
       nft::BaseChain{nft::ChainType::kNat, nft::Hook::kPostrouting, nft::kPrioritySrcNat}},
      {"prerouting",
       nft::BaseChain{nft::ChainType::kNat, nft::Hook::kPrerouting, nft::kPriorityDstNat}},
      {"output", nft::BaseChain{nft::ChainType::kNat, nft::Hook::kOutput, nft::kPriorityDstNat}},
  };
  for (const auto& [id, net] : networks_) {
    nft::Prefix p{*nft::ParseAddr(net.spec.subnet.Network().addr.ToString()), net.spec.subnet.len};
    t.rules.push_back(nft::RuleBuilder(t.family, "postrouting")
                          .Comment("masquerade " + id)
                          .Saddr(p)
                          .OifName(net.bridge, false)
                          .Masquerade());
  }
  for (const char* chain : {"prerouting", "output"}) {
    for (const PortMapping& m : ports_) {
      const Network& net = networks_.find(m.network_id)->second;
      const Endpoint& ep = net.endpoints.find(m.endpoint_id)->second;
      t.rules.push_back(nft::RuleBuilder(t.family, chain)
                            .Comment(absl::StrCat("publish ", m.endpoint_id))
                            .FibDaddrLocal()
                            .L4Proto(m.protocol)
                            .Dport(m.host_port)
                            .Dnat(*nft::ParseAddr(ep.address.addr.ToString()), m.container_port));
    }
  }
  return t;
}

absl::Status BridgeDriver::SyncNft() {
  nft::TableRef ref{nft::Family::kIp, config_.table};
  std::optional<nft::Table> observed;
  auto got = nft_.GetTable(ref);
  if (got.ok()) {
    observed = std::move(*got);
  } else if (!absl::IsNotFound(got.status())) {
    return got.status();
  }
  nft::Table desired = DesiredTable();
  if (networks_.empty()) {
    return observed ? nft::DeleteTableIfExists(nft_, ref) : absl::OkStatus();
  }
  return nft_.Apply(nft::PlanTable(desired, observed));
}

absl::Status BridgeDriver::EnsureBridge(const Network& net) {
  ASSIGN_OR_RETURN(auto nl, netlink_.Open(config_.node_netns_fd));
  auto br = nl->GetLink(net.bridge);
  if (!br.ok()) {
    LinkSpec b;
    b.kind = LinkKind::kBridge;
    b.name = net.bridge;
    b.mtu = net.mtu;
    ASSIGN_OR_RETURN(br, nl->CreateLink(b));
  }
  ASSIGN_OR_RETURN(auto addrs, nl->ListAddresses());
  kernel::Address gw{br->index, kernel::IpPrefix{net.spec.gateway, net.spec.subnet.len}};
  if (std::find(addrs.begin(), addrs.end(), gw) == addrs.end()) RETURN_IF_ERROR(nl->AddAddress(gw));
  if (!br->up) RETURN_IF_ERROR(nl->SetLinkUp(br->index, true));
  return config_.sysctl(config_.node_netns_fd, "net/ipv4/ip_forward", "1");
}

absl::Status BridgeDriver::CreateNetwork(const NetworkSpec& spec) {
  std::string who = absl::StrCat("bridge network ", spec.id, ": ");
  if (spec.id.empty()) return absl::InvalidArgumentError("network id: must not be empty");
  if (networks_.count(spec.id)) return absl::AlreadyExistsError(who + "already exists");
  if (!spec.subnet.addr.is_v4() || !spec.subnet.Contains(spec.gateway)) {
    return absl::InvalidArgumentError(absl::StrCat(who, "gateway ", spec.gateway.ToString(),
                                                   " must be in IPv4 subnet ",
                                                   spec.subnet.ToString()));
  }
  Network net;
  net.spec = spec;
  auto opt = spec.options.find("bridge");
  net.bridge = opt == spec.options.end() ? config_.bridge_name : opt->second;
  if (net.bridge.empty() || net.bridge.size() > 15) {
    return absl::InvalidArgumentError(who + "option bridge must be 1..15 bytes");
  }
  if (spec.mtu) {
    if (spec.mtu < 1280 || spec.mtu > 65535) {
      return absl::InvalidArgumentError(
          absl::StrCat(who, "mtu ", spec.mtu, " is outside 1280..65535"));
    }
    net.mtu = spec.mtu;
  }
  for (const auto& [id, other] : networks_) {
    if (other.bridge == net.bridge) {
      return absl::AlreadyExistsError(absl::StrCat(who, "bridge ", net.bridge, " is used by ", id));
    }
  }
  ASSIGN_OR_RETURN(auto nl, netlink_.Open(config_.node_netns_fd));
  // The egress subnet must not shadow a network the node already reaches (Docker's
  // checkOverlap, dataplane.md §3): containers could not reach it any more.
  auto overlaps = [&](const kernel::IpPrefix& other) {
    return other.addr.family == spec.subnet.addr.family &&
           (spec.subnet.Contains(other.addr) || other.Contains(spec.subnet.addr));
  };
  ASSIGN_OR_RETURN(auto routes, nl->ListRoutes(AF_INET));
  for (const kernel::Route& r : routes) {
    if (r.dst.len > 0 && overlaps(r.dst)) {
      return absl::InvalidArgumentError(absl::StrCat(who, "subnet ", spec.subnet.ToString(),
                                                     " overlaps the node's route to ",
                                                     r.dst.ToString()));
    }
  }
  ASSIGN_OR_RETURN(auto addrs, nl->ListAddresses());
  for (const kernel::Address& a : addrs) {
    if (a.prefix.addr.is_v4() && a.prefix.addr.bytes[0] != 127 && overlaps(a.prefix)) {
      return absl::InvalidArgumentError(absl::StrCat(who, "subnet ", spec.subnet.ToString(),
                                                     " overlaps the node's address ",
                                                     a.prefix.ToString()));
    }
  }
  if (nl->GetLink(net.bridge).ok()) {
    return absl::AlreadyExistsError(absl::StrCat(who, "link ", net.bridge, " already exists"));
  }
  networks_.emplace(spec.id, net);
  absl::Status st = EnsureBridge(net);
  if (st.ok()) st = SyncNft();
  if (!st.ok()) {
    networks_.erase(spec.id);
    auto br = nl->GetLink(net.bridge);
    if (br.ok()) (void)nl->DeleteLink(br->index);
    (void)SyncNft();
    return base::Annotate(st, absl::StripSuffix(who, ": "));
  }
  return absl::OkStatus();
}

absl::Status BridgeDriver::DeleteNetwork(absl::string_view id) {
  auto it = networks_.find(id);
  if (it == networks_.end()) {
    return absl::NotFoundError(absl::StrCat("bridge network ", std::string(id), " not found"));
  }
  std::string bridge = it->second.bridge;
  ports_.erase(std::remove_if(ports_.begin(), ports_.end(),
                              [&](const PortMapping& m) { return m.network_id == id; }),
               ports_.end());
  networks_.erase(it);
  RETURN_IF_ERROR(SyncNft());
  ASSIGN_OR_RETURN(auto nl, netlink_.Open(config_.node_netns_fd));
  auto br = nl->GetLink(bridge);
  if (br.ok()) {
    // Endpoint veths on the bridge go with the network.
    ASSIGN_OR_RETURN(auto links, nl->ListLinks());
    for (const Link& l : links) {
      if (l.master_index == br->index && l.kind == LinkKind::kVeth) (void)nl->DeleteLink(l.index);
    }
    RETURN_IF_ERROR(nl->DeleteLink(br->index));
  }
  return absl::OkStatus();
}

absl::StatusOr<Endpoint> BridgeDriver::CreateEndpoint(const EndpointSpec& spec) {
  auto it = networks_.find(spec.network_id);
  if (it == networks_.end()) {
    return absl::NotFoundError(
        absl::StrCat("endpoint ", spec.id, ": bridge network ", spec.network_id, " not found"));
  }
  Network& net = it->second;
  RETURN_IF_ERROR(ValidateEndpointSpec(spec, net.spec));
  for (const auto& [id, ep] : net.endpoints) {
    if (id == spec.id || ep.address.addr == spec.address.addr) {
      return absl::AlreadyExistsError(absl::StrCat("endpoint ", spec.id, ": ",
                                                   id == spec.id ? "id" : "address", " already in ",
                                                   "network ", spec.network_id));
    }
  }
  Endpoint ep{spec.id, spec.ifname, spec.mac ? *spec.mac : RandomMac(random_.Uint64()),
              spec.address, net.mtu};
  ASSIGN_OR_RETURN(auto nl, netlink_.Open(config_.node_netns_fd));
  ASSIGN_OR_RETURN(Link br, nl->GetLink(net.bridge));
  RETURN_IF_ERROR(AttachVethToBridge(netlink_, *nl, br.index, VethName(spec.id), spec, ep.mac,
                                     net.mtu, net.spec.gateway));
  net.endpoints[spec.id] = ep;
  return ep;
}

absl::Status BridgeDriver::DeleteEndpoint(absl::string_view network_id,
                                          absl::string_view endpoint_id) {
  auto it = networks_.find(network_id);
  if (it == networks_.end() || !it->second.endpoints.count(std::string(endpoint_id))) {
    return absl::NotFoundError(absl::StrCat("endpoint ", std::string(endpoint_id),
                                            " not in bridge network ", std::string(network_id)));
  }
  it->second.endpoints.erase(std::string(endpoint_id));
  size_t before = ports_.size();
  ports_.erase(std::remove_if(ports_.begin(), ports_.end(),
                              [&](const PortMapping& m) { return m.endpoint_id == endpoint_id; }),
               ports_.end());
  if (ports_.size() != before) RETURN_IF_ERROR(SyncNft());
  ASSIGN_OR_RETURN(auto nl, netlink_.Open(config_.node_netns_fd));
  auto l = nl->GetLink(VethName(endpoint_id));
  if (l.ok()) {
    absl::Status st = nl->DeleteLink(l->index);
    if (!st.ok() && !absl::IsNotFound(st)) return st;
  }
  return absl::OkStatus();
}

absl::Status BridgeDriver::SetPeers(absl::string_view network_id, const std::vector<Peer>& peers) {
  if (!peers.empty()) {
    return absl::InvalidArgumentError("bridge networks are node-local: they have no peers");
  }
  return absl::OkStatus();
}

absl::Status BridgeDriver::PublishPort(const PortMapping& m) {
  std::string who =
      absl::StrCat("publish ", m.protocol == 17 ? "udp" : "tcp", " port ", m.host_port, ": ");
  if (m.protocol != 6 && m.protocol != 17) {
    return absl::InvalidArgumentError(absl::StrCat(who, "protocol must be tcp (6) or udp (17)"));
  }
  if (m.host_port == 0 || m.container_port == 0) {
    return absl::InvalidArgumentError(who + "host_port and container_port must be 1..65535");
  }
  auto it = networks_.find(m.network_id);
  if (it == networks_.end() || !it->second.endpoints.count(m.endpoint_id)) {
    return absl::NotFoundError(
        absl::StrCat(who, "endpoint ", m.endpoint_id, " not in bridge network ", m.network_id));
  }
  for (const PortMapping& p : ports_) {
    if (p.protocol == m.protocol && p.host_port == m.host_port) {
      return absl::AlreadyExistsError(
          absl::StrCat(who, "already published for endpoint ", p.endpoint_id));
    }
  }
  ports_.push_back(m);
  absl::Status st = SyncNft();
  if (!st.ok()) {
    ports_.pop_back();
    (void)SyncNft();
  }
  return st;
}

absl::Status BridgeDriver::UnpublishPort(const PortMapping& m) {
  auto it = std::find(ports_.begin(), ports_.end(), m);
  if (it == ports_.end()) return absl::NotFoundError("port mapping not found");
  ports_.erase(it);
  return SyncNft();
}

absl::Status BridgeDriver::Reconcile() {
  ASSIGN_OR_RETURN(auto nl, netlink_.Open(config_.node_netns_fd));
  for (auto& [id, net] : networks_) {
    RETURN_IF_ERROR(EnsureBridge(net));
    ASSIGN_OR_RETURN(Link br, nl->GetLink(net.bridge));
    for (auto ep = net.endpoints.begin(); ep != net.endpoints.end();) {
      auto l = nl->GetLink(VethName(ep->first));
      if (!l.ok()) {  // the container is gone
        std::string gone = ep->first;
        ep = net.endpoints.erase(ep);
        ports_.erase(std::remove_if(ports_.begin(), ports_.end(),
                                    [&](const PortMapping& m) { return m.endpoint_id == gone; }),
                     ports_.end());
        continue;
      }
      if (l->master_index != br.index) RETURN_IF_ERROR(nl->SetLinkMaster(l->index, br.index));
      if (!l->up) RETURN_IF_ERROR(nl->SetLinkUp(l->index, true));
      ++ep;
    }
  }
  return SyncNft();
}

}  // namespace shoal::netdrv
