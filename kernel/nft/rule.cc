// RuleBuilder: each method emits the expressions nft 1.0.x generates for the same phrase
// (checked with `nft --debug=netlink`), so rules list back readably with `nft list ruleset`.
#include "kernel/nft/rule.h"

#include <arpa/inet.h>
#include <linux/netfilter.h>
#include <netinet/in.h>

#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/check.h"

namespace shoal::kernel::nft {

absl::StatusOr<Addr> ParseAddr(absl::string_view text) {
  if (auto d = ParseDatum(FieldType::kIpv4Addr, text)) return Addr{false, *d};
  if (auto d = ParseDatum(FieldType::kIpv6Addr, text)) return Addr{true, *d};
  return absl::InvalidArgumentError(
      absl::StrCat("address \"", std::string(text), "\": not an IPv4 or IPv6 address"));
}

absl::StatusOr<Prefix> ParsePrefix(absl::string_view text) {
  std::vector<std::string> parts = absl::StrSplit(text, absl::MaxSplits('/', 1));
  auto addr = ParseAddr(parts[0]);
  if (!addr.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("prefix \"", std::string(text), "\": not an IPv4 or IPv6 address"));
  }
  int max = addr->v6 ? 128 : 32;
  int len = max;
  if (parts.size() == 2 && (!absl::SimpleAtoi(parts[1], &len) || len < 0 || len > max)) {
    return absl::InvalidArgumentError(absl::StrCat("prefix \"", std::string(text),
                                                   "\": length must be 0..", max));
  }
  Prefix p{*addr, len};
  std::string& b = p.addr.bytes.bytes;
  for (int i = 0; i < max / 8; ++i) {
    int bits = std::min(8, std::max(0, len - i * 8));
    b[i] = static_cast<char>(static_cast<uint8_t>(b[i]) & static_cast<uint8_t>(0xff00 >> bits));
  }
  return p;
}

FieldType FieldTypeOf(Field f) {
  switch (f) {
    case Field::kSaddr4:
    case Field::kDaddr4: return FieldType::kIpv4Addr;
    case Field::kSaddr6:
    case Field::kDaddr6: return FieldType::kIpv6Addr;
    case Field::kL4Proto: return FieldType::kInetProto;
    case Field::kSport:
    case Field::kDport: return FieldType::kInetService;
    case Field::kIifname:
    case Field::kOifname: return FieldType::kIfname;
    case Field::kMark: return FieldType::kMark;
  }
  return FieldType::kInteger;
}

RuleBuilder::RuleBuilder(Family table_family, std::string chain) : family_(table_family) {
  rule_.chain = std::move(chain);
}

RuleBuilder& RuleBuilder::Comment(std::string comment) {
  rule_.comment = std::move(comment);
  return *this;
}

RuleBuilder& RuleBuilder::IifName(absl::string_view name, bool equal) {
  rule_.exprs.push_back(MetaExpr{MetaKey::kIifname, kReg1});
  rule_.exprs.push_back(CmpExpr{kReg1, equal ? CmpOp::kEq : CmpOp::kNeq, Ifname(name).bytes});
  return *this;
}

RuleBuilder& RuleBuilder::OifName(absl::string_view name, bool equal) {
  rule_.exprs.push_back(MetaExpr{MetaKey::kOifname, kReg1});
  rule_.exprs.push_back(CmpExpr{kReg1, equal ? CmpOp::kEq : CmpOp::kNeq, Ifname(name).bytes});
  return *this;
}

RuleBuilder& RuleBuilder::NfProto(bool v6) {
  rule_.exprs.push_back(MetaExpr{MetaKey::kNfProto, kReg1});
  rule_.exprs.push_back(
      CmpExpr{kReg1, CmpOp::kEq, std::string(1, static_cast<char>(v6 ? NFPROTO_IPV6 : NFPROTO_IPV4))});
  return *this;
}

void RuleBuilder::RequireFamily(bool v6) {
  if (family_ == Family::kInet) {
    NfProto(v6);
    return;
  }
  CHECK((family_ == Family::kIp6) == v6)
      << "IPv" << (v6 ? 6 : 4) << " match in an " << std::string(FamilyName(family_)) << " table";
}

