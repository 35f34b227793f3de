// IPv4/IPv6 addresses and prefixes as 128-bit integers, so one code path serves both families
// and arithmetic on huge IPv6 subnets is O(1).
// Thread safety: plain values.
#pragma once

#include <cstdint>
#include <string>

#include "absl/numeric/int128.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace shoal::ipam {

struct IpAddr {
  bool v6 = false;
  absl::uint128 value = 0;  // IPv4 in the low 32 bits

  int bits() const { return v6 ? 128 : 32; }
  std::string ToString() const;
  friend bool operator==(const IpAddr&, const IpAddr&) = default;
  friend bool operator<(const IpAddr& a, const IpAddr& b) {
    return a.v6 != b.v6 ? !a.v6 : a.value < b.value;
  }
};

// "10.0.0.1" or "fd00::1". INVALID_ARGUMENT names `field` and the bad text.
absl::StatusOr<IpAddr> ParseIp(absl::string_view text, absl::string_view field = "address");

struct Prefix {
  IpAddr addr;  // network address (host bits zero)
  int len = 0;

  // Number of addresses (2^(bits-len)); saturates at 2^128-1 for ::/0.
  absl::uint128 Size() const;
  IpAddr First() const { return addr; }
  IpAddr Last() const;
  bool Contains(const IpAddr& a) const;
  bool Contains(const Prefix& p) const;  // p is inside this prefix (or equal)
  bool Overlaps(const Prefix& p) const;
  std::string ToString() const;
  friend bool operator==(const Prefix&, const Prefix&) = default;
  friend bool operator<(const Prefix& a, const Prefix& b) {
    return a.addr == b.addr ? a.len < b.len : a.addr < b.addr;
  }
};

// "10.0.0.0/24". Host bits set is an error ("subnet 10.0.0.1/24 has host bits set; did you mean
// 10.0.0.0/24?") because it is almost always a typo; `field` names the input in errors.
absl::StatusOr<Prefix> ParsePrefix(absl::string_view text, absl::string_view field = "subnet");

// Mask of the host part for a prefix length.
absl::uint128 HostMask(int bits, int len);

}  // namespace shoal::ipam
