#include "dns/records.h"

#include <arpa/inet.h>

#include <mutex>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "dns/name.h"

namespace shoal::dns {
namespace {

absl::Status ValidName(absl::string_view name, absl::string_view field) {
  if (name.empty()) return absl::InvalidArgumentError(absl::StrCat(field, ": empty name"));
  auto labels = SplitName(name);
  if (!labels.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " \"", name, "\": ", labels.status().message()));
  }
  return absl::OkStatus();
}

void AppendAddresses(const std::vector<IpBytes>& ips, const Question& q, uint32_t ttl,
                     std::vector<Record>& out) {
  for (const IpBytes& ip : ips) {
    Record r;
    r.name = q.name;
    r.ttl = ttl;
    if (ip.size() == 4 && (q.type == kTypeA || q.type == kTypeAny)) {
      Ip4 a;
      std::copy(ip.begin(), ip.end(), a.begin());
      r.type = kTypeA;
      r.data = a;
      out.push_back(std::move(r));
    } else if (ip.size() == 16 && (q.type == kTypeAaaa || q.type == kTypeAny)) {
      Ip6 a;
      std::copy(ip.begin(), ip.end(), a.begin());
      r.type = kTypeAaaa;
      r.data = a;
      out.push_back(std::move(r));
    }
  }
}

}  // namespace

absl::StatusOr<IpBytes> ParseIp(absl::string_view text, absl::string_view field) {
  std::string s(text);
  unsigned char buf[16];
  if (inet_pton(AF_INET, s.c_str(), buf) == 1) return IpBytes(reinterpret_cast<char*>(buf), 4);
  if (inet_pton(AF_INET6, s.c_str(), buf) == 1) return IpBytes(reinterpret_cast<char*>(buf), 16);
  return absl::InvalidArgumentError(absl::StrCat(field, ": \"", text, "\" is not an IP address"));
}

std::string FormatIp(const IpBytes& ip) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (ip.size() == 4) inet_ntop(AF_INET, ip.data(), buf, sizeof(buf));
  if (ip.size() == 16) inet_ntop(AF_INET6, ip.data(), buf, sizeof(buf));
  return buf;
}

absl::Status RecordTable::SetService(absl::string_view network, ServiceRecord svc) {
  if (absl::Status s = ValidName(svc.name, "service name"); !s.ok()) return s;
  for (const std::string& a : svc.aliases) {
    if (absl::Status s = ValidName(a, "service alias"); !s.ok()) return s;
  }
  if (svc.dnsrr && !svc.vips.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("service ", svc.name, ": vips must be empty in dnsrr endpoint mode"));
  }
  if (!svc.dnsrr && svc.vips.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("service ", svc.name, ": vip endpoint mode needs at least one VIP"));
  }
  for (const IpBytes& ip : svc.vips) {
    if (ip.size() != 4 && ip.size() != 16) {
      return absl::InvalidArgumentError(absl::StrCat("service ", svc.name, ": bad VIP length"));
    }
  }
  for (const SrvPort& p : svc.ports) {
    if (p.protocol != "tcp" && p.protocol != "udp" && p.protocol != "sctp") {
      return absl::InvalidArgumentError(absl::StrCat("service ", svc.name, ": port ", p.name,
                                                     ": protocol must be tcp, udp or sctp"));
    }
    if (absl::Status s = ValidName(p.name, "port name"); !s.ok()) return s;
  }
  std::string key = CanonicalName(svc.name);
  std::unique_lock lock(mu_);
  Network& net = networks_[std::string(network)];
  UnindexService(net, key);
  for (const std::string& a : svc.aliases) net.service_alias[CanonicalName(a)] = key;
  for (const IpBytes& ip : svc.vips) net.ptr[ip]["svc:" + key] = svc.name;
  net.services[key] = std::move(svc);
  return absl::OkStatus();
}

void RecordTable::UnindexService(Network& net, const std::string& key) {
  auto it = net.services.find(key);
  if (it == net.services.end()) return;
  for (const std::string& a : it->second.aliases) {
    auto ai = net.service_alias.find(CanonicalName(a));
    if (ai != net.service_alias.end() && ai->second == key) net.service_alias.erase(ai);
  }
  for (const IpBytes& ip : it->second.vips) {
    auto pi = net.ptr.find(ip);
    if (pi == net.ptr.end()) continue;
    pi->second.erase("svc:" + key);
    if (pi->second.empty()) net.ptr.erase(pi);
  }
  net.services.erase(it);
}

