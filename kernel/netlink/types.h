// Value types shared by the netlink adapter and its users: IP addresses, prefixes, MAC
// addresses. Pure, thread-compatible, no kernel access.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace shoal::kernel {

// An IPv4 or IPv6 address. A default-constructed IpAddr is "unset" (family 0).
struct IpAddr {
  int family = 0;                   // 0 (unset), AF_INET or AF_INET6
  std::array<uint8_t, 16> bytes{};  // network order; IPv4 uses the first 4 bytes

  static absl::StatusOr<IpAddr> Parse(absl::string_view text);
  static IpAddr V4(uint8_t a, uint8_t b, uint8_t c, uint8_t d);
  bool is_set() const { return family != 0; }
  bool is_v4() const;
  int byte_len() const;  // 4, 16 or 0
  std::string ToString() const;
  auto operator<=>(const IpAddr&) const = default;
};

// An address with a prefix length: "10.0.0.2/24".
struct IpPrefix {
  IpAddr addr;
  int len = 0;

  // Accepts "a.b.c.d/n", "x::y/n" and a bare address (full-length prefix).
  static absl::StatusOr<IpPrefix> Parse(absl::string_view text);
  std::string ToString() const;
  // The prefix with host bits cleared (the network address).
  IpPrefix Network() const;
  bool Contains(const IpAddr& a) const;
  auto operator<=>(const IpPrefix&) const = default;
};

struct MacAddr {
  std::array<uint8_t, 6> bytes{};

  static absl::StatusOr<MacAddr> Parse(absl::string_view text);
  bool is_zero() const;
  std::string ToString() const;  // "02:42:0a:00:00:02"
  auto operator<=>(const MacAddr&) const = default;
};

template <typename H>
H AbslHashValue(H h, const IpAddr& a) {
  return H::combine(std::move(h), a.family, a.bytes);
}
template <typename H>
H AbslHashValue(H h, const MacAddr& m) {
  return H::combine(std::move(h), m.bytes);
}

}  // namespace shoal::kernel
