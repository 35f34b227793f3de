#include "lb/mesh.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "base/status.h"
#include "kernel/nft/plan.h"

namespace shoal::lb {
namespace nft = kernel::nft;
namespace {

constexpr char kPortsSet[] = "ingress-ports";

absl::Status Bad(const ServiceConfig& s, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("service ", s.name, ": ", what));
}

std::string PortName(const PortConfig& p, uint16_t port) {
  return absl::StrCat(ProtocolName(p.protocol), "/", port);
}

bool ValidName(const std::string& n) {
  return !n.empty() && n.size() <= 48 && std::all_of(n.begin(), n.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
  });
}

}  // namespace

absl::StatusOr<std::unique_ptr<Mesh>> Mesh::Create(MeshConfig config) {
  if (config.overlay == nullptr || config.node_nft == nullptr || config.deps.store == nullptr ||
      config.deps.netlink == nullptr || !config.deps.open_nft || !config.deps.sysctl) {
    return absl::InvalidArgumentError(
        "mesh config: overlay, node_nft and deps (store, netlink, open_nft, sysctl) are required");
  }
  return std::unique_ptr<Mesh>(new Mesh(std::move(config)));
}

Mesh::~Mesh() { (void)Destroy(); }

LbSandbox* Mesh::sandbox(const std::string& network_id) {
  auto it = sandboxes_.find(network_id);
  return it == sandboxes_.end() ? nullptr : it->second.get();
}

absl::Status Mesh::AddNetwork(const LbNetworkSpec& spec) {
  if (sandboxes_.contains(spec.network_id)) {
    return absl::AlreadyExistsError(
        absl::StrCat("network ", spec.network_id, ": LB sandbox already exists"));
  }
  SandboxSpec s;
  s.name = config_.sandbox_prefix + spec.network_id;
  s.nft = config_.nft;
  SandboxLeg leg;
  leg.driver = config_.overlay;
  leg.network_id = spec.network_id;
  leg.endpoint_id = "lb-" + spec.network_id;
  leg.address = spec.address;
  s.legs.push_back(leg);
  ASSIGN_OR_RETURN(auto sb, LbSandbox::Create(config_.deps, std::move(s)));
  sandboxes_[spec.network_id] = std::move(sb);
  return absl::OkStatus();
}

absl::Status Mesh::RemoveNetwork(const std::string& network_id) {
  auto it = sandboxes_.find(network_id);
  if (it == sandboxes_.end()) {
    return absl::NotFoundError(absl::StrCat("network ", network_id, ": no LB sandbox"));
  }
  if (!it->second->Services().empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("network ", network_id, ": services still use its LB sandbox"));
  }
  absl::Status st = it->second->Destroy();
  sandboxes_.erase(it);
  return st;
}

absl::Status Mesh::EnableIngress(const IngressSpec& spec) {
  if (ingress_) return absl::AlreadyExistsError("ingress: already enabled");
  if (config_.gateway == nullptr) {
    return absl::FailedPreconditionError("ingress: needs the gateway bridge driver");
  }
  SandboxSpec s;
  s.name = config_.ingress_sandbox;
  s.nft = config_.nft;
  SandboxLeg overlay;
  overlay.driver = config_.overlay;
  overlay.network_id = spec.network_id;
  overlay.endpoint_id = "ingress-sbox";
  overlay.ifname = "eth0";
  overlay.address = spec.address;
  overlay.mac = spec.mac;
  SandboxLeg gw;
  gw.driver = config_.gateway;
  gw.network_id = config_.gateway_network_id;
  gw.endpoint_id = "ingress-sbox";
  gw.ifname = "eth1";
  gw.address = spec.gw_address;
  gw.default_route = true;  // replies to clients outside go back through the node
  s.legs = {overlay, gw};
  RETURN_IF_ERROR(config_.deps.sysctl(config_.node_netns_fd, "net/ipv4/ip_forward", "1"));
  RETURN_IF_ERROR(config_.deps.sysctl(
      config_.node_netns_fd,
      absl::StrCat("net/ipv4/conf/", config_.gateway_bridge, "/route_localnet"), "1"));
  ASSIGN_OR_RETURN(ingress_, LbSandbox::Create(config_.deps, std::move(s)));
  ingress_spec_ = spec;
  absl::Status st = SyncNodeTable({});
  if (!st.ok()) {
    (void)ingress_->Destroy();
    ingress_.reset();
    ingress_spec_.reset();
  }
  return st;
}

