#include "kernel/nft/types.h"

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>

#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/check.h"

namespace shoal::kernel::nft {

int FieldLen(FieldType t) {
  switch (t) {
    case FieldType::kIpv4Addr: return 4;
    case FieldType::kIpv6Addr: return 16;
    case FieldType::kInetProto: return 1;
    case FieldType::kInetService: return 2;
    case FieldType::kMark: return 4;
    case FieldType::kInteger: return 4;
    case FieldType::kIfname: return IFNAMSIZ;
  }
  return 0;
}

Datum Ipv4(absl::string_view dotted) {
  auto d = ParseDatum(FieldType::kIpv4Addr, dotted);
  CHECK(d.has_value()) << "bad IPv4 literal " << std::string(dotted);
  return *d;
}

Datum Ipv4(uint32_t host_order) {
  uint32_t n = htonl(host_order);
  return Datum{std::string(reinterpret_cast<const char*>(&n), 4)};
}

Datum Ipv6(absl::string_view text) {
  auto d = ParseDatum(FieldType::kIpv6Addr, text);
  CHECK(d.has_value()) << "bad IPv6 literal " << std::string(text);
  return *d;
}

Datum Port(uint16_t port) {
  uint16_t n = htons(port);
  return Datum{std::string(reinterpret_cast<const char*>(&n), 2)};
}

Datum Proto(uint8_t proto) { return Datum{std::string(1, static_cast<char>(proto))}; }

Datum U32(uint32_t host_order) {
  return Datum{std::string(reinterpret_cast<const char*>(&host_order), 4)};
}

Datum Ifname(absl::string_view name) {
  CHECK(name.size() < IFNAMSIZ) << "interface name too long: " << std::string(name);
  std::string b(IFNAMSIZ, '\0');
  memcpy(b.data(), name.data(), name.size());
  return Datum{b};
}

std::optional<Datum> ParseDatum(FieldType t, absl::string_view text) {
  std::string s(text);
  switch (t) {
    case FieldType::kIpv4Addr: {
      in_addr a;
      if (inet_pton(AF_INET, s.c_str(), &a) != 1) return std::nullopt;
      return Datum{std::string(reinterpret_cast<const char*>(&a), 4)};
    }
    case FieldType::kIpv6Addr: {
      in6_addr a;
      if (inet_pton(AF_INET6, s.c_str(), &a) != 1) return std::nullopt;
      return Datum{std::string(reinterpret_cast<const char*>(&a), 16)};
    }
    case FieldType::kInetProto: {
      if (s == "tcp") return Proto(IPPROTO_TCP);
      if (s == "udp") return Proto(IPPROTO_UDP);
      if (s == "sctp") return Proto(IPPROTO_SCTP);
      uint32_t v;
      if (!absl::SimpleAtoi(s, &v) || v > 255) return std::nullopt;
      return Proto(static_cast<uint8_t>(v));
    }
    case FieldType::kInetService: {
      uint32_t v;
      if (!absl::SimpleAtoi(s, &v) || v > 65535) return std::nullopt;
      return Port(static_cast<uint16_t>(v));
    }
    case FieldType::kMark:
    case FieldType::kInteger: {
      uint32_t v;
      if (!absl::SimpleAtoi(s, &v)) return std::nullopt;
      return U32(v);
    }
    case FieldType::kIfname:
      if (s.empty() || s.size() >= IFNAMSIZ) return std::nullopt;
      return Ifname(s);
  }
  return std::nullopt;
}

std::string FormatDatum(FieldType t, const Datum& d) {
  const std::string& b = d.bytes;
  if (static_cast<int>(b.size()) != FieldLen(t)) return absl::StrCat("<bad ", b.size(), "B>");
  char buf[INET6_ADDRSTRLEN];
  switch (t) {
    case FieldType::kIpv4Addr:
      return inet_ntop(AF_INET, b.data(), buf, sizeof(buf));
    case FieldType::kIpv6Addr:
      return inet_ntop(AF_INET6, b.data(), buf, sizeof(buf));
    case FieldType::kInetProto: {
      uint8_t p = static_cast<uint8_t>(b[0]);
      if (p == IPPROTO_TCP) return "tcp";
      if (p == IPPROTO_UDP) return "udp";
      return absl::StrCat(p);
    }
    case FieldType::kInetService: {
      uint16_t n;
      memcpy(&n, b.data(), 2);
      return absl::StrCat(ntohs(n));
    }
    case FieldType::kMark:
    case FieldType::kInteger: {
      uint32_t v;
      memcpy(&v, b.data(), 4);
      return absl::StrCat(v);
    }
    case FieldType::kIfname:
      return std::string(b.c_str());
  }
  return "";
}

absl::string_view FamilyName(Family f) {
  switch (f) {
    case Family::kIp: return "ip";
    case Family::kIp6: return "ip6";
    case Family::kInet: return "inet";
  }
  return "?";
}

absl::string_view HookName(Hook h) {
  switch (h) {
    case Hook::kPrerouting: return "prerouting";
    case Hook::kInput: return "input";
    case Hook::kForward: return "forward";
    case Hook::kOutput: return "output";
    case Hook::kPostrouting: return "postrouting";
  }
  return "?";
}

}  // namespace shoal::kernel::nft

