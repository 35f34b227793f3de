#include "agent/network.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "base/file.h"
#include "base/log.h"
#include "base/status.h"
#include "dns/container_dns.h"
#include "kernel/nft/netlink_nft.h"
#include "kernel/nft/plan.h"
#include "lb/nft_backend.h"

namespace shoal::agent {

namespace {

constexpr char kLbTable[] = "shoal-lb";
constexpr char kDnsIp[] = "127.0.0.11";
// Must match manager/dispatcher (kIngressSandboxPrefix): the agent does not depend on manager/.
constexpr char kIngressSandboxPrefix[] = "ingress-sbox-";
constexpr char kIngressSandbox[] = "ingress-sbox";
constexpr char kGatewayBridge[] = "shoal_gwbridge";
constexpr char kGatewayNetwork[] = "gwbridge";

std::string Key(const std::string& task, const std::string& net) {
  return absl::StrCat(task, "/", net);
}

// "10.0.1.5/24" -> "10.0.1.5".
std::string AddrOf(const std::string& cidr) { return cidr.substr(0, cidr.find('/')); }

std::string NetName(const api::Network& n) {
  return n.spec().annotations().name().empty() ? n.id() : n.spec().annotations().name();
}

absl::StatusOr<netdrv::NetworkSpec> SpecOf(const api::Network& n) {
  std::string who = absl::StrCat("network ", NetName(n), " (", n.id(), "): ");
  const std::string& driver = n.spec().driver_config().name();
  if (!driver.empty() && driver != "overlay") {
    return absl::UnimplementedError(
        absl::StrCat(who, "driver \"", driver, "\" is not supported by the agent (overlay only)"));
  }
  if (n.ipam().configs().empty()) {
    return absl::FailedPreconditionError(who + "ipam: no subnet allocated");
  }
  netdrv::NetworkSpec s;
  s.id = n.id();
  const api::IPAMConfig& c = n.ipam().configs(0);
  auto subnet = kernel::IpPrefix::Parse(c.subnet());
  if (!subnet.ok()) return absl::InvalidArgumentError(who + "ipam.subnet: " + c.subnet());
  s.subnet = subnet->Network();
  auto gw = kernel::IpAddr::Parse(AddrOf(c.gateway()));
  if (!gw.ok()) return absl::InvalidArgumentError(who + "ipam.gateway: \"" + c.gateway() + "\"");
  s.gateway = *gw;
  auto vni = n.driver_state().options().find("vni");
  if (vni == n.driver_state().options().end() || !absl::SimpleAtoi(vni->second, &s.vni)) {
    return absl::FailedPreconditionError(who + "driver_state: no VNI allocated");
  }
  return s;
}

base::UniqueFd OpenNetns(pid_t pid) {
  std::string path = absl::StrCat("/proc/", pid, "/ns/net");
  return base::UniqueFd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
}

bool IsVip(const api::Service& s) {
  return s.spec().endpoint().mode() != api::EndpointSpec::RESOLUTION_MODE_DNSRR;
}

const google::protobuf::RepeatedPtrField<api::PortConfig>& PortsOf(const api::Service& s) {
  return s.endpoint().ports().empty() ? s.spec().endpoint().ports() : s.endpoint().ports();
}

}  // namespace

std::string EmbeddedResolvConf(const api::ContainerSpec& c) {
  std::string out = absl::StrCat("nameserver ", kDnsIp, "\n");
  const auto& dns = c.dns_config();
  if (dns.search_size() > 0) {
    absl::StrAppend(&out, "search ", absl::StrJoin(dns.search(), " "), "\n");
  }
  std::vector<std::string> options(dns.options().begin(), dns.options().end());
  if (std::none_of(options.begin(), options.end(),
                   [](const std::string& o) { return absl::StartsWith(o, "ndots:"); })) {
    options.push_back("ndots:0");
  }
  absl::StrAppend(&out, "options ", absl::StrJoin(options, " "), "\n");
  return out;
}

Networking::Networking(const AgentOptions& options)
    : opts_(options), sandboxes_(options.exec_root + "/netns") {}

Networking::~Networking() {
  if (loop_) loop_->Stop();
  std::lock_guard<std::mutex> lock(mu_);
  DisableIngress(/*release=*/false);  // networks stay for the next agent (live restore)
  resolver_.reset();
}

void Networking::SetNodeId(const std::string& node_id) {
  std::lock_guard<std::mutex> lock(mu_);
  node_id_ = node_id;
}

void Networking::Apply(bool complete, const std::vector<api::AssignmentChange>& changes) {
  std::lock_guard<std::mutex> lock(mu_);
  std::lock_guard<std::mutex> dlock(driver_mu_);
  if (complete) {
    networks_.clear();
    endpoints_.clear();
    services_.clear();
  }
  bool touched = complete;
  for (const auto& c : changes) {
    const api::Assignment& a = c.assignment();
    const bool remove = c.action() == api::AssignmentChange::ACTION_REMOVE;
    if (a.has_network()) {
      const std::string& id = a.network().network().id();
      if (remove) {
        networks_.erase(id);
      } else {
        networks_[id] = a.network().network();
      }
    } else if (a.has_endpoint()) {
      std::string key = Key(a.endpoint().task_id(), a.endpoint().network_id());
      if (remove) {
        endpoints_.erase(key);
      } else {
        endpoints_[key] = a.endpoint();
      }
    } else if (a.has_service()) {
      if (remove) {
        services_.erase(a.service().id());
      } else {
        services_[a.service().id()] = a.service();
      }
    } else {
      continue;
    }
    touched = true;
  }
  if (complete && !seen_complete_) {
    seen_complete_ = true;
    // After a restart: adopt what the set still wants, purge the rest. The VTEP is the
    // configured one or the one the dispatcher reports for this node's endpoints.
    std::string vtep = opts_.vtep_addr;
    for (const auto& [key, e] : endpoints_) {
      if (vtep.empty() && !node_id_.empty() && e.node_id() == node_id_) vtep = e.node_vtep();
    }
    if (!vtep.empty()) {
      absl::Status s = EnsureDriver(vtep);
      if (!s.ok()) base::Logger("agent")->warn("networking: {}", std::string(s.message()));
    }
    if (overlay_ == nullptr) PurgeSandboxes();
  }
  if (!touched) return;
  SyncIngress();
  SyncPeers();
  SyncDns();
  for (const auto& [id, a] : attached_) {
    absl::Status s = SyncLb(id, a);
    if (!s.ok()) base::Logger("agent")->warn("task {}: lb: {}", id, std::string(s.message()));
  }
  ReleaseUnused();
}

absl::Status Networking::Ready(const api::Task& task) const {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& att : task.networks()) {
    if (!networks_.count(att.network_id())) {
      return absl::UnavailableError(
          absl::StrCat("network ", att.network_id(), ": state not received yet"));
    }
  }
  return absl::OkStatus();
}

