#include "lb/maglev.h"

#include <algorithm>
#include <set>

#include "absl/strings/str_cat.h"

namespace shoal::lb {

bool IsPrime(uint32_t n) {
  if (n < 2) return false;
  for (uint32_t d = 2; static_cast<uint64_t>(d) * d <= n; ++d) {
    if (n % d == 0) return false;
  }
  return true;
}

uint64_t Hash64(absl::string_view bytes, uint64_t seed) {
  uint64_t h = 0xcbf29ce484222325ULL ^ seed;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  h += 0x9e3779b97f4a7c15ULL;
  h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ULL;
  h = (h ^ (h >> 27)) * 0x94d049bb133111ebULL;
  return h ^ (h >> 31);
}

absl::StatusOr<std::vector<int32_t>> BuildMaglevTable(const std::vector<WeightedBackend>& backends,
                                                      uint32_t size, uint64_t seed) {
  if (!IsPrime(size)) {
    return absl::InvalidArgumentError(absl::StrCat("maglev table size ", size, ": not prime"));
  }
  std::set<std::string> ids;
  uint32_t max_weight = 0;
  size_t weighted = 0;
  for (const WeightedBackend& b : backends) {
    if (!ids.insert(b.id).second) {
      return absl::InvalidArgumentError(absl::StrCat("maglev backend ", b.id, ": listed twice"));
    }
    max_weight = std::max(max_weight, b.weight);
    if (b.weight > 0) ++weighted;
  }
  if (weighted > size) {
    return absl::InvalidArgumentError(
        absl::StrCat("maglev table size ", size, " is smaller than ", weighted, " backends"));
  }
  std::vector<int32_t> table(size, -1);
  if (weighted == 0) return table;

  struct Perm {
    uint64_t offset, skip, next = 0;
    uint64_t credit = 0;
  };
  std::vector<Perm> perms;
  perms.reserve(backends.size());
  for (const WeightedBackend& b : backends) {
    Perm p;
    p.offset = Hash64(b.id, seed) % size;
    p.skip = Hash64(b.id, seed ^ 0x5bd1e9955bd1e995ULL) % (size - 1) + 1;
    perms.push_back(p);
  }
  uint32_t filled = 0;
  while (true) {
    for (size_t i = 0; i < backends.size(); ++i) {
      if (backends[i].weight == 0) continue;
      Perm& p = perms[i];
      p.credit += backends[i].weight;
      if (p.credit < max_weight) continue;  // lighter backends skip some rounds
      p.credit -= max_weight;
      uint64_t slot;
      do {
        slot = (p.offset + p.next * p.skip) % size;
        ++p.next;
      } while (table[slot] >= 0);
      table[slot] = static_cast<int32_t>(i);
      if (++filled == size) return table;
    }
  }
}

int32_t PickRandom(const std::vector<WeightedBackend>& backends, base::Random& random) {
  uint64_t total = 0;
  for (const WeightedBackend& b : backends) total += b.weight;
  if (total == 0) return -1;
  uint64_t r = random.Uniform(total);
  for (size_t i = 0; i < backends.size(); ++i) {
    if (r < backends[i].weight) return static_cast<int32_t>(i);
    r -= backends[i].weight;
  }
  return -1;
}

}  // namespace shoal::lb