namespace shoal::kernel::nft {
namespace {
std::string Hex(const std::string& b) {
  std::string out = "0x";
  static const char* d = "0123456789abcdef";
  for (unsigned char c : b) {
    out += d[c >> 4];
    out += d[c & 15];
  }
  return out;
}
std::string VerdictString(const Verdict& v) {
  static const char* names[] = {"accept", "drop", "return", "jump", "goto", "continue"};
  std::string s = names[static_cast<int>(v.code)];
  if (!v.chain.empty()) s += " " + v.chain;
  return s;
}
template <class... Ts>
struct Overloaded : Ts... {
  using Ts::operator()...;
};
template <class... Ts>
Overloaded(Ts...) -> Overloaded<Ts...>;
}  // namespace

std::string DebugString(const Expr& e) {
  return std::visit(
      Overloaded{
          [](const MetaExpr& m) { return absl::StrCat("[meta ", static_cast<int>(m.key), " => r", m.dreg, "]"); },
          [](const MetaSetExpr& m) {
            return absl::StrCat("[meta set ", static_cast<int>(m.key), " <= r", m.sreg, "]");
          },
          [](const PayloadExpr& p) {
            return absl::StrCat("[payload ", p.base == PayloadBase::kNetwork ? "nh" : "th", " @",
                                p.offset, ",", p.len, " => r", p.dreg, "]");
          },
          [](const CmpExpr& c) {
            return absl::StrCat("[cmp r", c.sreg, " op", static_cast<int>(c.op), " ", Hex(c.data), "]");
          },
          [](const BitwiseExpr& b) {
            return absl::StrCat("[bitwise r", b.dreg, " = (r", b.sreg, " & ", Hex(b.mask), ") ^ ",
                                Hex(b.xor_), " len ", b.len, "]");
          },
          [](const LookupExpr& l) {
            return absl::StrCat("[lookup r", l.sreg, " @", l.set,
                                l.dreg ? absl::StrCat(" => r", *l.dreg) : "", l.invert ? " inv" : "", "]");
          },
          [](const ImmediateExpr& i) {
            return absl::StrCat("[imm r", i.dreg, " ", i.verdict ? VerdictString(*i.verdict) : Hex(i.data), "]");
          },
          [](const NatExpr& n) {
            return absl::StrCat("[nat ", n.type == NatType::kSnat ? "snat" : "dnat", " ",
                                FamilyName(n.family), " addr r", n.reg_addr.value_or(0), " proto r",
                                n.reg_proto.value_or(0), "]");
          },
          [](const MasqExpr& m) { return std::string(m.fully_random ? "[masq fully-random]" : "[masq]"); },
          [](const RedirExpr& r) { return absl::StrCat("[redir proto r", r.reg_proto.value_or(0), "]"); },
          [](const NumgenExpr& n) {
            return absl::StrCat("[numgen ", n.incremental ? "inc" : "random", " mod ", n.modulus, " => r", n.dreg, "]");
          },
          [](const HashExpr& h) {
            return absl::StrCat("[jhash r", h.sreg, " len ", h.len, " mod ", h.modulus, " seed ", h.seed,
                                " => r", h.dreg, "]");
          },
          [](const FibExpr& f) { return absl::StrCat("[fib daddr type => r", f.dreg, "]"); },
          [](const CtStateExpr& c) {
            return absl::StrCat("[ct ", c.status ? "status" : "state", " => r", c.dreg, "]");
          },
          [](const CounterExpr& c) { return absl::StrCat("[counter ", c.packets, " ", c.bytes, "]"); },
          [](const OtherExpr& o) { return absl::StrCat("[", o.name, "?]"); },
      },
      e);
}

std::string DebugString(const Rule& r) {
  std::string s = r.chain + ":";
  for (const Expr& e : r.exprs) s += " " + DebugString(e);
  if (!r.comment.empty()) s += " comment \"" + r.comment + "\"";
  return s;
}

}  // namespace shoal::kernel::nft
