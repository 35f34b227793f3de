#include "ipam/address_pool.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
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

bool ExemptFromNetworkAddress(const Prefix& p) { return p.len >= p.addr.bits() - 1; }

std::string Str(absl::uint128 v, bool v6) { return IpAddr{v6, v}.ToString(); }

}  // namespace

absl::Status AddressPool::CheckInSubnet(const IpAddr& a, const char* what) const {
  if (!spec_.subnet.Contains(a)) {
    return absl::InvalidArgumentError(absl::StrCat(what, " ", a.ToString(),
                                                   " is outside subnet ", spec_.subnet.ToString()));
  }
  return absl::OkStatus();
}

absl::StatusOr<AddressPool> AddressPool::Create(const SubnetSpec& spec) {
  AddressPool p;
  p.spec_ = spec;
  const Prefix& s = spec.subnet;
  bool v6 = s.addr.v6;
  absl::uint128 first = s.First().value, last = s.Last().value;
  if (!ExemptFromNetworkAddress(s)) {
    p.blocked_.insert(first);
    if (!v6) p.blocked_.insert(last);  // IPv4 broadcast
  }
  absl::uint128 usable_lo = ExemptFromNetworkAddress(s) ? first : first + 1;
  absl::uint128 usable_hi = (!v6 && !ExemptFromNetworkAddress(s)) ? last - 1 : last;

  Prefix range = spec.range.value_or(s);
  if (range.addr.v6 != v6 || !s.Contains(range)) {
    return absl::InvalidArgumentError(absl::StrCat("ip_range ", range.ToString(),
                                                   " is outside subnet ", s.ToString()));
  }
  p.lo_ = std::max(range.First().value, usable_lo);
  p.hi_ = std::min(range.Last().value, usable_hi);
  if (p.lo_ > p.hi_) {
    return absl::InvalidArgumentError(absl::StrCat("ip_range ", range.ToString(),
                                                   " has no usable address in subnet ",
                                                   s.ToString()));
  }
  for (const IpAddr& r : spec.reserved) {
    RETURN_IF_ERROR(p.CheckInSubnet(r, "reserved address"));
    p.blocked_.insert(r.value);
  }
  for (absl::uint128 b : p.blocked_) p.taken_.Insert(b);
  if (!spec.no_gateway) {
    IpAddr gw = spec.gateway.value_or(IpAddr{v6, usable_lo});
    RETURN_IF_ERROR(p.CheckInSubnet(gw, "gateway"));
    if (p.blocked_.count(gw.value)) {
      bool net = !ExemptFromNetworkAddress(s) && gw.value == first;
      bool bcast = !v6 && !ExemptFromNetworkAddress(s) && gw.value == last;
      return absl::InvalidArgumentError(absl::StrCat(
          "gateway ", gw.ToString(), " is ",
          net ? "the network address" : bcast ? "the broadcast address" : "a reserved address",
          " of subnet ", s.ToString()));
    }
    p.gateway_ = gw;
    p.taken_.Insert(gw.value);
  }
  return p;
}

absl::StatusOr<IpAddr> AddressPool::Allocate() {
  bool v6 = spec_.subnet.addr.v6;
  absl::uint128 start = lo_;
  if (cursor_ && *cursor_ >= lo_ && *cursor_ < hi_) start = *cursor_ + 1;
  std::optional<absl::uint128> x = taken_.FirstAbsent(start, hi_);
  if (!x && start > lo_) x = taken_.FirstAbsent(lo_, start - 1);
  if (!x) {
    Prefix range = spec_.range.value_or(spec_.subnet);
    return absl::ResourceExhaustedError(absl::StrCat(
        "no free address in ", spec_.range ? "ip_range " + range.ToString() + " of " : "",
        "subnet ", spec_.subnet.ToString(), " (", Str(lo_, v6), " - ", Str(hi_, v6),
        " all in use)"));
  }
  taken_.Insert(*x);
  cursor_ = *x;
  return IpAddr{v6, *x};
}

absl::Status AddressPool::AllocateSpecific(const IpAddr& a) {
  RETURN_IF_ERROR(CheckInSubnet(a, "address"));
  if (blocked_.count(a.value)) {
    const Prefix& s = spec_.subnet;
    if (a.value == s.First().value && !ExemptFromNetworkAddress(s)) {
      return absl::InvalidArgumentError(absl::StrCat("address ", a.ToString(),
                                                     " is the network address of ", s.ToString()));
    }
    if (!a.v6 && a.value == s.Last().value && !ExemptFromNetworkAddress(s)) {
      return absl::InvalidArgumentError(
          absl::StrCat("address ", a.ToString(), " is the broadcast address of ", s.ToString()));
    }
    return absl::FailedPreconditionError(absl::StrCat("address ", a.ToString(), " is reserved"));
  }
  if (!taken_.Insert(a.value)) {
    return absl::AlreadyExistsError(absl::StrCat(
        "address ", a.ToString(), " is already in use",
        gateway_ && *gateway_ == a ? " (it is the gateway)" : "", " in ", spec_.subnet.ToString()));
  }
  return absl::OkStatus();
}

