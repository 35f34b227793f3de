#include "agent/network.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "agent/network_util.h"
#include "base/log.h"
#include "base/status.h"
#include "dns/container_dns.h"
#include "kernel/nft/netlink_nft.h"
#include "kernel/nft/plan.h"

namespace shoal::agent {

using net::AddrOf;
using net::Key;
using net::kIngressSandboxPrefix;
using net::NetName;
using net::OpenNetns;
using net::SpecOf;

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

}  // namespace shoal::agent
