// shoal::ipam — IP address management for Shoal networks (DESIGN.md §5, dataplane.md §3).
// Pure logic: no I/O, no clock, no randomness; the manager's allocator (global scope: overlay
// subnets, VIPs, task IPs) and the worker (local scope: bridges such as shoal_gwbridge) each own
// an Ipam and persist its state with ToJson()/FromJson().
//
//   Ipam ipam = *Ipam::Create();                       // 10.0.0.0/8 in /24s + Docker's locals
//   Prefix net = *ipam.AddSubnet({.scope = Scope::kGlobal});          // 10.0.0.0/24, gw .1
//   IpAddr vip = *ipam.Allocate(net);                                 // 10.0.0.2
//   Prefix user = *ipam.AddSubnet({.subnet = *ParsePrefix("192.168.50.0/24"),
//                                  .range = *ParsePrefix("192.168.50.128/25")});
//   ipam.Release(net, vip);   // 10.0.0.2 is handed out again only after .3 ... .254 (next-fit)
//
// Contract:
//   * Subnets never overlap each other (any scope, any source): ALREADY_EXISTS names the subnet
//     in the way. Pool subnets also avoid Exclude()d prefixes (host routes, nameservers).
//   * Per-subnet semantics (gateway, network/broadcast, ranges, next-fit) are AddressPool's.
//   * IPv6 subnets must be given explicitly unless an IPv6 pool is configured; huge IPv6
//     subnets cost memory proportional to allocated runs, not to their size.
//   * Errors name the field and the reason; a failed call changes nothing.
// Thread safety: none; callers serialize (the allocator runs on the Raft leader's loop).
#pragma once

#include <map>
#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "ipam/address.h"
#include "ipam/address_pool.h"
#include "ipam/subnet_pool.h"
#include "nlohmann/json_fwd.hpp"

namespace shoal::ipam {

struct IpamConfig {
  std::vector<PoolSpec> pools;  // empty: DefaultGlobalPools() + DefaultLocalPools()
};

struct SubnetRequest {
  Scope scope = Scope::kGlobal;
  std::optional<Prefix> subnet;   // nullopt: next free subnet of the scope's pools
  bool v6 = false;                // family when `subnet` is not given
  std::optional<Prefix> range;
  std::optional<IpAddr> gateway;
  bool no_gateway = false;
  std::vector<IpAddr> reserved;
};

class Ipam {
 public:
  static absl::StatusOr<Ipam> Create(IpamConfig config = {});

  absl::StatusOr<Prefix> AddSubnet(const SubnetRequest& req);
  // FAILED_PRECONDITION while addresses other than the gateway are allocated, unless force.
  absl::Status RemoveSubnet(const Prefix& subnet, bool force = false);
  void Exclude(const Prefix& p) { pools_.Exclude(p); }

  // Next-fit dynamic address, or `want` if given.
  absl::StatusOr<IpAddr> Allocate(const Prefix& subnet, std::optional<IpAddr> want = std::nullopt);
  absl::Status Release(const Prefix& subnet, const IpAddr& addr);

  // nullptr if the subnet is unknown.
  const AddressPool* Find(const Prefix& subnet) const;
  std::vector<Prefix> Subnets() const;

  nlohmann::json ToJson() const;
  static absl::StatusOr<Ipam> FromJson(const nlohmann::json& j);
  friend bool operator==(const Ipam& a, const Ipam& b) {
    return a.pools_ == b.pools_ && a.subnets_ == b.subnets_;
  }

 private:
  explicit Ipam(SubnetPools pools) : pools_(std::move(pools)) {}
  absl::StatusOr<AddressPool*> Get(const Prefix& subnet);

  SubnetPools pools_;
  std::map<Prefix, AddressPool> subnets_;
};

}  // namespace shoal::ipam