absl::Status RecordTable::RemoveService(absl::string_view network, absl::string_view name) {
  std::string key = CanonicalName(name);
  std::unique_lock lock(mu_);
  auto n = networks_.find(network);
  if (n == networks_.end() || !n->second.services.contains(key)) {
    return absl::NotFoundError(absl::StrCat("service ", name, " not on network ", network));
  }
  UnindexService(n->second, key);
  return absl::OkStatus();
}

absl::Status RecordTable::SetTask(absl::string_view network, TaskRecord task) {
  if (task.id.empty()) return absl::InvalidArgumentError("task: empty id");
  if (task.ips.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("task ", task.id, ": no IP address"));
  }
  for (const IpBytes& ip : task.ips) {
    if (ip.size() != 4 && ip.size() != 16) {
      return absl::InvalidArgumentError(absl::StrCat("task ", task.id, ": bad IP length"));
    }
  }
  for (const std::string& n : task.names) {
    if (absl::Status s = ValidName(n, "task name"); !s.ok()) return s;
  }
  std::unique_lock lock(mu_);
  Network& net = networks_[std::string(network)];
  if (auto it = net.tasks.find(task.id); it != net.tasks.end()) UnindexTask(net, it->second);
  if (!task.service.empty()) net.tasks_by_service[CanonicalName(task.service)].insert(task.id);
  for (const std::string& n : task.names) net.task_by_name[CanonicalName(n)].insert(task.id);
  if (!task.names.empty()) {
    for (const IpBytes& ip : task.ips) net.ptr[ip]["task:" + task.id] = task.names.front();
  }
  std::string id = task.id;
  net.tasks[id] = std::move(task);
  return absl::OkStatus();
}

void RecordTable::UnindexTask(Network& net, const TaskRecord& t) {
  auto drop = [&](auto& index, const std::string& key) {
    auto it = index.find(key);
    if (it == index.end()) return;
    it->second.erase(t.id);
    if (it->second.empty()) index.erase(it);
  };
  if (!t.service.empty()) drop(net.tasks_by_service, CanonicalName(t.service));
  for (const std::string& n : t.names) drop(net.task_by_name, CanonicalName(n));
  for (const IpBytes& ip : t.ips) {
    auto pi = net.ptr.find(ip);
    if (pi == net.ptr.end()) continue;
    pi->second.erase("task:" + t.id);
    if (pi->second.empty()) net.ptr.erase(pi);
  }
}

absl::Status RecordTable::RemoveTask(absl::string_view network, absl::string_view id) {
  std::unique_lock lock(mu_);
  auto n = networks_.find(network);
  if (n == networks_.end()) {
    return absl::NotFoundError(absl::StrCat("task ", id, " not on network ", network));
  }
  auto it = n->second.tasks.find(id);
  if (it == n->second.tasks.end()) {
    return absl::NotFoundError(absl::StrCat("task ", id, " not on network ", network));
  }
  UnindexTask(n->second, it->second);
  n->second.tasks.erase(it);
  return absl::OkStatus();
}

void RecordTable::RemoveNetwork(absl::string_view network) {
  std::unique_lock lock(mu_);
  networks_.erase(network);
}

size_t RecordTable::NameCount(absl::string_view network) const {
  std::shared_lock lock(mu_);
  auto n = networks_.find(network);
  if (n == networks_.end()) return 0;
  return n->second.services.size() + n->second.service_alias.size() + n->second.task_by_name.size();
}