RuleBuilder& RuleBuilder::L4Proto(uint8_t proto) {
  rule_.exprs.push_back(MetaExpr{MetaKey::kL4Proto, kReg1});
  rule_.exprs.push_back(CmpExpr{kReg1, CmpOp::kEq, Proto(proto).bytes});
  have_l4proto_ = true;
  return *this;
}

void RuleBuilder::MatchAddr(bool src, const Prefix& p, bool equal) {
  RequireFamily(p.addr.v6);
  uint32_t len = p.addr.v6 ? 16 : 4;
  uint32_t off = p.addr.v6 ? (src ? 8 : 24) : (src ? 12 : 16);
  rule_.exprs.push_back(PayloadExpr{PayloadBase::kNetwork, off, len, kReg1});
  if (p.len < static_cast<int>(len * 8)) {
    std::string mask(len, '\0');
    for (uint32_t i = 0; i < len; ++i) {
      int bits = std::min(8, std::max(0, p.len - static_cast<int>(i) * 8));
      mask[i] = static_cast<char>(0xff00 >> bits);
    }
    rule_.exprs.push_back(BitwiseExpr{kReg1, kReg1, len, mask, std::string(len, '\0')});
  }
  rule_.exprs.push_back(CmpExpr{kReg1, equal ? CmpOp::kEq : CmpOp::kNeq, p.addr.bytes.bytes});
}

RuleBuilder& RuleBuilder::Saddr(const Prefix& p, bool equal) {
  MatchAddr(true, p, equal);
  return *this;
}

RuleBuilder& RuleBuilder::Daddr(const Prefix& p, bool equal) {
  MatchAddr(false, p, equal);
  return *this;
}

RuleBuilder& RuleBuilder::Sport(uint16_t port) {
  CHECK(have_l4proto_) << "Sport() needs L4Proto() first (rule in chain " << rule_.chain << ")";
  rule_.exprs.push_back(PayloadExpr{PayloadBase::kTransport, 0, 2, kReg1});
  rule_.exprs.push_back(CmpExpr{kReg1, CmpOp::kEq, nft::Port(port).bytes});
  return *this;
}

RuleBuilder& RuleBuilder::Dport(uint16_t port) {
  CHECK(have_l4proto_) << "Dport() needs L4Proto() first (rule in chain " << rule_.chain << ")";
  rule_.exprs.push_back(PayloadExpr{PayloadBase::kTransport, 2, 2, kReg1});
  rule_.exprs.push_back(CmpExpr{kReg1, CmpOp::kEq, nft::Port(port).bytes});
  return *this;
}

RuleBuilder& RuleBuilder::FibDaddrLocal() {
  rule_.exprs.push_back(FibExpr{kReg1});
  rule_.exprs.push_back(CmpExpr{kReg1, CmpOp::kEq, U32(2 /* RTN_LOCAL */).bytes});
  return *this;
}

RuleBuilder& RuleBuilder::CtState(uint32_t mask) {
  rule_.exprs.push_back(CtStateExpr{kReg1});
  rule_.exprs.push_back(BitwiseExpr{kReg1, kReg1, 4, U32(mask).bytes, std::string(4, '\0')});
  rule_.exprs.push_back(CmpExpr{kReg1, CmpOp::kNeq, std::string(4, '\0')});
  return *this;
}

RuleBuilder& RuleBuilder::CtStatus(uint32_t mask) {
  rule_.exprs.push_back(CtStateExpr{kReg1, true});
  rule_.exprs.push_back(BitwiseExpr{kReg1, kReg1, 4, U32(mask).bytes, std::string(4, '\0')});
  rule_.exprs.push_back(CmpExpr{kReg1, CmpOp::kNeq, std::string(4, '\0')});
  return *this;
}

RuleBuilder& RuleBuilder::Mark(uint32_t mark) {
  rule_.exprs.push_back(MetaExpr{MetaKey::kMark, kReg1});
  rule_.exprs.push_back(CmpExpr{kReg1, CmpOp::kEq, U32(mark).bytes});
  return *this;
}

