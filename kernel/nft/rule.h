// RuleBuilder: builds nft::Rule values from a small vocabulary of matches and statements.
// Each method mirrors one nft(8) phrase; the generated expressions are what nft 1.0.x emits for
// the same phrase, so `nft list ruleset` prints them back readably.
//
//   RuleBuilder(Family::kInet, "prerouting")
//       .FibDaddrLocal()                                   // fib daddr type local
//       .Vmap({Field::kL4Proto, Field::kDport}, "ports");   // meta l4proto . th dport vmap @ports
//   RuleBuilder(Family::kInet, "services")
//       .Vmap({Field::kDaddr4, Field::kL4Proto, Field::kDport}, "service-ips");
//   RuleBuilder(Family::kInet, "svc-web").NumgenVmap(3, "svc-web-backends");
//                                                    // numgen random mod 3 vmap @svc-web-backends
//   RuleBuilder(Family::kInet, "ep-web-1").Counter().Dnat(*ParseAddr("10.0.1.5"), 80);
//   RuleBuilder(Family::kInet, "dns").Daddr(*ParsePrefix("127.0.0.11/32")).L4Proto(17)
//       .Dport(53).Dnat(*ParseAddr("127.0.0.11"), 40053);
//
// Matches are ANDed in order. In an inet table, address matches add `meta nfproto ipv4|ipv6`
// automatically. Misuse (Dport before L4Proto, IPv6 address in an `ip` table) is a programming
// error and CHECK-fails; parse user input with ParsePrefix/ParseAddr, which return errors.
//
// Redirect note: in the OUTPUT hook the kernel redirects to 127.0.0.1 (nf_nat_redirect_ipv4), so
// a resolver bound to 127.0.0.11:<port> must be reached with Dnat(127.0.0.11, port) instead.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "kernel/nft/types.h"

namespace shoal::kernel::nft {

struct Addr {
  bool v6 = false;
  Datum bytes;  // 4 or 16 bytes, network order
  friend bool operator==(const Addr&, const Addr&) = default;
};
struct Prefix {
  Addr addr;  // host bits are cleared
  int len = 0;
  friend bool operator==(const Prefix&, const Prefix&) = default;
};
absl::StatusOr<Addr> ParseAddr(absl::string_view text);      // "10.0.0.1", "fd00::1"
absl::StatusOr<Prefix> ParsePrefix(absl::string_view text);  // "10.0.0.0/24"; no "/" = host

// Packet fields usable as (concatenated) lookup keys.
enum class Field : uint8_t {
  kSaddr4, kDaddr4, kSaddr6, kDaddr6,  // ip saddr/daddr, ip6 saddr/daddr
  kL4Proto,                            // meta l4proto
  kSport, kDport,                      // th sport/dport (needs a transport header)
  kIifname, kOifname, kMark,
};
FieldType FieldTypeOf(Field f);

// Registers as numbered by the kernel (enum nft_registers).
inline constexpr uint32_t kRegVerdict = 0, kReg1 = 1, kReg2 = 2, kReg32_00 = 8;

inline constexpr uint32_t kCtEstablished = 0x2, kCtRelated = 0x4, kCtNew = 0x8;
inline constexpr uint32_t kCtInvalid = 0x1;
inline constexpr uint32_t kCtStatusSnat = 0x10, kCtStatusDnat = 0x20;  // IPS_SRC_NAT/IPS_DST_NAT

class RuleBuilder {
 public:
  RuleBuilder(Family table_family, std::string chain);

  RuleBuilder& Comment(std::string comment);
  RuleBuilder& IifName(absl::string_view name, bool equal = true);
  RuleBuilder& OifName(absl::string_view name, bool equal = true);
  RuleBuilder& NfProto(bool v6);                        // meta nfproto ipv4|ipv6
  RuleBuilder& L4Proto(uint8_t proto);                  // meta l4proto tcp (6) / udp (17)
  RuleBuilder& Saddr(const Prefix& p, bool equal = true);  // ip saddr 10.0.0.0/24
  RuleBuilder& Daddr(const Prefix& p, bool equal = true);
  RuleBuilder& Sport(uint16_t port);                    // th sport N (after L4Proto)
  RuleBuilder& Dport(uint16_t port);                    // th dport N (after L4Proto)
  RuleBuilder& FibDaddrLocal();                         // fib daddr type local
  RuleBuilder& CtState(uint32_t mask);                  // ct state & mask != 0
  RuleBuilder& CtStatus(uint32_t mask);                 // ct status & mask != 0 (kCtStatusDnat)
  RuleBuilder& Mark(uint32_t mark);                     // meta mark == mark
  RuleBuilder& InSet(const std::vector<Field>& key, absl::string_view set, bool invert = false);
  RuleBuilder& Counter();

  // Terminal statements: return the finished rule.
  Rule Verdict(const nft::Verdict& v);
  Rule Masquerade(bool fully_random = false);
  Rule Snat(const Addr& to);
  Rule Dnat(const Addr& to, std::optional<uint16_t> port = std::nullopt);
  Rule Redirect(uint16_t port);
  // key vmap @map  (map key types must equal FieldTypeOf(key[i]))
  Rule Vmap(const std::vector<Field>& key, absl::string_view map);
  // numgen random mod n vmap @map   (map key: kInteger 0..n-1)
  Rule NumgenVmap(uint32_t n, absl::string_view map, bool incremental = false);
  // jhash key mod n seed s vmap @map (stable per flow; a Maglev lookup table fits here)
  Rule HashVmap(const std::vector<Field>& key, uint32_t n, uint32_t seed, absl::string_view map);
  // dnat to <key> [. slot] map @map — a typed map (data: kIpv4Addr . kInetService, or
  // kIpv6Addr . kInetService with v6) picks the backend directly, with no per-service chain.
  // `slot` appends `numgen random mod n` or `jhash <fields> mod n seed s` (field type
  // kInteger) to the key, so a service owns n slots (weights = slots per backend; a Maglev
  // table fits). Why: adding a service or backend is then only element adds with plain data,
  // which does not make the kernel re-validate the whole table; every rule or goto/jump element
  // added does (nf_tables_api.c: NFT_VALIDATE_NEED -> nft_table_validate walks all chains), so
  // the per-chain layout costs O(services) per change (see docs/benchmarks.md).
  struct Slot {
    enum Kind { kNone, kRandom, kHash } kind = kNone;
    uint32_t modulus = 0;
    std::vector<Field> hash_fields;
    uint32_t seed = 0;
  };
  Rule DnatMap(const std::vector<Field>& key, const Slot& slot, absl::string_view map,
               bool v6 = false);
  // meta mark set <key> map @map — a typed map with data kMark (fwmark services for IPVS).
  Rule MarkMap(const std::vector<Field>& key, absl::string_view map);
  // meta mark set <mark>
  Rule SetMark(uint32_t mark);
  // The rule as built so far with no statement (e.g. only a counter).
  Rule Build();

 private:
  // Loads `key` into consecutive 32-bit registers from NFT_REG32_00; returns total bytes.
  uint32_t LoadConcat(const std::vector<Field>& key, uint32_t start = kReg32_00);
  void LoadField(Field f, uint32_t reg);
  void MatchAddr(bool src, const Prefix& p, bool equal);
  void RequireFamily(bool v6);

  Family family_;
  Rule rule_;
  bool have_l4proto_ = false;
};


}  // namespace shoal::kernel::nft