absl::Status Networking::EnsureDriver(const std::string& vtep) {
  if (overlay_ != nullptr) return absl::OkStatus();
  auto addr = kernel::IpAddr::Parse(vtep);
  if (!addr.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("networking: vtep address \"", vtep, "\" is not an IP address"));
  }
  netdrv::OverlayConfig oc;
  oc.node_netns_fd = opts_.node_netns_fd;
  oc.vtep = *addr;
  oc.vxlan_port = opts_.data_path_port;
  ASSIGN_OR_RETURN(auto driver, netdrv::OverlayDriver::Create(oc, netlink_, sandboxes_, random_));
  // Adopt the sandboxes of networks still assigned, with this node's endpoints on them.
  std::vector<netdrv::NetworkSpec> known;
  std::map<std::string, std::vector<std::string>> eps;
  for (const auto& [id, n] : networks_) {
    auto spec = SpecOf(n);
    if (spec.ok()) known.push_back(*spec);
  }
  for (const auto& [key, e] : endpoints_) {
    // The ingress sandbox is rebuilt from scratch (EnableIngress), never adopted.
    if (e.node_vtep() == vtep && !absl::StartsWith(e.task_id(), kIngressSandboxPrefix)) {
      eps[e.network_id()].push_back(e.task_id());
    }
  }
  absl::Status restored = driver->Restore(known, eps);
  if (!restored.ok()) {
    base::Logger("agent")->warn("networking: restore: {}", std::string(restored.message()));
  }
  for (const auto& s : known) {
    if (driver->SandboxFd(s.id).ok()) created_.insert(s.id);
  }
  overlay_ = std::move(driver);
  vtep_ = vtep;
  netdrv::ReconcileLoop::Options lo;
  lo.interval = std::chrono::milliseconds(5000);
  lo.node_netns_fd = opts_.node_netns_fd;
  loop_ = std::make_unique<netdrv::ReconcileLoop>(*overlay_, driver_mu_, lo);
  // The loop takes driver_mu_, which the caller holds: it starts waiting for it.
  loop_->Start();
  return absl::OkStatus();
}

