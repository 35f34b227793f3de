#include "lb/service.h"

#include <arpa/inet.h>

#include <algorithm>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"

namespace shoal::lb {
namespace {

// 0 = not an address, 4 or 6.
int IpVersion(const std::string& ip) {
  unsigned char buf[16];
  if (inet_pton(AF_INET, ip.c_str(), buf) == 1) return 4;
  if (inet_pton(AF_INET6, ip.c_str(), buf) == 1) return 6;
  return 0;
}

absl::Status Bad(const Service& s, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("service ", s.name, ": ", what));
}

}  // namespace

absl::string_view ProtocolName(Protocol p) {
  switch (p) {
    case Protocol::kTcp:
      return "tcp";
    case Protocol::kUdp:
      return "udp";
    case Protocol::kSctp:
      return "sctp";
  }
  return "?";
}

absl::StatusOr<Protocol> ParseProtocol(absl::string_view name) {
  if (name == "tcp") return Protocol::kTcp;
  if (name == "udp") return Protocol::kUdp;
  if (name == "sctp") return Protocol::kSctp;
  return absl::InvalidArgumentError(
      absl::StrCat("protocol \"", name, "\": must be tcp, udp or sctp"));
}

absl::Status ValidateService(const Service& s) {
  if (s.name.empty() || s.name.size() > 64 ||
      !std::all_of(s.name.begin(), s.name.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
      })) {
    return absl::InvalidArgumentError(
        absl::StrCat("service name \"", s.name, "\": must be 1-64 characters of [a-z0-9_-]"));
  }
  int family = 0;
  if (s.frontend == Frontend::kVip) {
    if (s.vip.empty()) return Bad(s, "vip: required for a VIP frontend");
    family = IpVersion(s.vip);
    if (family == 0) return Bad(s, absl::StrCat("vip \"", s.vip, "\": not an IP address"));
  } else if (!s.vip.empty()) {
    return Bad(s, "vip: must be empty for a published port (it listens on every local address)");
  }
  if (s.port == 0) return Bad(s, "port: must be 1-65535");
  if (s.backends.empty()) {
    return Bad(s, "backends: empty backend set (remove the service instead)");
  }
  std::set<std::pair<std::string, uint16_t>> seen;
  for (const BackendAddr& b : s.backends) {
    int v = IpVersion(b.ip);
    if (v == 0) return Bad(s, absl::StrCat("backend \"", b.ip, "\": not an IP address"));
    if (family != 0 && v != family) {
      return Bad(s, absl::StrCat("backend ", b.ip, ": address family differs from vip ", s.vip));
    }
    if (s.frontend == Frontend::kPublished && v != 4) {
      return Bad(s, absl::StrCat("backend ", b.ip, ": published ports support IPv4 backends only"));
    }
    if (b.port == 0) return Bad(s, absl::StrCat("backend ", b.ip, ": port must be 1-65535"));
    if (b.weight > 1000) {
      return Bad(s, absl::StrCat("backend ", b.ip, ":", b.port, ": weight over 1000"));
    }
    if (!seen.insert({b.ip, b.port}).second) {
      return Bad(s, absl::StrCat("backend ", b.ip, ":", b.port, " listed twice"));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateServices(const std::vector<Service>& services) {
  std::map<std::string, const Service*> frontends;
  std::set<std::string> names;
  for (const Service& s : services) {
    if (absl::Status st = ValidateService(s); !st.ok()) return st;
    if (!names.insert(s.name).second) {
      return absl::InvalidArgumentError(absl::StrCat("service ", s.name, " listed twice"));
    }
    std::string key = FrontendKey(s);
    auto [it, inserted] = frontends.emplace(key, &s);
    if (!inserted) {
      return absl::FailedPreconditionError(absl::StrCat(
          "port conflict: services ", it->second->name, " and ", s.name, " both use ", key));
    }
  }
  return absl::OkStatus();
}

std::string FrontendKey(const Service& s) {
  return absl::StrCat(s.frontend == Frontend::kVip ? s.vip : "*", " ", ProtocolName(s.protocol),
                      "/", s.port);
}

absl::StatusOr<Delta> ServiceSet::Plan(const Change& change) const {
  Delta d;
  std::set<std::string> removed(change.remove.begin(), change.remove.end());
  for (const std::string& n : change.remove) {
    auto it = by_name_.find(n);
    if (it == by_name_.end()) {
      return absl::NotFoundError(absl::StrCat("service ", n, ": not present, cannot remove"));
    }
  }
  std::map<std::string, std::string> new_frontends;  // within this change
  std::set<std::string> upserted;
  for (const Service& s : change.upsert) {
    if (absl::Status st = ValidateService(s); !st.ok()) return st;
    if (!upserted.insert(s.name).second) {
      return absl::InvalidArgumentError(absl::StrCat("service ", s.name, " listed twice"));
    }
    std::string key = FrontendKey(s);
    auto conflict = [&](const std::string& other) {
      return absl::FailedPreconditionError(
          absl::StrCat("port conflict: services ", other, " and ", s.name, " both use ", key));
    };
    if (auto it = new_frontends.find(key); it != new_frontends.end()) return conflict(it->second);
    new_frontends[key] = s.name;
    if (auto it = by_frontend_.find(key); it != by_frontend_.end() && it->second != s.name &&
                                          !removed.contains(it->second) &&
                                          !upserted.contains(it->second)) {
      return conflict(it->second);
    }
  }
  // An upsert that moves a service off a frontend another upsert takes is fine; one that keeps
  // a frontend another upsert also claims was caught above.
  for (const std::string& n : change.remove) {
    if (upserted.contains(n)) {
      return absl::InvalidArgumentError(absl::StrCat("service ", n, ": both removed and upserted"));
    }
    d.removed.push_back(by_name_.find(n)->second);
  }
  for (const Service& s : change.upsert) {
    auto it = by_name_.find(s.name);
    if (it == by_name_.end()) {
      d.added.push_back(s);
    } else if (!(it->second == s)) {
      d.changed.emplace_back(it->second, s);
    }
  }
  return d;
}

void ServiceSet::Commit(const Delta& d) {
  auto drop = [&](const Service& s) {
    auto f = by_frontend_.find(FrontendKey(s));
    if (f != by_frontend_.end() && f->second == s.name) by_frontend_.erase(f);
    by_name_.erase(s.name);
  };
  for (const Service& s : d.removed) drop(s);
  for (const auto& [old, neu] : d.changed) drop(old);
  for (const auto& [old, neu] : d.changed) {
    by_frontend_[FrontendKey(neu)] = neu.name;
    by_name_[neu.name] = neu;
  }
  for (const Service& s : d.added) {
    by_frontend_[FrontendKey(s)] = s.name;
    by_name_[s.name] = s;
  }
}

const Service* ServiceSet::Find(absl::string_view name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : &it->second;
}

std::vector<Service> ServiceSet::All() const {
  std::vector<Service> out;
  out.reserve(by_name_.size());
  for (const auto& [n, s] : by_name_) out.push_back(s);
  return out;
}

absl::Status Drain(Backend& backend, absl::string_view service, absl::string_view ip,
                   uint16_t port) {
  for (const Service& s : backend.Services()) {
    if (s.name != service) continue;
    Service copy = s;
    for (BackendAddr& b : copy.backends) {
      if (b.ip == ip && b.port == port) {
        b.weight = 0;
        return backend.Apply(Change{{copy}, {}});
      }
    }
    return absl::NotFoundError(absl::StrCat("service ", service, ": no backend ", ip, ":", port));
  }
  return absl::NotFoundError(absl::StrCat("service ", service, ": not present"));
}

}  // namespace shoal::lb
