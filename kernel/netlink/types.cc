#include "kernel/netlink/types.h"

#include <arpa/inet.h>

#include <cstdio>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"

namespace shoal::kernel {

absl::StatusOr<IpAddr> IpAddr::Parse(absl::string_view text) {
  std::string s(text);
  IpAddr a;
  if (inet_pton(AF_INET, s.c_str(), a.bytes.data()) == 1) {
    a.family = AF_INET;
    return a;
  }
  if (inet_pton(AF_INET6, s.c_str(), a.bytes.data()) == 1) {
    a.family = AF_INET6;
    return a;
  }
  return absl::InvalidArgumentError(absl::StrCat("invalid IP address \"", s, "\""));
}

IpAddr IpAddr::V4(uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
  IpAddr r;
  r.family = AF_INET;
  r.bytes[0] = a;
  r.bytes[1] = b;
  r.bytes[2] = c;
  r.bytes[3] = d;
  return r;
}

bool IpAddr::is_v4() const { return family == AF_INET; }

int IpAddr::byte_len() const { return family == AF_INET ? 4 : family == AF_INET6 ? 16 : 0; }

std::string IpAddr::ToString() const {
  if (!is_set()) return "<unset>";
  char buf[INET6_ADDRSTRLEN];
  inet_ntop(family, bytes.data(), buf, sizeof(buf));
  return buf;
}

absl::StatusOr<IpPrefix> IpPrefix::Parse(absl::string_view text) {
  std::vector<absl::string_view> parts = absl::StrSplit(text, absl::MaxSplits('/', 1));
  IpPrefix p;
  auto addr = IpAddr::Parse(parts[0]);
  if (!addr.ok()) return addr.status();
  p.addr = *addr;
  int max = p.addr.byte_len() * 8;
  if (parts.size() == 1) {
    p.len = max;
    return p;
  }
  if (!absl::SimpleAtoi(parts[1], &p.len) || p.len < 0 || p.len > max) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid prefix length in \"", std::string(text), "\""));
  }
  return p;
}

std::string IpPrefix::ToString() const { return absl::StrCat(addr.ToString(), "/", len); }

IpPrefix IpPrefix::Network() const {
  IpPrefix n = *this;
  int bits = len;
  for (int i = 0; i < addr.byte_len(); ++i) {
    if (bits >= 8) {
      bits -= 8;
      continue;
    }
    n.addr.bytes[i] &= static_cast<uint8_t>(0xff << (8 - bits));
    bits = 0;
  }
  return n;
}

bool IpPrefix::Contains(const IpAddr& a) const {
  if (a.family != addr.family) return false;
  IpPrefix probe{a, len};
  return probe.Network().addr == Network().addr;
}

absl::StatusOr<MacAddr> MacAddr::Parse(absl::string_view text) {
  MacAddr m;
  std::vector<absl::string_view> parts = absl::StrSplit(text, ':');
  if (parts.size() != 6) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid MAC address \"", std::string(text), "\""));
  }
  for (int i = 0; i < 6; ++i) {
    uint32_t v = 0;
    if (parts[i].size() != 2 || !absl::SimpleHexAtoi(parts[i], &v)) {
      return absl::InvalidArgumentError(
          absl::StrCat("invalid MAC address \"", std::string(text), "\""));
    }
    m.bytes[i] = static_cast<uint8_t>(v);
  }
  return m;
}

bool MacAddr::is_zero() const {
  for (uint8_t b : bytes)
    if (b != 0) return false;
  return true;
}

std::string MacAddr::ToString() const {
  return absl::StrFormat("%02x:%02x:%02x:%02x:%02x:%02x", bytes[0], bytes[1], bytes[2], bytes[3],
                         bytes[4], bytes[5]);
}

}  // namespace shoal::kernel