void Networking::PurgeSandboxes() {
  auto names = sandboxes_.List();
  if (!names.ok()) return;
  for (const std::string& name : *names) {
    auto fd = sandboxes_.Open(name);
    if (fd.ok()) {
      auto nl = netlink_.Open(fd->get());
      auto links = nl.ok() ? (*nl)->ListLinks() : absl::StatusOr<std::vector<kernel::Link>>();
      if (links.ok()) {
        for (const auto& l : *links) {
          if (l.kind != kernel::LinkKind::kLoopback) (void)(*nl)->DeleteLink(l.index);
        }
      }
    }
    (void)sandboxes_.Delete(name);
  }
}

absl::Status Networking::EnsureNetwork(const std::string& id) {
  if (created_.count(id)) return absl::OkStatus();
  auto it = networks_.find(id);
  if (it == networks_.end()) {
    return absl::UnavailableError(absl::StrCat("network ", id, ": state not received yet"));
  }
  ASSIGN_OR_RETURN(netdrv::NetworkSpec spec, SpecOf(it->second));
  RETURN_IF_ERROR(overlay_->CreateNetwork(spec));
  created_.insert(id);
  return absl::OkStatus();
}

void Networking::ReleaseUnused() {
  if (overlay_ == nullptr) return;
  // In use: by an attached container, or by a local task the assignment still lists (an
  // adopted container not re-attached yet, a task being prepared).
  std::set<std::string> used;
  if (!ingress_.empty()) used.insert(ingress_);
  for (const auto& [id, a] : attached_) used.insert(a.networks.begin(), a.networks.end());
  for (const auto& [key, e] : endpoints_) {
    if (e.node_vtep() == vtep_) used.insert(e.network_id());
  }
  for (auto it = created_.begin(); it != created_.end();) {
    if (used.count(*it)) {
      ++it;
      continue;
    }
    absl::Status s = overlay_->DeleteNetwork(*it);
    if (!s.ok() && !absl::IsNotFound(s)) {
      base::Logger("agent")->warn("network {}: delete: {}", *it, std::string(s.message()));
      ++it;
      continue;
    }
    it = created_.erase(it);
  }
}

void Networking::SyncPeers() {
  if (overlay_ == nullptr) return;
  for (const std::string& net : created_) {
    auto n = networks_.find(net);
    if (n == networks_.end()) continue;
    auto spec = SpecOf(n->second);
    if (!spec.ok()) continue;
    std::vector<netdrv::Peer> peers;
    for (const auto& [key, e] : endpoints_) {
      if (e.network_id() != net || e.node_vtep().empty() || e.node_vtep() == vtep_) continue;
      auto ip = kernel::IpAddr::Parse(AddrOf(e.ip()));
      auto mac = kernel::MacAddr::Parse(e.mac());
      auto vtep = kernel::IpAddr::Parse(e.node_vtep());
      if (!ip.ok() || !mac.ok() || !vtep.ok() || !spec->subnet.Contains(*ip)) {
        base::Logger("agent")->warn("network {}: endpoint {} skipped (ip {}, mac {}, vtep {})", net,
                                    e.task_id(), e.ip(), e.mac(), e.node_vtep());
        continue;
      }
      peers.push_back(netdrv::Peer{e.task_id(), *ip, *mac, *vtep});
    }
    absl::Status s = overlay_->SetPeers(net, peers);
    if (!s.ok())
      base::Logger("agent")->warn("network {}: peers: {}", net, std::string(s.message()));
  }
}

