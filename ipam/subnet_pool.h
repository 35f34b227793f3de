// SubnetPools: hands out subnets from configured pools and tracks every subnet in use, so no two
// networks overlap (DESIGN.md §5, dataplane.md §3).
//
//   * A pool is a base prefix split into subnets of one size: the swarm default is 10.0.0.0/8
//     in /24s (scope kGlobal); Docker's local defaults (scope kLocal, for bridges) are
//     172.17-19.0.0/16, 172.20/14, 172.24/14, 172.28/14 in /16s and 192.168.0.0/16 in /20s.
//   * Allocate(scope, v6) is next-fit over the candidates of that scope's pools (starting after
//     the last subnet handed out), skipping any candidate overlapping a subnet in use (of any
//     scope) or an excluded prefix (host routes, resolver addresses). Skipping jumps past the
//     conflicting subnet, so the cost is O(subnets in use · log), not O(pool size).
//   * Reserve(prefix) records a user-given subnet after checking it overlaps nothing in use.
// Errors: ALREADY_EXISTS (overlap, naming the subnet it overlaps), NOT_FOUND (release of an
// unknown subnet), RESOURCE_EXHAUSTED (no candidate left), INVALID_ARGUMENT (bad pool).
// Thread safety: none (Ipam serializes access).
#pragma once

#include <map>
#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "ipam/address.h"
#include "nlohmann/json_fwd.hpp"

namespace shoal::ipam {

enum class Scope { kGlobal, kLocal };

struct PoolSpec {
  Scope scope = Scope::kGlobal;
  Prefix base;
  int subnet_len = 24;
};

// 10.0.0.0/8 split into /24s (swarm `--default-addr-pool` / `--default-addr-pool-mask-length`).
std::vector<PoolSpec> DefaultGlobalPools();
// Docker's local bridge pools.
std::vector<PoolSpec> DefaultLocalPools();

class SubnetPools {
 public:
  static absl::StatusOr<SubnetPools> Create(std::vector<PoolSpec> pools);

  absl::StatusOr<Prefix> Allocate(Scope scope, bool v6);
  absl::Status Reserve(const Prefix& p);
  absl::Status Release(const Prefix& p);
  // Never hand out subnets overlapping `p` (does not affect Reserve).
  void Exclude(const Prefix& p);

  // The subnet in use that overlaps `p`, if any.
  std::optional<Prefix> FindOverlap(const Prefix& p) const;
  size_t in_use() const { return used_.size(); }
  const std::vector<PoolSpec>& pools() const { return pools_; }

  nlohmann::json ToJson() const;
  static absl::StatusOr<SubnetPools> FromJson(const nlohmann::json& j);
  friend bool operator==(const SubnetPools& a, const SubnetPools& b) {
    return a.used_ == b.used_ && a.excluded_ == b.excluded_ && a.cursor_ == b.cursor_;
  }

 private:
  static std::optional<Prefix> Overlap(const std::map<IpAddr, Prefix>& m, const Prefix& p,
                                       bool disjoint);

  std::vector<PoolSpec> pools_;
  std::map<IpAddr, Prefix> used_;      // by first address; disjoint
  std::map<IpAddr, Prefix> excluded_;  // may overlap each other
  // Next-fit position per scope: (pool index, candidate index) of the last allocation.
  std::map<Scope, std::pair<size_t, absl::uint128>> cursor_;
};

}  // namespace shoal::ipam