absl::Status Mesh::SyncNodeTable(const std::set<std::pair<uint8_t, uint16_t>>& ports) {
  nft::Table t;
  t.family = nft::Family::kIp;
  t.name = config_.node_table;
  for (auto [name, hook] :
       {std::pair{"output", nft::Hook::kOutput}, std::pair{"prerouting", nft::Hook::kPrerouting}}) {
    t.chains.push_back(
        {name, nft::BaseChain{nft::ChainType::kNat, hook, nft::kPriorityDstNat, false}});
  }
  t.chains.push_back({"postrouting", nft::BaseChain{nft::ChainType::kNat, nft::Hook::kPostrouting,
                                                    nft::kPrioritySrcNat, false}});
  nft::Set set;
  set.name = kPortsSet;
  set.key = {nft::FieldType::kInetProto, nft::FieldType::kInetService};
  for (auto [proto, port] : ports) {
    nft::Element e;
    e.key = {nft::Proto(proto), nft::Port(port)};
    set.elements.push_back(std::move(e));
  }
  t.sets.push_back(std::move(set));
  ASSIGN_OR_RETURN(nft::Addr to, nft::ParseAddr(ingress_spec_->gw_address.addr.ToString()));
  std::vector<nft::Field> key = {nft::Field::kL4Proto, nft::Field::kDport};
  // Output: clients on the node itself, 127.0.0.1 included (see mesh.h).
  t.rules.push_back(
      nft::RuleBuilder(nft::Family::kIp, "output").FibDaddrLocal().InSet(key, kPortsSet).Dnat(to));
  t.rules.push_back(nft::RuleBuilder(nft::Family::kIp, "postrouting")
                        .CtStatus(nft::kCtStatusDnat)
                        .Saddr(*nft::ParsePrefix("127.0.0.0/8"))
                        .OifName(config_.gateway_bridge)
                        .Masquerade());
  t.rules.push_back(nft::RuleBuilder(nft::Family::kIp, "prerouting")
                        .FibDaddrLocal()
                        .InSet(key, kPortsSet)
                        .Dnat(to));
  RETURN_IF_ERROR(nft::SyncTable(*config_.node_nft, t).status());
  node_table_ = true;
  return absl::OkStatus();
}

