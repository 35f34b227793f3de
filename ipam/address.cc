#include "ipam/address.h"

#include <arpa/inet.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace shoal::ipam {

absl::uint128 HostMask(int bits, int len) {
  int host = bits - len;
  if (host <= 0) return 0;
  if (host >= 128) return absl::Uint128Max();
  return (absl::uint128(1) << host) - 1;
}

std::string IpAddr::ToString() const {
  char buf[INET6_ADDRSTRLEN];
  if (!v6) {
    uint32_t n = htonl(static_cast<uint32_t>(value));
    return inet_ntop(AF_INET, &n, buf, sizeof(buf));
  }
  unsigned char b[16];
  uint64_t hi = absl::Uint128High64(value), lo = absl::Uint128Low64(value);
  for (int i = 0; i < 8; ++i) {
    b[i] = static_cast<unsigned char>(hi >> (56 - 8 * i));
    b[8 + i] = static_cast<unsigned char>(lo >> (56 - 8 * i));
  }
  return inet_ntop(AF_INET6, b, buf, sizeof(buf));
}

absl::StatusOr<IpAddr> ParseIp(absl::string_view text, absl::string_view field) {
  std::string s(text);
  in_addr a4;
  if (inet_pton(AF_INET, s.c_str(), &a4) == 1) return IpAddr{false, ntohl(a4.s_addr)};
  unsigned char a6[16];
  if (inet_pton(AF_INET6, s.c_str(), a6) == 1) {
    uint64_t hi = 0, lo = 0;
    for (int i = 0; i < 8; ++i) {
      hi = (hi << 8) | a6[i];
      lo = (lo << 8) | a6[8 + i];
    }
    return IpAddr{true, absl::MakeUint128(hi, lo)};
  }
  return absl::InvalidArgumentError(
      absl::StrCat(field, " \"", s, "\": not an IPv4 or IPv6 address"));
}

absl::uint128 Prefix::Size() const {
  absl::uint128 m = HostMask(addr.bits(), len);
  return m == absl::Uint128Max() ? m : m + 1;
}

IpAddr Prefix::Last() const { return IpAddr{addr.v6, addr.value | HostMask(addr.bits(), len)}; }

bool Prefix::Contains(const IpAddr& a) const {
  return a.v6 == addr.v6 && (a.value & ~HostMask(addr.bits(), len)) == addr.value;
}

bool Prefix::Contains(const Prefix& p) const { return p.len >= len && Contains(p.addr); }

bool Prefix::Overlaps(const Prefix& p) const { return Contains(p) || p.Contains(*this); }

std::string Prefix::ToString() const { return absl::StrCat(addr.ToString(), "/", len); }

absl::StatusOr<Prefix> ParsePrefix(absl::string_view text, absl::string_view field) {
  size_t slash = text.find('/');
  if (slash == absl::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat(field, " \"", std::string(text),
                                                   "\": missing prefix length (e.g. /24)"));
  }
  auto ip = ParseIp(text.substr(0, slash), field);
  if (!ip.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " \"", std::string(text), "\": not an IPv4 or IPv6 prefix"));
  }
  int len;
  if (!absl::SimpleAtoi(text.substr(slash + 1), &len) || len < 0 || len > ip->bits()) {
    return absl::InvalidArgumentError(absl::StrCat(field, " \"", std::string(text),
                                                   "\": prefix length must be 0..", ip->bits()));
  }
  Prefix p{*ip, len};
  absl::uint128 host = ip->value & HostMask(ip->bits(), len);
  if (host != 0) {
    Prefix fixed{IpAddr{ip->v6, ip->value & ~HostMask(ip->bits(), len)}, len};
    return absl::InvalidArgumentError(absl::StrCat(field, " \"", std::string(text),
                                                   "\" has host bits set; did you mean ",
                                                   fixed.ToString(), "?"));
  }
  return p;
}

}  // namespace shoal::ipam