void RuleBuilder::LoadField(Field f, uint32_t reg) {
  switch (f) {
    case Field::kSaddr4: rule_.exprs.push_back(PayloadExpr{PayloadBase::kNetwork, 12, 4, reg}); break;
    case Field::kDaddr4: rule_.exprs.push_back(PayloadExpr{PayloadBase::kNetwork, 16, 4, reg}); break;
    case Field::kSaddr6: rule_.exprs.push_back(PayloadExpr{PayloadBase::kNetwork, 8, 16, reg}); break;
    case Field::kDaddr6: rule_.exprs.push_back(PayloadExpr{PayloadBase::kNetwork, 24, 16, reg}); break;
    case Field::kL4Proto: rule_.exprs.push_back(MetaExpr{MetaKey::kL4Proto, reg}); break;
    case Field::kSport: rule_.exprs.push_back(PayloadExpr{PayloadBase::kTransport, 0, 2, reg}); break;
    case Field::kDport: rule_.exprs.push_back(PayloadExpr{PayloadBase::kTransport, 2, 2, reg}); break;
    case Field::kIifname: rule_.exprs.push_back(MetaExpr{MetaKey::kIifname, reg}); break;
    case Field::kOifname: rule_.exprs.push_back(MetaExpr{MetaKey::kOifname, reg}); break;
    case Field::kMark: rule_.exprs.push_back(MetaExpr{MetaKey::kMark, reg}); break;
  }
}

namespace {
// The kernel dumps a 32-bit register that starts a 16-byte register under the legacy number
// (nft_dump_register: NFT_REG32_00 -> NFT_REG_1, NFT_REG32_04 -> NFT_REG_2, ...); emit that
// canonical form so desired rules compare equal to dumped ones.
uint32_t CanonReg(uint32_t r) {
  if (r >= kReg32_00 && (r - kReg32_00) % 4 == 0) return kReg1 + (r - kReg32_00) / 4;
  return r;
}
}  // namespace

uint32_t RuleBuilder::LoadConcat(const std::vector<Field>& key, uint32_t start) {
  CHECK(!key.empty()) << "empty lookup key";
  // Address fields need the network protocol checked first (nft adds this dependency too).
  for (Field f : key) {
    if (f == Field::kSaddr4 || f == Field::kDaddr4) { RequireFamily(false); break; }
    if (f == Field::kSaddr6 || f == Field::kDaddr6) { RequireFamily(true); break; }
  }
  uint32_t reg = start, total = 0;
  for (Field f : key) {
    LoadField(f, CanonReg(reg));
    uint32_t padded = (FieldLen(FieldTypeOf(f)) + 3) / 4 * 4;
    reg += padded / 4;
    total += padded;
  }
  CHECK(reg <= kReg32_00 + 16) << "key longer than the 64 bytes of registers";
  return total;
}

RuleBuilder& RuleBuilder::InSet(const std::vector<Field>& key, absl::string_view set,
                                bool invert) {
  LoadConcat(key);
  rule_.exprs.push_back(LookupExpr{kReg1, std::nullopt, std::string(set), invert});
  return *this;
}

RuleBuilder& RuleBuilder::Counter() {
  rule_.exprs.push_back(CounterExpr{});
  return *this;
}

Rule RuleBuilder::Build() { return rule_; }

Rule RuleBuilder::Verdict(const nft::Verdict& v) {
  rule_.exprs.push_back(ImmediateExpr{kRegVerdict, "", v});
  return rule_;
}

Rule RuleBuilder::Masquerade(bool fully_random) {
  rule_.exprs.push_back(MasqExpr{fully_random});
  return rule_;
}

Rule RuleBuilder::Snat(const Addr& to) {
  rule_.exprs.push_back(ImmediateExpr{kReg1, to.bytes.bytes, std::nullopt});
  rule_.exprs.push_back(NatExpr{NatType::kSnat, to.v6 ? Family::kIp6 : Family::kIp, kReg1,
                                std::nullopt});
  return rule_;
}

