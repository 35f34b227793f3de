// Backend selection, pure and deterministic (DESIGN.md §5, reference/dataplane.md §7.4–7.5).
//
// Maglev consistent hashing (Eisenbud et al., NSDI 2016, §3.4): every backend gets a
// permutation of the table slots derived from its name; slots are filled round-robin from the
// permutations, so the table is balanced (each backend owns ≈ size·weight/Σweight slots) and
// removing one backend moves ≈ only that backend's slots. Weights follow katran's variant: a
// backend takes a turn each round in proportion to its weight. Two nodes with the same
// backends, weights, size and seed build the same table, so they pick the same backend for a
// flow without sharing state.
//
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "base/random.h"

namespace shoal::lb {

struct WeightedBackend {
  std::string id;  // stable identity, e.g. "10.0.1.5:80"
  uint32_t weight = 1;
};

// Table sizes must be prime (so every skip visits every slot). Cilium's default is 16381,
// katran's 65537; the nft dataplane uses a small one per service to keep map sizes sane.
inline constexpr uint32_t kDefaultMaglevSize = 16381;
bool IsPrime(uint32_t n);

// Slot -> index into `backends`; -1 for every slot when no backend has weight > 0.
// InvalidArgument when `size` is not prime or smaller than the number of weighted backends,
// or when ids repeat.
absl::StatusOr<std::vector<int32_t>> BuildMaglevTable(const std::vector<WeightedBackend>& backends,
                                                      uint32_t size, uint64_t seed);

// A stable 64-bit hash of bytes with a seed (FNV-1a, then a SplitMix64 finalizer).
uint64_t Hash64(absl::string_view bytes, uint64_t seed);

// Picks an index with probability weight/Σweight; -1 when all weights are 0.
int32_t PickRandom(const std::vector<WeightedBackend>& backends, base::Random& random);

}  // namespace shoal::lb
