#include "manager/allocator/allocator.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "base/status.h"

namespace shoal::manager::allocator {
namespace {

bool IsOverlay(const api::Network& n) {
  const std::string& d = n.spec().driver_config().name();
  return d.empty() || d == "overlay";
}

uint32_t PortKey(const api::PortConfig& p) {
  return (static_cast<uint32_t>(p.protocol()) << 16) | p.published_port();
}

bool PublishesIngress(const api::ServiceSpec& spec) {
  for (const auto& p : spec.endpoint().ports()) {
    if (p.publish_mode() == api::PortConfig::PUBLISH_MODE_INGRESS) return true;
  }
  return false;
}

std::string ProtoName(api::PortConfig::Protocol p) {
  switch (p) {
    case api::PortConfig::PROTOCOL_UDP:
      return "udp";
    case api::PortConfig::PROTOCOL_SCTP:
      return "sctp";
    default:
      return "tcp";
  }
}

}  // namespace

absl::StatusOr<Allocator> Allocator::Create(AllocatorConfig config) {
  if (config.vni_first < 1 || config.vni_last >= (1u << 24) || config.vni_first > config.vni_last) {
    return absl::InvalidArgumentError("allocator: VNI range must lie within 1..16777215");
  }
  if (config.dynamic_port_first < 1 || config.dynamic_port_last > 65535 ||
      config.dynamic_port_first > config.dynamic_port_last) {
    return absl::InvalidArgumentError("allocator: dynamic port range must lie within 1..65535");
  }
  ASSIGN_OR_RETURN(ipam::Ipam ipam, ipam::Ipam::Create(config.ipam));
  Allocator a(std::move(config), std::move(ipam));
  a.next_vni_ = a.config_.vni_first;
  a.next_port_ = a.config_.dynamic_port_first;
  return a;
}

bool Allocator::IsAllocated(const api::Network& n) const { return subnets_.contains(n.id()); }

absl::StatusOr<ipam::Prefix> Allocator::SubnetOf(const api::Network& n) const {
  auto it = subnets_.find(n.id());
  if (it == subnets_.end()) {
    return absl::FailedPreconditionError(
        absl::StrCat("network ", n.spec().annotations().name(), " is not allocated yet"));
  }
  return it->second;
}

absl::StatusOr<api::Network> Allocator::AllocateNetwork(const api::Network& network) {
  if (IsAllocated(network)) return network;
  const std::string& name = network.spec().annotations().name();
  if (network.spec().ingress() && !ingress_id_.empty() && ingress_id_ != network.id()) {
    return absl::AlreadyExistsError(
        absl::StrCat("network ", name, ": an ingress network already exists (", ingress_id_, ")"));
  }
  ipam::SubnetRequest req;
  req.scope = ipam::Scope::kGlobal;
  const auto& configs = network.spec().ipam().configs();
  if (configs.size() > 1) {
    return absl::UnimplementedError(
        absl::StrCat("network ", name, ": ipam.configs: only one subnet per network is supported"));
  }
  if (!configs.empty()) {
    const auto& c = configs[0];
    if (!c.subnet().empty()) {
      ASSIGN_OR_RETURN(req.subnet, ipam::ParsePrefix(c.subnet(), "ipam.configs[0].subnet"));
    }
    if (!c.range().empty()) {
      ASSIGN_OR_RETURN(req.range, ipam::ParsePrefix(c.range(), "ipam.configs[0].range"));
    }
    if (!c.gateway().empty()) {
      ASSIGN_OR_RETURN(req.gateway, ipam::ParseIp(c.gateway(), "ipam.configs[0].gateway"));
    }
    for (const auto& [rname, addr] : c.reserved()) {
      ASSIGN_OR_RETURN(auto ip, ipam::ParseIp(addr, absl::StrCat("ipam.configs[0].reserved[", rname, "]")));
      req.reserved.push_back(ip);
    }
  }
  uint32_t vni = 0;
  if (IsOverlay(network)) {
    const uint32_t span = config_.vni_last - config_.vni_first + 1;
    for (uint32_t i = 0; i < span; ++i) {
      uint32_t v = config_.vni_first + (next_vni_ - config_.vni_first + i) % span;
      if (!vnis_.contains(v)) {
        vni = v;
        break;
      }
    }
    if (vni == 0) {
      return absl::ResourceExhaustedError(absl::StrCat("network ", name, ": no free VXLAN VNI in ",
                                                       config_.vni_first, "-", config_.vni_last));
    }
  }
  auto subnet = ipam_.AddSubnet(req);
  if (!subnet.ok()) return base::Annotate(subnet.status(), absl::StrCat("network ", name));
  api::Network out = network;
  auto* cfg = out.mutable_ipam();
  cfg->set_driver("default");
  cfg->clear_configs();
  auto* c = cfg->add_configs();
  c->set_family(subnet->addr.v6 ? api::IPAMConfig::FAMILY_IPV6 : api::IPAMConfig::FAMILY_IPV4);
  c->set_subnet(subnet->ToString());
  if (const auto* pool = ipam_.Find(*subnet); pool != nullptr && pool->gateway().has_value()) {
    c->set_gateway(pool->gateway()->ToString());
  }
  if (req.range) c->set_range(req.range->ToString());
  out.mutable_driver_state()->set_name(IsOverlay(network) ? "overlay" : network.spec().driver_config().name());
  if (vni != 0) {
    (*out.mutable_driver_state()->mutable_options())["vni"] = absl::StrCat(vni);
    vnis_.insert(vni);
    next_vni_ = vni + 1 > config_.vni_last ? config_.vni_first : vni + 1;
  }
  subnets_[network.id()] = *subnet;
  if (network.spec().ingress()) ingress_id_ = network.id();
  return out;
}

absl::Status Allocator::RestoreNetwork(const api::Network& n) {
  if (n.ipam().configs().empty()) return absl::OkStatus();  // never allocated
  ipam::SubnetRequest req;
  const auto& c = n.ipam().configs(0);
  ASSIGN_OR_RETURN(req.subnet, ipam::ParsePrefix(c.subnet()));
  if (!c.range().empty()) {
    ASSIGN_OR_RETURN(req.range, ipam::ParsePrefix(c.range()));
  }
  if (!c.gateway().empty()) {
    ASSIGN_OR_RETURN(req.gateway, ipam::ParseIp(c.gateway()));
  } else {
    req.no_gateway = true;
  }
  if (!n.spec().ipam().configs().empty()) {
    for (const auto& [_, addr] : n.spec().ipam().configs(0).reserved()) {
      ASSIGN_OR_RETURN(auto ip, ipam::ParseIp(addr));
      req.reserved.push_back(ip);
    }
  }
  auto subnet = ipam_.AddSubnet(req);
  if (!subnet.ok()) return base::Annotate(subnet.status(), absl::StrCat("restore network ", n.id()));
  subnets_[n.id()] = *subnet;
  auto vni = n.driver_state().options().find("vni");
  uint32_t v;
  if (vni != n.driver_state().options().end() && absl::SimpleAtoi(vni->second, &v)) vnis_.insert(v);
  if (n.spec().ingress()) ingress_id_ = n.id();
  return absl::OkStatus();
}

void Allocator::ReleaseNetwork(const api::Network& n) {
  auto it = subnets_.find(n.id());
  if (it == subnets_.end()) return;
  (void)ipam_.RemoveSubnet(it->second, /*force=*/true);
  subnets_.erase(it);
  auto vni = n.driver_state().options().find("vni");
  uint32_t v;
  if (vni != n.driver_state().options().end() && absl::SimpleAtoi(vni->second, &v)) vnis_.erase(v);
  if (ingress_id_ == n.id()) ingress_id_.clear();
}

absl::StatusOr<std::string> Allocator::AllocateAddress(const api::Network& network,
                                                       std::optional<ipam::IpAddr> want) {
  ASSIGN_OR_RETURN(ipam::Prefix subnet, SubnetOf(network));
  auto ip = ipam_.Allocate(subnet, want);
  if (!ip.ok()) {
    return base::Annotate(ip.status(), absl::StrCat("network ", network.spec().annotations().name()));
  }
  return absl::StrCat(ip->ToString(), "/", subnet.len);
}

void Allocator::ReleaseAddress(const std::string& network_id, const std::string& cidr) {
  auto it = subnets_.find(network_id);
  if (it == subnets_.end()) return;
  auto ip = ipam::ParseIp(cidr.substr(0, cidr.find('/')));
  if (ip.ok()) (void)ipam_.Release(it->second, *ip);
}

absl::StatusOr<api::Service> Allocator::AllocateService(
    const api::Service& service, const std::map<std::string, api::Network>& networks) {
  const auto& spec = service.spec();
  const std::string& name = spec.annotations().name();
  const bool dnsrr = spec.endpoint().mode() == api::EndpointSpec::RESOLUTION_MODE_DNSRR;
  if (dnsrr && PublishesIngress(spec)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "service ", name, ": endpoint.ports: ingress-mode published ports need VIP mode "
        "(use publish mode host with dnsrr)"));
  }
  // Release what the service held before, then allocate the new endpoint; on failure put the
  // old allocation back so nothing changes.
  api::Service out = service;
  ReleaseService(service);
  auto rollback = [&](absl::Status s) {
    (void)RestoreService(service);
    return s;
  };
  auto* ep = out.mutable_endpoint();
  ep->Clear();
  *ep->mutable_spec() = spec.endpoint();
  std::vector<uint32_t> taken;
  for (const auto& p : spec.endpoint().ports()) {
    api::PortConfig port = p;
    if (p.publish_mode() == api::PortConfig::PUBLISH_MODE_INGRESS) {
      if (p.published_port() == 0) {
        bool found = false;
        const uint32_t span = config_.dynamic_port_last - config_.dynamic_port_first + 1;
        for (uint32_t i = 0; i < span && !found; ++i) {
          uint32_t candidate =
              config_.dynamic_port_first + (next_port_ - config_.dynamic_port_first + i) % span;
          port.set_published_port(candidate);
          if (!ports_.contains(PortKey(port))) found = true;
        }
        if (!found) {
          for (uint32_t k : taken) ports_.erase(k);
          return rollback(absl::ResourceExhaustedError(
              absl::StrCat("service ", name, ": no free dynamic published port in ",
                           config_.dynamic_port_first, "-", config_.dynamic_port_last)));
        }
        next_port_ = port.published_port() + 1 > config_.dynamic_port_last
                         ? config_.dynamic_port_first
                         : port.published_port() + 1;
      } else if (auto it = ports_.find(PortKey(port)); it != ports_.end()) {
        for (uint32_t k : taken) ports_.erase(k);
        return rollback(absl::AlreadyExistsError(absl::StrCat(
            "service ", name, ": published port ", port.published_port(), "/",
            ProtoName(port.protocol()), " is already in use by service ", it->second)));
      }
      ports_[PortKey(port)] = service.id();
      taken.push_back(PortKey(port));
    }
    *ep->add_ports() = port;
  }
  if (!dnsrr) {
    std::vector<std::string> nets;
    for (const auto& a : spec.task().networks()) nets.push_back(a.target());
    if (PublishesIngress(spec) && !ingress_id_.empty()) nets.push_back(ingress_id_);
    for (const auto& id : nets) {
      auto it = networks.find(id);
      if (it == networks.end()) {
        for (const auto& vip : ep->virtual_ips()) ReleaseAddress(vip.network_id(), vip.addr());
        for (uint32_t k : taken) ports_.erase(k);
        return rollback(absl::NotFoundError(absl::StrCat("service ", name, ": network ", id, " not found")));
      }
      auto addr = AllocateAddress(it->second);
      if (!addr.ok()) {
        for (const auto& vip : ep->virtual_ips()) ReleaseAddress(vip.network_id(), vip.addr());
        for (uint32_t k : taken) ports_.erase(k);
        return rollback(base::Annotate(addr.status(), absl::StrCat("service ", name, ": VIP")));
      }
      auto* vip = ep->add_virtual_ips();
      vip->set_network_id(id);
      vip->set_addr(*addr);
    }
  }
  out.clear_allocation_error();
  return out;
}

