// Injectable randomness and identifiers.
//
// Random is the interface code takes; SystemRandom reads the kernel CSPRNG (getrandom(2)) and
// is thread-safe; FakeRandom is a seeded deterministic generator for tests (not thread-safe).
//
// NewId():    25 lowercase base36 characters encoding 128 random bits (SwarmKit's ID shape,
//             used for nodes, services, tasks, networks, ...).
// NewHexId(): 64 lowercase hex characters (256 bits), the shape of container ids.
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <string>
#include "absl/strings/string_view.h"

namespace shoal::base {

class Random {
 public:
  virtual ~Random() = default;
  virtual void Fill(std::span<uint8_t> out) = 0;
  uint64_t Uint64();
  // Uniform in [0, n); n > 0.
  uint64_t Uniform(uint64_t n);
};

class SystemRandom final : public Random {
 public:
  void Fill(std::span<uint8_t> out) override;
};

class FakeRandom final : public Random {
 public:
  explicit FakeRandom(uint64_t seed) : engine_(seed) {}
  void Fill(std::span<uint8_t> out) override;

 private:
  std::mt19937_64 engine_;
};

inline constexpr size_t kIdLength = 25;

std::string NewId(Random& random);
std::string NewHexId(Random& random);

// True when `id` has the shape of an id: 25 characters of [0-9a-z].
bool IsValidId(absl::string_view id);

}  // namespace shoal::base