void Networking::SyncDns() {
  auto log = base::Logger("agent");
  std::map<std::string, std::set<std::string>> want_services, want_tasks;
  for (const auto& [nid, n] : networks_) {
    const std::string name = NetName(n);
    for (const auto& [sid, s] : services_) {
      dns::ServiceRecord r;
      r.name = s.spec().annotations().name();
      r.dnsrr = !IsVip(s);
      bool on_net = false;
      for (const auto& vip : s.endpoint().virtual_ips()) {
        if (vip.network_id() != nid) continue;
        on_net = true;
        auto bytes = dns::ParseIp(AddrOf(vip.addr()));
        if (bytes.ok() && !r.dnsrr) r.vips.push_back(*bytes);
      }
      for (const auto& att : s.spec().task().networks()) {
        if (att.target() != nid && att.target() != name) continue;
        on_net = true;
        r.aliases.assign(att.aliases().begin(), att.aliases().end());
      }
      if (!on_net || r.name.empty() || (!r.dnsrr && r.vips.empty())) continue;
      for (const auto& p : PortsOf(s)) {
        r.ports.push_back({p.name(), p.protocol() == api::PortConfig::PROTOCOL_UDP ? "udp" : "tcp",
                           static_cast<uint16_t>(p.target_port())});
        if (r.ports.back().name.empty()) r.ports.pop_back();
      }
      std::string sname = r.name;
      absl::Status st = table_.SetService(name, std::move(r));
      if (st.ok()) {
        want_services[name].insert(sname);
      } else {
        log->warn("dns: service {}: {}", sname, std::string(st.message()));
      }
    }
    for (const auto& [key, e] : endpoints_) {
      if (e.network_id() != nid || absl::StartsWith(e.task_id(), kIngressSandboxPrefix)) continue;
      auto ip = dns::ParseIp(AddrOf(e.ip()));
      if (!ip.ok()) continue;
      dns::TaskRecord t;
      t.id = e.task_id();
      t.service = e.service_name();
      if (!e.task_name().empty()) t.names.push_back(e.task_name());
      t.names.insert(t.names.end(), e.aliases().begin(), e.aliases().end());
      t.ips.push_back(*ip);
      dns::TaskRecord bare = t;
      bare.names.clear();
      absl::Status st = table_.SetTask(name, std::move(t));
      if (!st.ok()) st = table_.SetTask(name, std::move(bare));  // a name it refuses
      if (st.ok()) want_tasks[name].insert(e.task_id());
    }
  }
  for (const auto& [net, names] : dns_services_) {
    for (const auto& n : names) {
      if (!want_services[net].count(n)) (void)table_.RemoveService(net, n);
    }
  }
  for (const auto& [net, ids] : dns_tasks_) {
    for (const auto& id : ids) {
      if (!want_tasks[net].count(id)) (void)table_.RemoveTask(net, id);
    }
  }
  dns_services_ = std::move(want_services);
  dns_tasks_ = std::move(want_tasks);
}

absl::Status Networking::SyncLb(const std::string& task_id, const Attached& a) {
  std::vector<lb::Service> services;
  for (const std::string& nid : a.networks) {
    for (const auto& [sid, s] : services_) {
      if (!IsVip(s)) continue;
      std::string vip;
      for (const auto& v : s.endpoint().virtual_ips()) {
        if (v.network_id() == nid) vip = AddrOf(v.addr());
      }
      if (vip.empty()) continue;
      for (const auto& p : PortsOf(s)) {
        if (p.target_port() == 0 || p.target_port() > 65535) continue;
        lb::Service ls;
        ls.name = absl::AsciiStrToLower(absl::StrCat(sid.substr(0, 20), "-", nid.substr(0, 12), "-",
                                                     p.protocol(), "-", p.target_port()));
        ls.vip = vip;
        ls.protocol = p.protocol() == api::PortConfig::PROTOCOL_UDP    ? lb::Protocol::kUdp
                      : p.protocol() == api::PortConfig::PROTOCOL_SCTP ? lb::Protocol::kSctp
                                                                       : lb::Protocol::kTcp;
        ls.port = static_cast<uint16_t>(p.target_port());
        for (const auto& [key, e] : endpoints_) {
          if (e.network_id() != nid || e.service_id() != sid || !e.running()) continue;
          ls.backends.push_back({AddrOf(e.ip()), ls.port, 1});
        }
        if (!ls.backends.empty()) services.push_back(std::move(ls));
      }
    }
  }
  base::UniqueFd ns = OpenNetns(a.pid);
  if (!ns) return base::ErrnoStatus(errno, "open the namespace of task ", task_id);
  ASSIGN_OR_RETURN(auto nft, kernel::nft::OpenNft(ns.get()));
  if (services.empty()) {
    return kernel::nft::DeleteTableIfExists(*nft, {kernel::nft::Family::kIp, kLbTable});
  }
  lb::NftBackendOptions o;
  o.table = kLbTable;
  ASSIGN_OR_RETURN(kernel::nft::Table table, lb::NftBackend::DesiredTable(services, o));
  return kernel::nft::SyncTable(*nft, table).status();
}

