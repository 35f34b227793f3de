// ParseUpstream and the packet/address helpers shared by the resolver's files.
#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "dns/resolver.h"
#include "dns/resolver_loop.h"

namespace shoal::dns {

absl::StatusOr<Upstream> ParseUpstream(const std::string& text) {
  Upstream u;
  u.text = text;
  std::string host = text;
  uint16_t port = 53;
  auto bad = [&] {
    return absl::InvalidArgumentError(absl::StrCat("upstream \"", text, "\": not ip[:port]"));
  };
  if (!text.empty() && text[0] == '[') {
    size_t close = text.find(']');
    if (close == std::string::npos) return bad();
    host = text.substr(1, close - 1);
    if (close + 1 < text.size()) {
      uint32_t p;
      if (text[close + 1] != ':' || !absl::SimpleAtoi(text.substr(close + 2), &p) || p == 0 ||
          p > 65535) {
        return bad();
      }
      port = static_cast<uint16_t>(p);
    }
  } else if (std::count(text.begin(), text.end(), ':') == 1) {
    size_t colon = text.find(':');
    host = text.substr(0, colon);
    uint32_t p;
    if (!absl::SimpleAtoi(text.substr(colon + 1), &p) || p == 0 || p > 65535) return bad();
    port = static_cast<uint16_t>(p);
  }
  auto* a4 = reinterpret_cast<sockaddr_in*>(&u.addr);
  auto* a6 = reinterpret_cast<sockaddr_in6*>(&u.addr);
  if (inet_pton(AF_INET, host.c_str(), &a4->sin_addr) == 1) {
    a4->sin_family = AF_INET;
    a4->sin_port = htons(port);
    u.len = sizeof(sockaddr_in);
    u.loopback = (ntohl(a4->sin_addr.s_addr) >> 24) == 127;
  } else if (inet_pton(AF_INET6, host.c_str(), &a6->sin6_addr) == 1) {
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons(port);
    u.len = sizeof(sockaddr_in6);
    u.loopback = IN6_IS_ADDR_LOOPBACK(&a6->sin6_addr);
  } else {
    return bad();
  }
  return u;
}

namespace internal {

bool SameAddr(const sockaddr_storage& a, const sockaddr_storage& b) {
  if (a.ss_family != b.ss_family) return false;
  if (a.ss_family == AF_INET) {
    auto* x = reinterpret_cast<const sockaddr_in*>(&a);
    auto* y = reinterpret_cast<const sockaddr_in*>(&b);
    return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
  }
  auto* x = reinterpret_cast<const sockaddr_in6*>(&a);
  auto* y = reinterpret_cast<const sockaddr_in6*>(&b);
  return x->sin6_port == y->sin6_port &&
         std::memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(in6_addr)) == 0;
}

void SetId(std::string& packet, uint16_t id) {
  packet[0] = static_cast<char>(id >> 8);
  packet[1] = static_cast<char>(id & 0xff);
}

uint16_t GetId(absl::string_view packet) {
  return static_cast<uint16_t>((static_cast<uint8_t>(packet[0]) << 8) |
                               static_cast<uint8_t>(packet[1]));
}

}  // namespace internal
}  // namespace shoal::dns
