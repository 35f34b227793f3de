// Networking: embedded DNS records and VIP load balancing for the node's task containers.
#include "agent/network.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "agent/network_util.h"
#include "base/file.h"
#include "base/log.h"
#include "base/status.h"
#include "dns/container_dns.h"
#include "kernel/nft/netlink_nft.h"
#include "kernel/nft/plan.h"
#include "lb/nft_backend.h"

namespace shoal::agent {

using net::AddrOf;
using net::IsVip;
using net::kDnsIp;
using net::kIngressSandboxPrefix;
using net::kLbTable;
using net::NetName;
using net::OpenNetns;
using net::PortsOf;

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

}  // namespace shoal::agent