std::vector<std::string> Networking::Upstreams(const api::Task& task) const {
  const auto& ns = task.spec().container().dns_config().nameservers();
  std::vector<std::string> out(ns.begin(), ns.end());
  if (out.empty() && opts_.dns_upstreams) out = *opts_.dns_upstreams;
  if (out.empty() && !opts_.dns_upstreams) {
    auto host = base::ReadFile("/etc/resolv.conf");
    if (host.ok()) {
      for (absl::string_view line : absl::StrSplit(*host, '\n')) {
        std::vector<std::string> f = absl::StrSplit(line, ' ', absl::SkipEmpty());
        if (f.size() >= 2 && f[0] == "nameserver") out.push_back(f[1]);
      }
    }
  }
  if (out.size() > dns::kMaxUpstreams) out.resize(dns::kMaxUpstreams);
  return out;
}

absl::Status Networking::Attach(const api::Task& task, pid_t pid) {
  if (task.networks().empty()) return absl::OkStatus();
  std::lock_guard<std::mutex> lock(mu_);
  std::lock_guard<std::mutex> dlock(driver_mu_);
  if (auto it = attached_.find(task.id()); it != attached_.end()) {
    if (it->second.pid == pid) return SyncLb(task.id(), it->second);
    RETURN_IF_ERROR(DetachLocked(task.id()));
  }
  // Non-ingress networks first (eth0 carries the default route), ingress last.
  std::vector<const api::NetworkAttachment*> order;
  for (const auto& att : task.networks()) {
    auto n = networks_.find(att.network_id());
    if (n == networks_.end()) {
      return absl::UnavailableError(
          absl::StrCat("network ", att.network_id(), ": state not received yet"));
    }
    if (!n->second.spec().ingress()) order.push_back(&att);
  }
  for (const auto& att : task.networks()) {
    if (networks_.at(att.network_id()).spec().ingress()) order.push_back(&att);
  }
  std::string vtep = opts_.vtep_addr;
  if (vtep.empty()) {
    auto e = endpoints_.find(Key(task.id(), order[0]->network_id()));
    if (e != endpoints_.end()) vtep = e->second.node_vtep();
  }
  if (vtep.empty()) {
    return absl::UnavailableError("networking: this node's VTEP address is not known yet");
  }
  RETURN_IF_ERROR(EnsureDriver(vtep));
  base::UniqueFd ns = OpenNetns(pid);
  if (!ns) return base::ErrnoStatus(errno, "open the network namespace of pid ", pid);

  attached_[task.id()] = Attached{pid, {}, false};
  Attached& a = attached_[task.id()];
  auto build = [&]() -> absl::Status {
    ASSIGN_OR_RETURN(auto ctr, netlink_.Open(ns.get()));
    for (size_t i = 0; i < order.size(); ++i) {
      const api::NetworkAttachment& att = *order[i];
      const api::Network& net = networks_.at(att.network_id());
      std::string who = absl::StrCat("network ", NetName(net), ": ");
      if (att.addresses().empty()) {
        return absl::FailedPreconditionError(who + "the task has no address allocated on it");
      }
      RETURN_IF_ERROR(base::Annotate(EnsureNetwork(att.network_id()), NetName(net)));
      a.networks.push_back(att.network_id());
      netdrv::EndpointSpec es;
      es.id = task.id();
      es.network_id = att.network_id();
      es.netns_fd = ns.get();
      es.ifname = absl::StrCat("eth", i);
      es.default_route = i == 0 && !net.spec().ingress();
      auto addr = kernel::IpPrefix::Parse(att.addresses(0));
      if (!addr.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat(who, "address \"", att.addresses(0), "\" is not a CIDR"));
      }
      es.address = *addr;
      if (!att.mac_address().empty()) {
        auto mac = kernel::MacAddr::Parse(att.mac_address());
        if (!mac.ok()) {
          return absl::InvalidArgumentError(
              absl::StrCat(who, "mac \"", att.mac_address(), "\" is not a MAC address"));
        }
        es.mac = *mac;
      }
      // An adopted container (agent restart) still has its interface: keep it.
      auto link = ctr->GetLink(es.ifname);
      if (link.ok()) {
        auto addrs = ctr->ListAddresses();
        bool same = addrs.ok() && std::any_of(addrs->begin(), addrs->end(), [&](const auto& x) {
                      return x.link_index == link->index && x.prefix == es.address;
                    });
        if (same) continue;
        return absl::AlreadyExistsError(
            absl::StrCat(who, "the container already has ", es.ifname, " with another address"));
      }
      auto ep = overlay_->CreateEndpoint(es);
      if (!ep.ok()) return base::Annotate(ep.status(), NetName(net));
    }
    if (resolver_ == nullptr) {
      ASSIGN_OR_RETURN(resolver_, dns::Resolver::Start(&table_));
    }
    dns::EndpointSpec ds;
    ds.id = task.id();
    ds.netns_fd = ns.get();
    for (const std::string& nid : a.networks) ds.networks.push_back(NetName(networks_.at(nid)));
    ds.upstreams = Upstreams(task);
    ASSIGN_OR_RETURN(auto nft, kernel::nft::OpenNft(ns.get()));
    RETURN_IF_ERROR(dns::ServeContainer(*resolver_, *nft, ds).status());
    a.dns = true;
    return SyncLb(task.id(), a);
  };
  absl::Status st = build();
  if (!st.ok()) {
    (void)DetachLocked(task.id());
    ReleaseUnused();
    return st;
  }
  SyncPeers();  // a new network gets its peers at once
  return absl::OkStatus();
}