absl::Status AddressPool::Release(const IpAddr& a) {
  RETURN_IF_ERROR(CheckInSubnet(a, "address"));
  if (blocked_.count(a.value)) {
    return absl::FailedPreconditionError(
        absl::StrCat("address ", a.ToString(), " is reserved and cannot be released"));
  }
  if (gateway_ && *gateway_ == a) {
    return absl::FailedPreconditionError(
        absl::StrCat("address ", a.ToString(), " is the gateway of ", spec_.subnet.ToString()));
  }
  if (!taken_.Erase(a.value)) {
    return absl::NotFoundError(absl::StrCat("address ", a.ToString(), " is not allocated in ",
                                            spec_.subnet.ToString()));
  }
  return absl::OkStatus();
}

bool AddressPool::IsAllocated(const IpAddr& a) const {
  return spec_.subnet.Contains(a) && taken_.Contains(a.value) && !blocked_.count(a.value);
}

absl::uint128 AddressPool::InUse() const {
  return taken_.size() - blocked_.size() - (gateway_ ? 1 : 0);
}

absl::uint128 AddressPool::FreeInRange() const {
  return (hi_ - lo_ + 1) - taken_.CountIn(lo_, hi_);
}

std::optional<IpAddr> AddressPool::gateway() const { return gateway_; }

nlohmann::json AddressPool::ToJson() const {
  bool v6 = spec_.subnet.addr.v6;
  nlohmann::json j;
  j["subnet"] = spec_.subnet.ToString();
  if (spec_.range) j["ip_range"] = spec_.range->ToString();
  if (gateway_) j["gateway"] = gateway_->ToString();
  j["no_gateway"] = spec_.no_gateway;
  j["reserved"] = nlohmann::json::array();
  for (const IpAddr& r : spec_.reserved) j["reserved"].push_back(r.ToString());
  // Allocated runs exclude blocked addresses (they are recreated from the spec).
  j["allocated"] = nlohmann::json::array();
  for (auto [a, b] : taken_.Runs()) {
    absl::uint128 x = a;
    while (x <= b) {
      // Split runs around blocked addresses.
      while (x <= b && blocked_.count(x)) ++x;
      if (x > b) break;
      absl::uint128 y = x;
      auto next_blocked = blocked_.upper_bound(x);
      absl::uint128 end = b;
      if (next_blocked != blocked_.end() && *next_blocked <= b) end = *next_blocked - 1;
      y = end;
      j["allocated"].push_back(nlohmann::json::array({Str(x, v6), Str(y, v6)}));
      if (y == b) break;
      x = y + 1;
    }
  }
  if (cursor_) j["cursor"] = Str(*cursor_, v6);
  return j;
}

absl::StatusOr<AddressPool> AddressPool::FromJson(const nlohmann::json& j) {
  if (!j.is_object() || !j.contains("subnet") || !j["subnet"].is_string()) {
    return absl::InvalidArgumentError("address pool state: missing \"subnet\"");
  }
  SubnetSpec spec;
  ASSIGN_OR_RETURN(spec.subnet, ParsePrefix(j["subnet"].get<std::string>(), "subnet"));
  if (j.contains("ip_range")) {
    ASSIGN_OR_RETURN(spec.range, ParsePrefix(j["ip_range"].get<std::string>(), "ip_range"));
  }
  spec.no_gateway = j.value("no_gateway", false);
  if (j.contains("gateway")) {
    ASSIGN_OR_RETURN(spec.gateway, ParseIp(j["gateway"].get<std::string>(), "gateway"));
  }
  for (const auto& r : Field(j, "reserved")) {
    ASSIGN_OR_RETURN(IpAddr a, ParseIp(r.get<std::string>(), "reserved"));
    spec.reserved.push_back(a);
  }
  ASSIGN_OR_RETURN(AddressPool p, Create(spec));
  for (const auto& run : Field(j, "allocated")) {
    if (!run.is_array() || run.size() != 2) {
      return absl::InvalidArgumentError("address pool state: bad \"allocated\" run");
    }
    ASSIGN_OR_RETURN(IpAddr a, ParseIp(run[0].get<std::string>(), "allocated"));
    ASSIGN_OR_RETURN(IpAddr b, ParseIp(run[1].get<std::string>(), "allocated"));
    if (!spec.subnet.Contains(a) || !spec.subnet.Contains(b) || b.value < a.value) {
      return absl::InvalidArgumentError(absl::StrCat("address pool state: run ", a.ToString(),
                                                     "-", b.ToString(), " outside ",
                                                     spec.subnet.ToString()));
    }
    p.taken_.InsertRange(a.value, b.value);
  }
  if (j.contains("cursor")) {
    ASSIGN_OR_RETURN(IpAddr c, ParseIp(j["cursor"].get<std::string>(), "cursor"));
    p.cursor_ = c.value;
  }
  return p;
}

}  // namespace shoal::ipam
