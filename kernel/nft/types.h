// Plain-value model of the nftables objects Shoal programs: tables, chains, sets/maps with
// elements, and rules made of a small expression vocabulary. The same values are used by the
// netlink adapter (kernel/nft/netlink_nft.h), the in-memory fake (fake_nft.h) and the pure plan
// (plan.h), so desired and observed state compare with operator==.
//
// Byte order convention for data carried in these structs (what the kernel compares against):
//   * addresses (kIpv4Addr/kIpv6Addr) and ports (kInetService): network byte order;
//   * kInetProto: one byte; kMark/kInteger: host byte order (u32), as meta mark / numgen /
//     jhash write them into registers.
// Use the Datum helpers (Ipv4(), Port(), Proto(), U32()) instead of building bytes by hand.
//
// Thread safety: plain values.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "absl/strings/string_view.h"

namespace shoal::kernel::nft {

enum class Family : uint8_t { kIp, kIp6, kInet };
enum class Hook : uint8_t { kPrerouting, kInput, kForward, kOutput, kPostrouting };
enum class ChainType : uint8_t { kFilter, kNat, kRoute };

// Well-known priorities (nft's "dstnat" = -100, "srcnat" = 100, "filter" = 0).
inline constexpr int kPriorityDstNat = -100;
inline constexpr int kPrioritySrcNat = 100;
inline constexpr int kPriorityFilter = 0;

struct BaseChain {
  ChainType type = ChainType::kFilter;
  Hook hook = Hook::kInput;
  int priority = 0;
  bool policy_drop = false;  // default policy accept
  friend bool operator==(const BaseChain&, const BaseChain&) = default;
};

struct Chain {
  std::string name;
  std::optional<BaseChain> base;  // nullopt: a regular chain reached by jump/goto/vmap
  friend bool operator==(const Chain&, const Chain&) = default;
};

// Key/data field types of sets and maps (nft datatype names in comments).
enum class FieldType : uint8_t {
  kIpv4Addr,     // ipv4_addr, 4 bytes, network order
  kIpv6Addr,     // ipv6_addr, 16 bytes, network order
  kInetProto,    // inet_proto, 1 byte
  kInetService,  // inet_service, 2 bytes, network order
  kMark,         // mark, 4 bytes host order
  kInteger,      // integer (32 bit), 4 bytes host order: numgen / jhash results
  kIfname,       // ifname, 16 bytes, NUL padded
};
int FieldLen(FieldType t);  // bytes of one field (unpadded)

// A value: raw bytes in the byte order above. Concatenations are vectors of Datum.
struct Datum {
  std::string bytes;
  friend bool operator==(const Datum&, const Datum&) = default;
};
Datum Ipv4(absl::string_view dotted);  // CHECKs on bad input: use for literals only
Datum Ipv4(uint32_t host_order);
Datum Ipv6(absl::string_view text);    // CHECKs on bad input
Datum Port(uint16_t port);             // to network order
Datum Proto(uint8_t proto);            // IPPROTO_TCP (6), IPPROTO_UDP (17), ...
Datum U32(uint32_t host_order);        // kMark / kInteger
Datum Ifname(absl::string_view name);  // CHECKs name.size() < 16
// Parses text per field type ("10.0.0.1", "::1", "tcp"/"udp"/"6", "80", "42", "eth0").
// Returns nullopt on bad input (for data from users).
std::optional<Datum> ParseDatum(FieldType t, absl::string_view text);
std::string FormatDatum(FieldType t, const Datum& d);

enum class VerdictCode : uint8_t { kAccept, kDrop, kReturn, kJump, kGoto, kContinue };
struct Verdict {
  VerdictCode code = VerdictCode::kAccept;
  std::string chain;  // kJump / kGoto only
  friend bool operator==(const Verdict&, const Verdict&) = default;
};
inline Verdict Accept() { return {VerdictCode::kAccept, ""}; }
inline Verdict Drop() { return {VerdictCode::kDrop, ""}; }
inline Verdict Return() { return {VerdictCode::kReturn, ""}; }
inline Verdict Jump(std::string c) { return {VerdictCode::kJump, std::move(c)}; }
inline Verdict Goto(std::string c) { return {VerdictCode::kGoto, std::move(c)}; }

struct Element {
  std::vector<Datum> key;           // one Datum per key field
  std::optional<Verdict> verdict;   // vmap
  std::vector<Datum> data;          // typed map (one Datum per data field)
  friend bool operator==(const Element&, const Element&) = default;
};

// A named set (no data), a verdict map (verdict_map=true) or a typed map (data non-empty).
// Non-interval, hash-backed: keys match exactly. Named maps are updated incrementally with
// element add/delete, so changing one service never rewrites the others.
struct Set {
  std::string name;
  std::vector<FieldType> key;   // size > 1: concatenation (a . b . c)
  bool verdict_map = false;
  std::vector<FieldType> data;  // typed map data (e.g. kIpv4Addr, kInetService for dnat maps)
  std::vector<Element> elements;  // ordered by key bytes in observed state (see Normalize)
  friend bool operator==(const Set&, const Set&) = default;
};

// ---- Expressions (what the kernel executes). Registers: 0 = verdict, 1..4 = 16-byte legacy,
// 8..23 = 32-bit registers (concatenations). RuleBuilder (rule.h) picks them; users normally
// never build these by hand.
enum class MetaKey : uint8_t { kL4Proto, kNfProto, kIifname, kOifname, kMark, kIif, kOif };
enum class PayloadBase : uint8_t { kNetwork, kTransport };
enum class CmpOp : uint8_t { kEq, kNeq, kLt, kLte, kGt, kGte };
enum class NatType : uint8_t { kSnat, kDnat };

struct MetaExpr { MetaKey key; uint32_t dreg; friend bool operator==(const MetaExpr&, const MetaExpr&) = default; };
struct MetaSetExpr {  // meta <key> set <sreg> (e.g. meta mark set)
  MetaKey key;
  uint32_t sreg;
  friend bool operator==(const MetaSetExpr&, const MetaSetExpr&) = default;
};
struct PayloadExpr {
  PayloadBase base;
  uint32_t offset, len, dreg;
  friend bool operator==(const PayloadExpr&, const PayloadExpr&) = default;
};
struct CmpExpr { uint32_t sreg; CmpOp op; std::string data; friend bool operator==(const CmpExpr&, const CmpExpr&) = default; };
struct BitwiseExpr {  // dreg = (sreg & mask) ^ xor_
  uint32_t sreg, dreg, len;
  std::string mask, xor_;
  friend bool operator==(const BitwiseExpr&, const BitwiseExpr&) = default;
};
struct LookupExpr {  // dreg 0 = verdict map; no dreg = set membership
  uint32_t sreg;
  std::optional<uint32_t> dreg;
  std::string set;
  bool invert = false;
  friend bool operator==(const LookupExpr&, const LookupExpr&) = default;
};
struct ImmediateExpr {
  uint32_t dreg;  // 0 with verdict
  std::string data;
  std::optional<Verdict> verdict;
  friend bool operator==(const ImmediateExpr&, const ImmediateExpr&) = default;
};
struct NatExpr {
  NatType type;
  Family family;  // kIp or kIp6
  std::optional<uint32_t> reg_addr, reg_proto;
  bool persistent = false, random = false, fully_random = false;
  friend bool operator==(const NatExpr&, const NatExpr&) = default;
};
struct MasqExpr { bool fully_random = false; friend bool operator==(const MasqExpr&, const MasqExpr&) = default; };
struct RedirExpr { std::optional<uint32_t> reg_proto; friend bool operator==(const RedirExpr&, const RedirExpr&) = default; };
struct NumgenExpr {  // random (or incremental) number in [0, modulus)
  uint32_t dreg, modulus;
  bool incremental = false;
  friend bool operator==(const NumgenExpr&, const NumgenExpr&) = default;
};
struct HashExpr {  // jhash(sreg[0..len), seed) % modulus
  uint32_t sreg, dreg, len, modulus, seed;
  friend bool operator==(const HashExpr&, const HashExpr&) = default;
};
struct FibExpr {  // fib daddr type -> dreg (u32 RTN_*)
  uint32_t dreg;
  friend bool operator==(const FibExpr&, const FibExpr&) = default;
};
struct CtStateExpr {  // ct state (status=false) or ct status (status=true) -> dreg (u32 bits)
  uint32_t dreg;
  bool status = false;
  friend bool operator==(const CtStateExpr&, const CtStateExpr&) = default;
};
struct CounterExpr {
  // Observed values; ignored by operator== so desired rules compare equal to dumped ones.
  uint64_t packets = 0, bytes = 0;
  friend bool operator==(const CounterExpr&, const CounterExpr&) { return true; }
};

// An expression outside this vocabulary, seen in a dump (never emitted by Shoal). A rule holding
// one never equals a desired rule, so the plan replaces it.
struct OtherExpr { std::string name; friend bool operator==(const OtherExpr&, const OtherExpr&) = default; };

using Expr = std::variant<MetaExpr, MetaSetExpr, PayloadExpr, CmpExpr, BitwiseExpr, LookupExpr, ImmediateExpr,
                          NatExpr, MasqExpr, RedirExpr, NumgenExpr, HashExpr, FibExpr,
                          CtStateExpr, CounterExpr, OtherExpr>;

struct Rule {
  std::string chain;
  std::vector<Expr> exprs;
  std::string comment;  // stored in the rule's userdata (nft shows it as comment "...")
  uint64_t handle = 0;  // observed only; ignored by operator==
  friend bool operator==(const Rule& a, const Rule& b) {
    return a.chain == b.chain && a.exprs == b.exprs && a.comment == b.comment;
  }
};

// Full contents of one table (desired state, or observed by Nft::GetTable). Chains and sets in
// name order, rules per chain in evaluation order.
struct Table {
  Family family = Family::kInet;
  std::string name;
  std::vector<Chain> chains;
  std::vector<Set> sets;
  std::vector<Rule> rules;
  friend bool operator==(const Table&, const Table&) = default;
};

// Readable one-line forms for logs and test failures (nft --debug=netlink style).
std::string DebugString(const Expr& e);
std::string DebugString(const Rule& r);

absl::string_view FamilyName(Family f);  // "ip", "ip6", "inet"
absl::string_view HookName(Hook h);      // "prerouting", ...

}  // namespace shoal::kernel::nft
