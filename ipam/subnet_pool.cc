#include "ipam/subnet_pool.h"

#include "absl/strings/str_cat.h"
#include "base/check.h"
#include "base/status.h"
#include "nlohmann/json.hpp"

namespace shoal::ipam {
namespace {

// The member `key` of `j`, or an empty array (avoids iterating temporaries).
const nlohmann::json& Field(const nlohmann::json& j, const char* key) {
  static const nlohmann::json* const kEmpty = new nlohmann::json(nlohmann::json::array());
  auto it = j.find(key);
  return it == j.end() ? *kEmpty : *it;
}

Prefix P(const char* s) {
  auto p = ParsePrefix(s);
  CHECK(p.ok()) << s;
  return *p;
}

const char* ScopeName(Scope s) { return s == Scope::kGlobal ? "global" : "local"; }

}  // namespace

std::vector<PoolSpec> DefaultGlobalPools() { return {{Scope::kGlobal, P("10.0.0.0/8"), 24}}; }

std::vector<PoolSpec> DefaultLocalPools() {
  return {{Scope::kLocal, P("172.17.0.0/16"), 16}, {Scope::kLocal, P("172.18.0.0/16"), 16},
          {Scope::kLocal, P("172.19.0.0/16"), 16}, {Scope::kLocal, P("172.20.0.0/14"), 16},
          {Scope::kLocal, P("172.24.0.0/14"), 16}, {Scope::kLocal, P("172.28.0.0/14"), 16},
          {Scope::kLocal, P("192.168.0.0/16"), 20}};
}

absl::StatusOr<SubnetPools> SubnetPools::Create(std::vector<PoolSpec> pools) {
  for (const PoolSpec& p : pools) {
    if (p.subnet_len < p.base.len || p.subnet_len > p.base.addr.bits()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "address pool ", p.base.ToString(), ": subnet size /", p.subnet_len, " must be between /",
          p.base.len, " and /", p.base.addr.bits()));
    }
  }
  SubnetPools s;
  s.pools_ = std::move(pools);
  return s;
}

std::optional<Prefix> SubnetPools::Overlap(const std::map<IpAddr, Prefix>& m, const Prefix& p,
                                           bool disjoint) {
  // Entries starting at or before p's last address, from the greatest down. For disjoint
  // entries only the greatest can overlap p; excluded prefixes may nest, so scan them all
  // (there are few: host routes and resolver addresses).
  auto it = m.upper_bound(p.Last());
  while (it != m.begin()) {
    --it;
    if (it->second.addr.v6 != p.addr.v6) break;
    if (it->second.Overlaps(p)) return it->second;
    if (disjoint) break;
  }
  return std::nullopt;
}

std::optional<Prefix> SubnetPools::FindOverlap(const Prefix& p) const { return Overlap(used_, p, true); }

absl::StatusOr<Prefix> SubnetPools::Allocate(Scope scope, bool v6) {
  std::vector<size_t> idx;
  for (size_t i = 0; i < pools_.size(); ++i) {
    if (pools_[i].scope == scope && pools_[i].base.addr.v6 == v6) idx.push_back(i);
  }
  if (idx.empty()) {
    return absl::ResourceExhaustedError(absl::StrCat("no ", ScopeName(scope), " IPv",
                                                     v6 ? 6 : 4, " address pool is configured",
                                                     v6 ? " (give the subnet explicitly)" : ""));
  }
  // Start right after the previous allocation (next-fit), wrap around once.
  size_t start_pool = 0;
  absl::uint128 start_cand = 0;
  if (auto c = cursor_.find(scope); c != cursor_.end()) {
    for (size_t k = 0; k < idx.size(); ++k) {
      if (idx[k] == c->second.first) {
        start_pool = k;
        start_cand = c->second.second + 1;
      }
    }
  }
  for (size_t step = 0; step <= idx.size(); ++step) {
    size_t k = (start_pool + step) % idx.size();
    const PoolSpec& pool = pools_[idx[k]];
    int host_bits = pool.base.addr.bits() - pool.subnet_len;
    absl::uint128 count = HostMask(pool.base.addr.bits(), pool.base.len) >> host_bits;
    // count = number of candidates - 1
    absl::uint128 cand = step == 0 ? start_cand : 0;
    absl::uint128 end = count;  // inclusive
    bool wrapped_tail = step == idx.size();  // second visit of the start pool: its head part
    if (wrapped_tail) {
      if (start_cand == 0) break;
      end = start_cand - 1;
    }
    while (cand <= end && !(step == 0 && start_cand > count)) {
      Prefix p{IpAddr{v6, pool.base.addr.value + (cand << host_bits)}, pool.subnet_len};
      std::optional<Prefix> hit = Overlap(used_, p, true);
      if (!hit) hit = Overlap(excluded_, p, false);
      if (!hit) {
        used_[p.addr] = p;
        cursor_[scope] = {idx[k], cand};
        return p;
      }
      // Jump to the first candidate after the conflicting prefix.
      absl::uint128 last = hit->Last().value;
      if (last >= pool.base.Last().value) break;
      absl::uint128 next = ((last - pool.base.addr.value) >> host_bits) + 1;
      if (next <= cand) next = cand + 1;
      cand = next;
    }
  }
  std::string pools;
  for (size_t i : idx) {
    absl::StrAppend(&pools, pools.empty() ? "" : ", ", pools_[i].base.ToString(), " in /",
                    pools_[i].subnet_len);
  }
  return absl::ResourceExhaustedError(absl::StrCat("", ScopeName(scope),
                                                   " address pools exhausted: every subnet of ",
                                                   pools, " is in use or excluded"));
}