Rule RuleBuilder::Dnat(const Addr& to, std::optional<uint16_t> port) {
  if (family_ != Family::kInet) {
    CHECK((family_ == Family::kIp6) == to.v6) << "dnat address family differs from the table's";
  }
  rule_.exprs.push_back(ImmediateExpr{kReg1, to.bytes.bytes, std::nullopt});
  NatExpr nat{NatType::kDnat, to.v6 ? Family::kIp6 : Family::kIp, kReg1, std::nullopt};
  if (port) {
    rule_.exprs.push_back(ImmediateExpr{kReg2, nft::Port(*port).bytes, std::nullopt});
    nat.reg_proto = kReg2;
  }
  rule_.exprs.push_back(nat);
  return rule_;
}

Rule RuleBuilder::Redirect(uint16_t port) {
  rule_.exprs.push_back(ImmediateExpr{kReg1, nft::Port(port).bytes, std::nullopt});
  rule_.exprs.push_back(RedirExpr{kReg1});
  return rule_;
}

Rule RuleBuilder::Vmap(const std::vector<Field>& key, absl::string_view map) {
  LoadConcat(key);
  rule_.exprs.push_back(LookupExpr{kReg1, kRegVerdict, std::string(map), false});
  return rule_;
}

Rule RuleBuilder::NumgenVmap(uint32_t n, absl::string_view map, bool incremental) {
  CHECK(n > 0) << "numgen modulus must be > 0";
  rule_.exprs.push_back(NumgenExpr{kReg1, n, incremental});
  rule_.exprs.push_back(LookupExpr{kReg1, kRegVerdict, std::string(map), false});
  return rule_;
}

Rule RuleBuilder::HashVmap(const std::vector<Field>& key, uint32_t n, uint32_t seed,
                           absl::string_view map) {
  CHECK(n > 0) << "jhash modulus must be > 0";
  uint32_t len = LoadConcat(key);
  rule_.exprs.push_back(HashExpr{kReg1, kReg1, len, n, seed});
  rule_.exprs.push_back(LookupExpr{kReg1, kRegVerdict, std::string(map), false});
  return rule_;
}

Rule RuleBuilder::DnatMap(const std::vector<Field>& key, const Slot& slot, absl::string_view map,
                          bool v6) {
  uint32_t key_bytes = LoadConcat(key);
  uint32_t next = kReg32_00 + key_bytes / 4;
  if (slot.kind == Slot::kRandom) {
    CHECK(slot.modulus > 0) << "slot modulus must be > 0";
    rule_.exprs.push_back(NumgenExpr{CanonReg(next), slot.modulus, false});
    key_bytes += 4;
  } else if (slot.kind == Slot::kHash) {
    CHECK(slot.modulus > 0 && !slot.hash_fields.empty()) << "hash slot needs fields and modulus";
    // Hash input goes after the slot register; the result lands in the slot register.
    uint32_t len = LoadConcat(slot.hash_fields, next + 1);
    rule_.exprs.push_back(HashExpr{CanonReg(next + 1), CanonReg(next), len, slot.modulus, slot.seed});
    key_bytes += 4;
  }
  CHECK(key_bytes <= 64) << "map key longer than 64 bytes";
  // The map's data (address . port) is written from register 1 on: the address in 1 (4 or 16
  // bytes), the port in the following 32-bit register.
  rule_.exprs.push_back(LookupExpr{kReg1, kReg1, std::string(map), false});
  uint32_t port_reg = CanonReg(kReg32_00 + (v6 ? 4 : 1));
  rule_.exprs.push_back(NatExpr{NatType::kDnat, v6 ? Family::kIp6 : Family::kIp, kReg1, port_reg});
  return rule_;
}

Rule RuleBuilder::MarkMap(const std::vector<Field>& key, absl::string_view map) {
  uint32_t key_bytes = LoadConcat(key);
  CHECK(key_bytes <= 64) << "map key longer than 64 bytes";
  rule_.exprs.push_back(LookupExpr{kReg1, kReg1, std::string(map), false});
  rule_.exprs.push_back(MetaSetExpr{MetaKey::kMark, kReg1});
  return rule_;
}

Rule RuleBuilder::SetMark(uint32_t mark) {
  rule_.exprs.push_back(ImmediateExpr{kReg1, U32(mark).bytes, std::nullopt});
  rule_.exprs.push_back(MetaSetExpr{MetaKey::kMark, kReg1});
  return rule_;
}

}  // namespace shoal::kernel::nft
