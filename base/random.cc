#include "base/random.h"

#include <sys/random.h>

#include <array>
#include <cerrno>

#include "absl/numeric/int128.h"
#include "base/check.h"

namespace shoal::base {

uint64_t Random::Uint64() {
  std::array<uint8_t, 8> b;
  Fill(b);
  uint64_t v = 0;
  for (uint8_t x : b) v = (v << 8) | x;
  return v;
}

uint64_t Random::Uniform(uint64_t n) {
  CHECK(n > 0) << "Uniform(0)";
  // Rejection sampling keeps the distribution exact.
  const uint64_t limit = UINT64_MAX - (UINT64_MAX % n);
  uint64_t v;
  do {
    v = Uint64();
  } while (v >= limit);
  return v % n;
}

void SystemRandom::Fill(std::span<uint8_t> out) {
  size_t done = 0;
  while (done < out.size()) {
    ssize_t n = getrandom(out.data() + done, out.size() - done, 0);
    if (n < 0) {
      CHECK(errno == EINTR) << "getrandom failed: errno " << errno;
      continue;
    }
    done += static_cast<size_t>(n);
  }
}

void FakeRandom::Fill(std::span<uint8_t> out) {
  for (auto& b : out) b = static_cast<uint8_t>(engine_());
}

std::string NewId(Random& random) {
  std::array<uint8_t, 16> bytes;
  random.Fill(bytes);
  absl::uint128 v = 0;
  for (uint8_t b : bytes) v = (v << 8) | b;
  static constexpr char kDigits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
  std::string id(kIdLength, '0');  // 36^25 > 2^128, so 25 digits always suffice
  for (size_t i = kIdLength; i-- > 0 && v != 0;) {
    id[i] = kDigits[static_cast<int>(v % 36)];
    v /= 36;
  }
  return id;
}

std::string NewHexId(Random& random) {
  std::array<uint8_t, 32> bytes;
  random.Fill(bytes);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id;
  id.reserve(64);
  for (uint8_t b : bytes) {
    id.push_back(kHex[b >> 4]);
    id.push_back(kHex[b & 15]);
  }
  return id;
}

bool IsValidId(absl::string_view id) {
  if (id.size() != kIdLength) return false;
  for (char c : id) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z'))) return false;
  }
  return true;
}

}  // namespace shoal::base