absl::Status SubnetPools::Reserve(const Prefix& p) {
  if (auto hit = Overlap(used_, p, true)) {
    return absl::AlreadyExistsError(absl::StrCat("subnet ", p.ToString(), " overlaps subnet ",
                                                 hit->ToString(), " already in use"));
  }
  used_[p.addr] = p;
  return absl::OkStatus();
}

absl::Status SubnetPools::Release(const Prefix& p) {
  auto it = used_.find(p.addr);
  if (it == used_.end() || !(it->second == p)) {
    return absl::NotFoundError(absl::StrCat("subnet ", p.ToString(), " is not in use"));
  }
  used_.erase(it);
  return absl::OkStatus();
}

void SubnetPools::Exclude(const Prefix& p) {
  auto it = excluded_.find(p.addr);
  if (it == excluded_.end() || it->second.len > p.len) excluded_[p.addr] = p;
}

nlohmann::json SubnetPools::ToJson() const {
  nlohmann::json j;
  j["pools"] = nlohmann::json::array();
  for (const PoolSpec& p : pools_) {
    j["pools"].push_back({{"scope", ScopeName(p.scope)},
                          {"base", p.base.ToString()},
                          {"subnet_len", p.subnet_len}});
  }
  j["in_use"] = nlohmann::json::array();
  for (const auto& [k, p] : used_) j["in_use"].push_back(p.ToString());
  j["excluded"] = nlohmann::json::array();
  for (const auto& [k, p] : excluded_) j["excluded"].push_back(p.ToString());
  j["cursor"] = nlohmann::json::object();
  for (const auto& [scope, c] : cursor_) {
    j["cursor"][ScopeName(scope)] = {c.first, absl::StrCat(absl::Uint128High64(c.second), ":",
                                                           absl::Uint128Low64(c.second))};
  }
  return j;
}

absl::StatusOr<SubnetPools> SubnetPools::FromJson(const nlohmann::json& j) {
  if (!j.is_object()) return absl::InvalidArgumentError("subnet pools state: not an object");
  std::vector<PoolSpec> pools;
  for (const auto& p : Field(j, "pools")) {
    PoolSpec s;
    s.scope = p.value("scope", "global") == "local" ? Scope::kLocal : Scope::kGlobal;
    ASSIGN_OR_RETURN(s.base, ParsePrefix(p.value("base", ""), "address pool"));
    s.subnet_len = p.value("subnet_len", 24);
    pools.push_back(s);
  }
  ASSIGN_OR_RETURN(SubnetPools out, Create(std::move(pools)));
  for (const auto& s : Field(j, "in_use")) {
    ASSIGN_OR_RETURN(Prefix p, ParsePrefix(s.get<std::string>(), "subnet"));
    RETURN_IF_ERROR(out.Reserve(p));
  }
  for (const auto& s : Field(j, "excluded")) {
    ASSIGN_OR_RETURN(Prefix p, ParsePrefix(s.get<std::string>(), "excluded"));
    out.Exclude(p);
  }
  for (const auto& [name, c] : Field(j, "cursor").items()) {
    std::string v = c[1].get<std::string>();
    size_t colon = v.find(':');
    uint64_t hi = std::stoull(v.substr(0, colon)), lo = std::stoull(v.substr(colon + 1));
    out.cursor_[name == "local" ? Scope::kLocal : Scope::kGlobal] = {c[0].get<size_t>(),
                                                                    absl::MakeUint128(hi, lo)};
  }
  return out;
}

}  // namespace shoal::ipam
