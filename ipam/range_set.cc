#include "ipam/range_set.h"

#include <algorithm>

namespace shoal::ipam {

bool RangeSet::Contains(absl::uint128 x) const {
  auto it = runs_.upper_bound(x);
  if (it == runs_.begin()) return false;
  --it;
  return x <= it->second;
}

bool RangeSet::Insert(absl::uint128 x) {
  if (Contains(x)) return false;
  InsertRange(x, x);
  return true;
}

void RangeSet::InsertRange(absl::uint128 lo, absl::uint128 hi) {
  if (hi < lo) return;
  // Merge with every run that overlaps or touches [lo, hi].
  auto it = runs_.upper_bound(lo);
  if (it != runs_.begin()) {
    auto prev = std::prev(it);
    if (prev->second >= lo || (lo > 0 && prev->second == lo - 1)) it = prev;
  }
  absl::uint128 new_lo = lo, new_hi = hi;
  while (it != runs_.end() &&
         (it->first <= hi || (hi != absl::Uint128Max() && it->first == hi + 1))) {
    new_lo = std::min(new_lo, it->first);
    new_hi = std::max(new_hi, it->second);
    size_ -= it->second - it->first + 1;
    it = runs_.erase(it);
  }
  runs_[new_lo] = new_hi;
  size_ += new_hi - new_lo + 1;
}

bool RangeSet::Erase(absl::uint128 x) {
  auto it = runs_.upper_bound(x);
  if (it == runs_.begin()) return false;
  --it;
  if (x > it->second) return false;
  absl::uint128 first = it->first, last = it->second;
  runs_.erase(it);
  if (first < x) runs_[first] = x - 1;
  if (x < last) runs_[x + 1] = last;
  size_ -= 1;
  return true;
}

std::optional<absl::uint128> RangeSet::FirstAbsent(absl::uint128 lo, absl::uint128 hi) const {
  if (hi < lo) return std::nullopt;
  absl::uint128 x = lo;
  auto it = runs_.upper_bound(x);
  if (it != runs_.begin()) {
    auto prev = std::prev(it);
    if (x <= prev->second) {
      if (prev->second >= hi) return std::nullopt;
      x = prev->second + 1;  // runs are merged, so x is absent
    }
  }
  return x;
}

absl::uint128 RangeSet::CountIn(absl::uint128 lo, absl::uint128 hi) const {
  if (hi < lo) return 0;
  absl::uint128 n = 0;
  auto it = runs_.upper_bound(lo);
  if (it != runs_.begin()) --it;
  for (; it != runs_.end() && it->first <= hi; ++it) {
    absl::uint128 a = std::max(it->first, lo), b = std::min(it->second, hi);
    if (a <= b) n += b - a + 1;
  }
  return n;
}

std::vector<std::pair<absl::uint128, absl::uint128>> RangeSet::Runs() const {
  return {runs_.begin(), runs_.end()};
}

}  // namespace shoal::ipam
