// RangeSet: a set of 128-bit integers stored as disjoint, merged, inclusive intervals.
// Memory is O(number of runs), not O(size of the space), so an IPv6 /64 costs nothing until
// addresses are handed out, and contiguous allocations (the common case with next-fit)
// collapse into one run. Every operation is O(log runs).
// Thread safety: none (a value type; the owner serializes access).
#pragma once

#include <map>
#include <optional>
#include <vector>

#include "absl/numeric/int128.h"

namespace shoal::ipam {

class RangeSet {
 public:
  bool Contains(absl::uint128 x) const;
  // Returns false if x was already present / absent.
  bool Insert(absl::uint128 x);
  bool Erase(absl::uint128 x);
  // Inserts [lo, hi] (may overlap existing runs).
  void InsertRange(absl::uint128 lo, absl::uint128 hi);
  // Smallest value v in [lo, hi] not in the set, if any.
  std::optional<absl::uint128> FirstAbsent(absl::uint128 lo, absl::uint128 hi) const;
  // Number of members inside [lo, hi].
  absl::uint128 CountIn(absl::uint128 lo, absl::uint128 hi) const;
  absl::uint128 size() const { return size_; }
  size_t runs() const { return runs_.size(); }
  // Runs as (first, last) pairs in increasing order.
  std::vector<std::pair<absl::uint128, absl::uint128>> Runs() const;

  friend bool operator==(const RangeSet& a, const RangeSet& b) { return a.runs_ == b.runs_; }

 private:
  std::map<absl::uint128, absl::uint128> runs_;  // first -> last (inclusive)
  absl::uint128 size_ = 0;
};

}  // namespace shoal::ipam