absl::Status Networking::DetachLocked(const std::string& task_id) {
  auto it = attached_.find(task_id);
  if (it == attached_.end()) return absl::OkStatus();
  absl::Status first;
  if (it->second.dns && resolver_ != nullptr) {
    // The redirect table lives in the container's namespace and goes with it.
    absl::Status s = dns::StopServing(*resolver_, nullptr, task_id);
    if (!s.ok()) first = s;
  }
  for (const std::string& nid : it->second.networks) {
    absl::Status s = overlay_->DeleteEndpoint(nid, task_id);
    if (!s.ok() && !absl::IsNotFound(s) && first.ok()) first = s;
  }
  attached_.erase(it);
  return first;
}

absl::Status Networking::Detach(const std::string& task_id) {
  std::lock_guard<std::mutex> lock(mu_);
  std::lock_guard<std::mutex> dlock(driver_mu_);
  absl::Status s = DetachLocked(task_id);
  ReleaseUnused();
  return s;
}

std::vector<std::string> Networking::NetworksCreated() const {
  std::lock_guard<std::mutex> lock(mu_);
  return {created_.begin(), created_.end()};
}

void Networking::SyncIngress() {
  const api::Network* ingress = nullptr;
  for (const auto& [id, n] : networks_) {
    if (n.spec().ingress()) ingress = &n;
  }
  const api::EndpointRecord* own = nullptr;
  if (ingress != nullptr && !node_id_.empty()) {
    auto e = endpoints_.find(Key(absl::StrCat(kIngressSandboxPrefix, node_id_), ingress->id()));
    if (e != endpoints_.end()) own = &e->second;
  }
  auto log = base::Logger("agent");
  if (own == nullptr || (mesh_ != nullptr && ingress_ != ingress->id())) DisableIngress();
  if (own == nullptr) return;
  if (mesh_ == nullptr) {
    absl::Status s = EnableIngress(*ingress, *own);
    if (!s.ok()) {
      log->warn("routing mesh: {}", std::string(s.message()));
      DisableIngress();
      return;
    }
  }
  // Ingress-mode published ports of every service, to its running tasks' ingress addresses.
  std::vector<lb::ServiceConfig> want;
  for (const auto& [sid, s] : services_) {
    lb::ServiceConfig c;
    c.name = absl::AsciiStrToLower(sid.substr(0, 40));
    c.network_id = ingress_;
    c.balance_vip = false;
    for (const auto& p : PortsOf(s)) {
      if (p.publish_mode() != api::PortConfig::PUBLISH_MODE_INGRESS || p.published_port() == 0 ||
          p.target_port() == 0) {
        continue;
      }
      lb::PortConfig lp;
      lp.protocol = p.protocol() == api::PortConfig::PROTOCOL_UDP    ? lb::Protocol::kUdp
                    : p.protocol() == api::PortConfig::PROTOCOL_SCTP ? lb::Protocol::kSctp
                                                                     : lb::Protocol::kTcp;
      lp.target_port = static_cast<uint16_t>(p.target_port());
      lp.published_port = static_cast<uint16_t>(p.published_port());
      lp.mode = lb::PublishMode::kIngress;
      c.ports.push_back(lp);
    }
    if (c.ports.empty()) continue;
    for (const auto& [key, e] : endpoints_) {
      if (e.network_id() != ingress_ || e.service_id() != sid || !e.running()) continue;
      lb::TaskEndpoint t;
      t.id = e.task_id();
      t.ip = AddrOf(e.ip());
      t.ingress_ip = t.ip;
      c.tasks.push_back(std::move(t));
    }
    if (!c.tasks.empty()) want.push_back(std::move(c));
  }
  absl::Status s = mesh_->SetServices(want);
  if (!s.ok()) log->warn("routing mesh: {}", std::string(s.message()));
}