absl::StatusOr<Mesh::Desired> Mesh::Plan(const std::vector<ServiceConfig>& services) const {
  Desired d;
  std::set<std::string> names;
  // (proto, published port) -> "service (mode)"
  std::map<std::pair<uint8_t, uint16_t>, std::string> published;
  std::map<std::string, std::string> vips;  // "<network> <vip> <proto>/<port>" -> service
  for (const ServiceConfig& s : services) {
    if (!ValidName(s.name)) {
      return absl::InvalidArgumentError(
          absl::StrCat("service name \"", s.name, "\": must be 1-48 characters of [a-z0-9_-]"));
    }
    if (!names.insert(s.name).second) return Bad(s, "listed twice");
    if (s.network_id.empty()) return Bad(s, "network_id: required");
    if (s.tasks.empty()) {
      return Bad(s, "tasks: empty backend set (a service with no tasks is removed instead)");
    }
    std::set<std::string> task_ids;
    for (const TaskEndpoint& t : s.tasks) {
      if (t.id.empty() || !task_ids.insert(t.id).second) {
        return Bad(s, absl::StrCat("task id \"", t.id, "\": empty or listed twice"));
      }
    }
    bool dnsrr = s.endpoint_mode == EndpointMode::kDnsrr;
    if (dnsrr && !s.vip.empty()) return Bad(s, "vip: must be empty with endpoint_mode dnsrr");
    const LbSandbox* sb = nullptr;
    if (!dnsrr && s.balance_vip) {
      if (s.vip.empty()) return Bad(s, "vip: required with endpoint_mode vip");
      auto it = sandboxes_.find(s.network_id);
      if (it == sandboxes_.end()) {
        return Bad(s, absl::StrCat("network_id ", s.network_id,
                                   ": no LB sandbox for this network on this node"));
      }
      sb = it->second.get();
    }
    std::set<std::pair<uint8_t, uint16_t>> targets;
    for (size_t i = 0; i < s.ports.size(); ++i) {
      const PortConfig& p = s.ports[i];
      std::string field = absl::StrCat("ports[", i, "]");
      if (p.target_port == 0) return Bad(s, field + ".target_port: must be 1-65535");
      uint8_t proto = static_cast<uint8_t>(p.protocol);
      if (sb != nullptr && targets.insert({proto, p.target_port}).second) {
        Service v;
        v.name = absl::StrCat(s.name, "-v-", ProtocolName(p.protocol), "-", p.target_port);
        v.vip = s.vip;
        v.protocol = p.protocol;
        v.port = p.target_port;
        v.scheduler = s.scheduler;
        for (const TaskEndpoint& t : s.tasks) {
          v.backends.push_back({t.ip, p.target_port, t.draining ? 0u : 1u});
        }
        Service named = v;  // errors name the service as the user knows it
        named.name = s.name;
        RETURN_IF_ERROR(sb->CheckVip(named));
        std::string frontend = absl::StrCat(s.vip, " ", PortName(p, p.target_port));
        auto [vit, vfresh] = vips.emplace(absl::StrCat(s.network_id, " ", frontend), s.name);
        if (!vfresh) {
          return absl::FailedPreconditionError(
              absl::StrCat("port conflict: service ", s.name, ": vip ", frontend, " (", field,
                           ") is already used by service ", vit->second));
        }
        if (absl::Status st = ValidateService(v); !st.ok()) return Bad(s, st.message());
        d.by_network[s.network_id].push_back(std::move(v));
      }
      if (p.published_port == 0) continue;
      std::string mode = p.mode == PublishMode::kIngress ? "ingress" : "host";
      auto [it, fresh] = published.emplace(std::pair{proto, p.published_port},
                                           absl::StrCat("service ", s.name, " (", mode, ")"));
      if (!fresh) {
        return absl::FailedPreconditionError(absl::StrCat(
            "port conflict: ", field, ".published_port ", PortName(p, p.published_port),
            " of service ", s.name, " (", mode, ") is already published by ", it->second));
      }
      if (p.mode == PublishMode::kIngress) {
        if (dnsrr) {
          return Bad(s, field +
                            ": a port published in ingress mode cannot be used with "
                            "endpoint_mode dnsrr (publish it in host mode)");
        }
        if (!ingress_) {
          return Bad(s, field + ": ingress publishing needs the ingress network on this node");
        }
        Service g;
        g.name = absl::StrCat(s.name, "-i-", ProtocolName(p.protocol), "-", p.published_port);
        g.frontend = Frontend::kPublished;
        g.protocol = p.protocol;
        g.port = p.published_port;
        g.scheduler = s.scheduler;
        for (const TaskEndpoint& t : s.tasks) {
          if (t.ingress_ip.empty()) {
            return Bad(s, absl::StrCat("task ", t.id, ": ingress_ip: required for ", field,
                                       " published in ingress mode"));
          }
          g.backends.push_back({t.ingress_ip, p.target_port, t.draining ? 0u : 1u});
        }
        if (absl::Status st = ValidateService(g); !st.ok()) return Bad(s, st.message());
        d.ingress.push_back(std::move(g));
        d.ingress_ports.insert({proto, p.published_port});
        continue;
      }
      // Host mode: only the task on this node, straight through the gateway bridge.
      if (config_.gateway == nullptr) {
        return Bad(s, field + ": host-mode publishing needs the gateway bridge driver");
      }
      const TaskEndpoint* local = nullptr;
      for (const TaskEndpoint& t : s.tasks) {
        if (!t.local) continue;
        if (local != nullptr) {
          return absl::FailedPreconditionError(
              absl::StrCat("port conflict: ", field, ".published_port ",
                           PortName(p, p.published_port), " (host mode) of service ", s.name,
                           ": tasks ", local->id, " and ", t.id, " both run on this node"));
        }
        if (t.gw_endpoint_id.empty()) {
          return Bad(s, absl::StrCat("task ", t.id, ": gw_endpoint_id: required for ", field,
                                     " published in host mode"));
        }
        local = &t;
      }
      if (local == nullptr) continue;
      d.host_ports.push_back(netdrv::PortMapping{local->gw_endpoint_id, config_.gateway_network_id,
                                                 proto, p.published_port, p.target_port});
    }
  }
  for (const auto& [net, list] : d.by_network) RETURN_IF_ERROR(ValidateServices(list));
  RETURN_IF_ERROR(ValidateServices(d.ingress));
  return d;
}

absl::Status Mesh::Validate(const std::vector<ServiceConfig>& services) const {
  return Plan(services).status();
}