absl::Status Allocator::RestoreService(const api::Service& service) {
  for (const auto& p : service.endpoint().ports()) {
    if (p.publish_mode() != api::PortConfig::PUBLISH_MODE_INGRESS || p.published_port() == 0) continue;
    auto [it, inserted] = ports_.emplace(PortKey(p), service.id());
    if (!inserted && it->second != service.id()) {
      return absl::AlreadyExistsError(absl::StrCat("restore service ", service.id(), ": port ",
                                                   p.published_port(), " also held by ", it->second));
    }
  }
  for (const auto& vip : service.endpoint().virtual_ips()) {
    auto it = subnets_.find(vip.network_id());
    if (it == subnets_.end()) continue;
    auto ip = ipam::ParseIp(vip.addr().substr(0, vip.addr().find('/')));
    if (!ip.ok()) return ip.status();
    RETURN_IF_ERROR(base::Annotate(ipam_.Allocate(it->second, *ip).status(),
                                   absl::StrCat("restore VIP of service ", service.id())));
  }
  return absl::OkStatus();
}

void Allocator::ReleaseService(const api::Service& service) {
  for (const auto& p : service.endpoint().ports()) {
    auto it = ports_.find(PortKey(p));
    if (it != ports_.end() && it->second == service.id()) ports_.erase(it);
  }
  for (const auto& vip : service.endpoint().virtual_ips()) ReleaseAddress(vip.network_id(), vip.addr());
}