absl::Status Networking::EnableIngress(const api::Network& ingress,
                                       const api::EndpointRecord& own) {
  RETURN_IF_ERROR(EnsureDriver(own.node_vtep()));
  RETURN_IF_ERROR(EnsureNetwork(ingress.id()));
  ingress_ = ingress.id();  // in use from here on (ReleaseUnused keeps it)
  ASSIGN_OR_RETURN(auto address, kernel::IpPrefix::Parse(own.ip()));
  ASSIGN_OR_RETURN(auto mac, kernel::MacAddr::Parse(own.mac()));
  // What a previous agent that did not stop cleanly left: the sandbox and the bridge.
  if (auto fd = sandboxes_.Open(kIngressSandbox); fd.ok()) {
    auto nl = netlink_.Open(fd->get());
    auto links = nl.ok() ? (*nl)->ListLinks() : absl::StatusOr<std::vector<kernel::Link>>();
    if (links.ok()) {
      for (const auto& l : *links) {
        if (l.kind != kernel::LinkKind::kLoopback) (void)(*nl)->DeleteLink(l.index);
      }
    }
    (void)sandboxes_.Delete(kIngressSandbox);
  }
  ASSIGN_OR_RETURN(auto node, netlink_.Open(opts_.node_netns_fd));
  if (auto br = node->GetLink(kGatewayBridge); br.ok()) (void)node->DeleteLink(br->index);

  ASSIGN_OR_RETURN(node_nft_, kernel::nft::OpenNft(opts_.node_netns_fd));
  netdrv::BridgeConfig bc;
  bc.node_netns_fd = opts_.node_netns_fd;
  bc.bridge_name = kGatewayBridge;
  ASSIGN_OR_RETURN(gw_, netdrv::BridgeDriver::Create(bc, netlink_, *node_nft_, random_));
  netdrv::NetworkSpec gs;
  gs.id = kGatewayNetwork;
  gs.subnet = *kernel::IpPrefix::Parse("172.18.0.0/16");
  gs.gateway = *kernel::IpAddr::Parse("172.18.0.1");
  RETURN_IF_ERROR(gw_->CreateNetwork(gs));
  lb::MeshConfig mc;
  mc.node_netns_fd = opts_.node_netns_fd;
  mc.deps = lb::RealSandboxDeps(&sandboxes_, &netlink_);
  mc.overlay = overlay_.get();
  mc.gateway = gw_.get();
  mc.gateway_network_id = kGatewayNetwork;
  mc.gateway_bridge = kGatewayBridge;
  mc.node_nft = node_nft_.get();
  mc.ingress_sandbox = kIngressSandbox;
  ASSIGN_OR_RETURN(mesh_, lb::Mesh::Create(mc));
  lb::IngressSpec is;
  is.network_id = ingress.id();
  is.address = address;
  is.gw_address = *kernel::IpPrefix::Parse("172.18.0.2/16");
  is.mac = mac;
  RETURN_IF_ERROR(mesh_->EnableIngress(is));
  base::Logger("agent")->info("routing mesh: ingress sandbox at {} on network {}", own.ip(),
                              NetName(ingress));
  return absl::OkStatus();
}

void Networking::DisableIngress(bool release) {
  if (mesh_ != nullptr) {
    absl::Status s = mesh_->Destroy();
    if (!s.ok()) base::Logger("agent")->warn("routing mesh: {}", std::string(s.message()));
    mesh_.reset();
  }
  if (gw_ != nullptr) {
    (void)gw_->DeleteNetwork(kGatewayNetwork);
    gw_.reset();
  }
  node_nft_.reset();
  if (!ingress_.empty()) {
    ingress_.clear();
    if (release) ReleaseUnused();
  }
}

}  // namespace shoal::agent
