// AddressPool: the addresses of one subnet (DESIGN.md §5, dataplane.md §3).
//
//   * The network address is never handed out, nor (IPv4, prefix < /31) the broadcast address;
//     /31, /32 (RFC 3021) and IPv6 /127, /128 are exempt. In IPv6, offset 0 is the
//     subnet-router anycast address and is reserved the same way.
//   * The gateway defaults to the first usable address of the subnet and is allocated at
//     creation (no_gateway = true for networks without one, e.g. internal macvlan).
//   * Dynamic allocations come from `range` (default: the whole subnet) in next-fit order:
//     each search starts after the previously allocated address and wraps around, so a freed
//     address is reused only after the rest of the range was used (stale ARP/FDB/DNS entries
//     pointing at it have time to expire). Specific addresses may be anywhere in the subnet.
//   * Storage is a RangeSet of runs, so a /64 costs O(allocated runs), never a bitmap.
// Errors: INVALID_ARGUMENT (address outside the subnet, network/broadcast, bad spec — each names
// the field), ALREADY_EXISTS (address in use), FAILED_PRECONDITION (releasing the gateway or a
// reserved address), NOT_FOUND (releasing a free address), RESOURCE_EXHAUSTED (range full).
// Thread safety: none (the owner, Ipam, serializes access).
#pragma once

#include <optional>
#include <set>
#include <vector>

#include "absl/status/statusor.h"
#include "ipam/address.h"
#include "ipam/range_set.h"
#include "nlohmann/json_fwd.hpp"

namespace shoal::ipam {

struct SubnetSpec {
  Prefix subnet;
  std::optional<Prefix> range;    // dynamic allocations come from here; inside `subnet`
  std::optional<IpAddr> gateway;  // inside `subnet`; default: first usable address
  bool no_gateway = false;
  std::vector<IpAddr> reserved;   // never handed out (auxiliary addresses)
};

class AddressPool {
 public:
  static absl::StatusOr<AddressPool> Create(const SubnetSpec& spec);

  // Next free address of the range after the last one handed out (next-fit).
  absl::StatusOr<IpAddr> Allocate();
  // A specific address anywhere in the subnet.
  absl::Status AllocateSpecific(const IpAddr& addr);
  absl::Status Release(const IpAddr& addr);

  bool IsAllocated(const IpAddr& addr) const;
  // Addresses handed out by Allocate/AllocateSpecific (not counting the gateway).
  absl::uint128 InUse() const;
  // Addresses Allocate() can still hand out.
  absl::uint128 FreeInRange() const;
  const Prefix& subnet() const { return spec_.subnet; }
  const SubnetSpec& spec() const { return spec_; }
  std::optional<IpAddr> gateway() const;

  nlohmann::json ToJson() const;
  static absl::StatusOr<AddressPool> FromJson(const nlohmann::json& j);
  friend bool operator==(const AddressPool& a, const AddressPool& b) {
    return a.spec_.subnet == b.spec_.subnet && a.taken_ == b.taken_ && a.cursor_ == b.cursor_ &&
           a.gateway_ == b.gateway_;
  }

 private:
  AddressPool() = default;
  absl::Status CheckInSubnet(const IpAddr& a, const char* what) const;

  SubnetSpec spec_;
  std::optional<IpAddr> gateway_;
  absl::uint128 lo_ = 0, hi_ = 0;  // usable bounds of the dynamic range (lo_ > hi_: empty)
  RangeSet taken_;                 // allocated + gateway + blocked
  std::set<absl::uint128> blocked_;  // network, broadcast, reserved (subset of taken_)
  std::optional<absl::uint128> cursor_;  // last dynamically allocated address
};

}  // namespace shoal::ipam