absl::StatusOr<api::Task> Allocator::AllocateTask(const api::Task& task, const api::Service* service,
                                                  const std::map<std::string, api::Network>& networks) {
  api::Task out = task;
  out.clear_networks();
  std::vector<std::pair<std::string, std::vector<std::string>>> wanted;  // network, aliases
  for (const auto& a : task.spec().networks()) {
    wanted.push_back({a.target(), {a.aliases().begin(), a.aliases().end()}});
  }
  if (service != nullptr && PublishesIngress(service->spec()) && !ingress_id_.empty()) {
    wanted.push_back({ingress_id_, {}});
  }
  for (const auto& [id, aliases] : wanted) {
    auto it = networks.find(id);
    absl::StatusOr<std::string> addr =
        it == networks.end() ? absl::NotFoundError(absl::StrCat("network ", id, " not found"))
                             : AllocateAddress(it->second);
    if (!addr.ok()) {
      for (const auto& n : out.networks()) ReleaseAddress(n.network_id(), n.addresses(0));
      return addr.status();
    }
    auto* att = out.add_networks();
    att->set_network_id(id);
    att->add_addresses(*addr);
    for (const auto& al : aliases) att->add_aliases(al);
  }
  if (service != nullptr) *out.mutable_endpoint() = service->endpoint();
  return out;
}