nft::Table TaskIngressFilter(const std::string& ifname,
                             const std::set<std::pair<uint8_t, uint16_t>>& targets) {
  nft::Table t;
  t.family = nft::Family::kIp;
  t.name = "shoal-task-ingress";
  t.chains.push_back({"input", nft::BaseChain{nft::ChainType::kFilter, nft::Hook::kInput,
                                              nft::kPriorityFilter, false}});
  nft::Set set;
  set.name = "published";
  set.key = {nft::FieldType::kInetProto, nft::FieldType::kInetService};
  for (auto [proto, port] : targets) {
    nft::Element e;
    e.key = {nft::Proto(proto), nft::Port(port)};
    set.elements.push_back(std::move(e));
  }
  t.sets.push_back(std::move(set));
  t.rules.push_back(nft::RuleBuilder(nft::Family::kIp, "input")
                        .IifName(ifname)
                        .CtState(nft::kCtEstablished | nft::kCtRelated)
                        .Verdict(nft::Accept()));
  t.rules.push_back(nft::RuleBuilder(nft::Family::kIp, "input")
                        .IifName(ifname)
                        .InSet({nft::Field::kL4Proto, nft::Field::kDport}, "published")
                        .Verdict(nft::Accept()));
  t.rules.push_back(
      nft::RuleBuilder(nft::Family::kIp, "input").IifName(ifname).Verdict(nft::Drop()));
  return t;
}

absl::Status Converge(LbSandbox& sandbox, const std::vector<Service>& want) {
  std::map<std::string, Service> have;
  for (Service& s : sandbox.Services()) have[s.name] = std::move(s);
  Change change;
  for (const Service& w : want) {
    auto it = have.find(w.name);
    if (it == have.end() || !(it->second == w)) change.upsert.push_back(w);
    if (it != have.end()) have.erase(it);
  }
  for (const auto& [name, s] : have) change.remove.push_back(name);
  if (change.upsert.empty() && change.remove.empty()) return absl::OkStatus();
  return sandbox.Apply(change);
}

absl::Status Mesh::SetServices(const std::vector<ServiceConfig>& services) {
  ASSIGN_OR_RETURN(Desired d, Plan(services));
  for (auto& [net, sb] : sandboxes_) RETURN_IF_ERROR(Converge(*sb, d.by_network[net]));
  if (ingress_) {
    RETURN_IF_ERROR(Converge(*ingress_, d.ingress));
    RETURN_IF_ERROR(SyncNodeTable(d.ingress_ports));
    ingress_ports_ = d.ingress_ports;
  }
  std::sort(d.host_ports.begin(), d.host_ports.end());
  for (const netdrv::PortMapping& m : host_ports_) {
    if (std::binary_search(d.host_ports.begin(), d.host_ports.end(), m)) continue;
    absl::Status st = config_.gateway->UnpublishPort(m);
    if (!st.ok() && !absl::IsNotFound(st)) return st;
  }
  std::vector<netdrv::PortMapping> kept;
  for (const netdrv::PortMapping& m : d.host_ports) {
    if (!std::binary_search(host_ports_.begin(), host_ports_.end(), m)) {
      RETURN_IF_ERROR(config_.gateway->PublishPort(m));
    }
    kept.push_back(m);
  }
  host_ports_ = std::move(kept);
  return absl::OkStatus();
}

absl::Status Mesh::Reconcile() {
  absl::Status first;
  auto note = [&](absl::Status st) {
    if (!st.ok() && first.ok()) first = st;
  };
  for (auto& [net, sb] : sandboxes_) note(sb->Reconcile());
  if (ingress_) {
    note(ingress_->Reconcile());
    note(SyncNodeTable(ingress_ports_));
  }
  return first;
}

absl::Status Mesh::Destroy() {
  absl::Status first;
  auto note = [&](absl::Status st) {
    if (!st.ok() && !absl::IsNotFound(st) && first.ok()) first = st;
  };
  for (const netdrv::PortMapping& m : host_ports_) note(config_.gateway->UnpublishPort(m));
  host_ports_.clear();
  if (node_table_) {
    note(nft::DeleteTableIfExists(*config_.node_nft,
                                  nft::TableRef{nft::Family::kIp, config_.node_table}));
    node_table_ = false;
  }
  if (ingress_) note(ingress_->Destroy());
  ingress_.reset();
  ingress_spec_.reset();
  ingress_ports_.clear();
  for (auto& [net, sb] : sandboxes_) note(sb->Destroy());
  sandboxes_.clear();
  return first;
}

}  // namespace shoal::lb