LookupResult RecordTable::LookupIn(const Network& net, const std::string& name,
                                   const Question& q) const {
  LookupResult res;
  auto service_key = [&](const std::string& n) -> const std::string* {
    if (auto it = net.services.find(n); it != net.services.end()) return &it->first;
    if (auto it = net.service_alias.find(n); it != net.service_alias.end()) return &it->second;
    return nullptr;
  };
  auto task_ips = [&](const std::string& svc_key, std::vector<IpBytes>& ips) {
    auto it = net.tasks_by_service.find(svc_key);
    if (it == net.tasks_by_service.end()) return;
    for (const std::string& id : it->second) {
      const TaskRecord& t = net.tasks.at(id);
      ips.insert(ips.end(), t.ips.begin(), t.ips.end());
    }
  };

  // _<port>._<proto>.<service>
  if (absl::StartsWith(name, "_")) {
    std::vector<std::string> parts = absl::StrSplit(name, absl::MaxSplits('.', 2));
    if (parts.size() == 3 && parts[1].size() > 1 && parts[1][0] == '_') {
      const std::string* key = service_key(parts[2]);
      if (key == nullptr) return res;
      const ServiceRecord& svc = net.services.at(*key);
      const SrvPort* port = nullptr;
      for (const SrvPort& p : svc.ports) {
        if (CanonicalName(p.name) == parts[0].substr(1) && p.protocol == parts[1].substr(1)) {
          port = &p;
        }
      }
      if (port == nullptr) return res;
      res.kind = LookupResult::kAnswer;
      if (q.type != kTypeSrv && q.type != kTypeAny) return res;
      auto it = net.tasks_by_service.find(*key);
      if (it == net.tasks_by_service.end()) return res;
      for (const std::string& id : it->second) {
        const TaskRecord& t = net.tasks.at(id);
        if (t.names.empty()) continue;
        Record r{q.name, kTypeSrv, kClassIn, options_.task_ttl,
                 SrvData{0, 0, port->port, t.names.front()}};
        res.answers.push_back(std::move(r));
        Question glue{t.names.front(), kTypeAny, kClassIn};
        AppendAddresses(t.ips, glue, options_.task_ttl, res.additional);
      }
      return res;
    }
  }

  std::vector<IpBytes> ips;
  uint32_t ttl = options_.task_ttl;
  if (absl::StartsWith(name, "tasks.")) {
    const std::string* key = service_key(name.substr(6));
    if (key != nullptr) {
      res.kind = LookupResult::kAnswer;
      task_ips(*key, ips);
    }
  }
  if (res.kind == LookupResult::kUnknown) {
    if (const std::string* key = service_key(name)) {
      res.kind = LookupResult::kAnswer;
      const ServiceRecord& svc = net.services.at(*key);
      if (svc.dnsrr) {
        task_ips(*key, ips);
      } else {
        ips = svc.vips;
        ttl = options_.service_ttl;
      }
    }
  }
  if (res.kind == LookupResult::kUnknown) {
    auto it = net.task_by_name.find(name);
    if (it != net.task_by_name.end()) {
      res.kind = LookupResult::kAnswer;
      for (const std::string& id : it->second) {
        const TaskRecord& t = net.tasks.at(id);
        ips.insert(ips.end(), t.ips.begin(), t.ips.end());
      }
    }
  }
  if (res.kind == LookupResult::kAnswer) AppendAddresses(ips, q, ttl, res.answers);
  return res;
}

LookupResult RecordTable::LookupPtr(const std::vector<std::string>& networks,
                                    const Question& q) const {
  LookupResult res;
  auto addr = AddressFromReverseName(q.name);
  if (!addr.ok()) return res;
  for (const std::string& n : networks) {
    auto net = networks_.find(n);
    if (net == networks_.end()) continue;
    auto it = net->second.ptr.find(*addr);
    if (it == net->second.ptr.end() || it->second.empty()) continue;
    res.kind = LookupResult::kAnswer;
    if (q.type == kTypePtr || q.type == kTypeAny) {
      // Qualify with the network so the answer resolves back in that scope.
      std::string target = absl::StrCat(it->second.begin()->second, ".", n);
      bool task = absl::StartsWith(it->second.begin()->first, "task:");
      res.answers.push_back(Record{q.name, kTypePtr, kClassIn,
                                   task ? options_.task_ttl : options_.service_ttl, target});
    }
    return res;
  }
  return res;
}

LookupResult RecordTable::Lookup(const std::vector<std::string>& networks,
                                 const Question& q) const {
  std::string name = CanonicalName(q.name);
  std::shared_lock lock(mu_);
  if (absl::EndsWith(name, ".arpa")) return LookupPtr(networks, q);
  // 1. the full name in any attached network, in priority order.
  for (const std::string& n : networks) {
    auto net = networks_.find(n);
    if (net == networks_.end()) continue;
    LookupResult r = LookupIn(net->second, name, q);
    if (r.kind == LookupResult::kAnswer) return r;
  }
  // 2. "<name>.<network>": the prefix within that network only.
  for (size_t dot = name.find('.'); dot != std::string::npos; dot = name.find('.', dot + 1)) {
    std::string prefix = name.substr(0, dot);
    std::string network = name.substr(dot + 1);
    for (const std::string& n : networks) {
      if (CanonicalName(n) != network) continue;
      auto net = networks_.find(n);
      if (net == networks_.end()) continue;
      LookupResult r = LookupIn(net->second, prefix, q);
      if (r.kind == LookupResult::kAnswer) return r;
    }
  }
  return {};
}

}  // namespace shoal::dns