absl::Status Allocator::RestoreTask(const api::Task& task) {
  for (const auto& n : task.networks()) {
    auto it = subnets_.find(n.network_id());
    if (it == subnets_.end()) continue;
    for (const auto& a : n.addresses()) {
      ASSIGN_OR_RETURN(auto ip, ipam::ParseIp(a.substr(0, a.find('/'))));
      RETURN_IF_ERROR(base::Annotate(ipam_.Allocate(it->second, ip).status(),
                                     absl::StrCat("restore task ", task.id())));
    }
  }
  return absl::OkStatus();
}

void Allocator::ReleaseTask(const api::Task& task) {
  for (const auto& n : task.networks()) {
    for (const auto& a : n.addresses()) ReleaseAddress(n.network_id(), a);
  }
}

bool Allocator::NodeNeedsAllocation(const api::Node& node) const {
  bool has_ingress = false;
  for (const auto& a : node.attachments()) {
    if (!subnets_.contains(a.network_id())) return true;  // a network that is gone
    if (a.network_id() == ingress_id_) has_ingress = true;
  }
  return !ingress_id_.empty() && subnets_.contains(ingress_id_) && !has_ingress;
}

absl::StatusOr<api::Node> Allocator::AllocateNode(const api::Node& node) {
  api::Node out = node;
  out.clear_attachments();
  bool has_ingress = false;
  for (const auto& a : node.attachments()) {
    if (!subnets_.contains(a.network_id())) continue;  // its network was released with it
    if (a.network_id() == ingress_id_) has_ingress = true;
    *out.add_attachments() = a;
  }
  if (!has_ingress && !ingress_id_.empty() && subnets_.contains(ingress_id_)) {
    api::Network ingress;
    ingress.set_id(ingress_id_);
    ingress.mutable_spec()->mutable_annotations()->set_name("ingress");
    ASSIGN_OR_RETURN(std::string addr, AllocateAddress(ingress));
    api::NetworkAttachment* a = out.add_attachments();
    a->set_network_id(ingress_id_);
    a->add_addresses(addr);
  }
  return out;
}

void Allocator::ReleaseNode(const api::Node& node) {
  for (const auto& n : node.attachments()) {
    for (const auto& a : n.addresses()) ReleaseAddress(n.network_id(), a);
  }
}

absl::Status Allocator::RestoreNode(const api::Node& node) {
  for (const auto& n : node.attachments()) {
    auto it = subnets_.find(n.network_id());
    if (it == subnets_.end()) continue;
    for (const auto& a : n.addresses()) {
      ASSIGN_OR_RETURN(auto ip, ipam::ParseIp(a.substr(0, a.find('/'))));
      RETURN_IF_ERROR(base::Annotate(ipam_.Allocate(it->second, ip).status(),
                                     absl::StrCat("restore node ", node.id())));
    }
  }
  return absl::OkStatus();
}

}  // namespace shoal::manager::allocator
