// Expression encoding follows the kernel's netlink attributes (include/uapi/linux/netfilter/
// nf_tables.h); decoding is the inverse, normalising attributes the kernel adds on dump (NAT
// flags MAP_IPS/PROTO_SPECIFIED, which it derives from the registers given).
#include "kernel/nft/expr_codec.h"

#include <libnftnl/expr.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_nat.h>
#include <linux/netfilter/nf_tables.h>

#include <string>

#include "kernel/nft/codec.h"

namespace shoal::kernel::nft::internal {
namespace {

template <class... Ts>
struct Overloaded : Ts... {
  using Ts::operator()...;
};
template <class... Ts>
Overloaded(Ts...) -> Overloaded<Ts...>;

uint32_t MetaKeyToKernel(MetaKey k) {
  switch (k) {
    case MetaKey::kL4Proto: return NFT_META_L4PROTO;
    case MetaKey::kNfProto: return NFT_META_NFPROTO;
    case MetaKey::kIifname: return NFT_META_IIFNAME;
    case MetaKey::kOifname: return NFT_META_OIFNAME;
    case MetaKey::kMark: return NFT_META_MARK;
    case MetaKey::kIif: return NFT_META_IIF;
    case MetaKey::kOif: return NFT_META_OIF;
  }
  return NFT_META_L4PROTO;
}

std::optional<MetaKey> MetaKeyFromKernel(uint32_t k) {
  switch (k) {
    case NFT_META_L4PROTO: return MetaKey::kL4Proto;
    case NFT_META_NFPROTO: return MetaKey::kNfProto;
    case NFT_META_IIFNAME: return MetaKey::kIifname;
    case NFT_META_OIFNAME: return MetaKey::kOifname;
    case NFT_META_MARK: return MetaKey::kMark;
    case NFT_META_IIF: return MetaKey::kIif;
    case NFT_META_OIF: return MetaKey::kOif;
    default: return std::nullopt;
  }
}

uint32_t CmpOpToKernel(CmpOp op) {
  switch (op) {
    case CmpOp::kEq: return NFT_CMP_EQ;
    case CmpOp::kNeq: return NFT_CMP_NEQ;
    case CmpOp::kLt: return NFT_CMP_LT;
    case CmpOp::kLte: return NFT_CMP_LTE;
    case CmpOp::kGt: return NFT_CMP_GT;
    case CmpOp::kGte: return NFT_CMP_GTE;
  }
  return NFT_CMP_EQ;
}

CmpOp CmpOpFromKernel(uint32_t op) {
  switch (op) {
    case NFT_CMP_NEQ: return CmpOp::kNeq;
    case NFT_CMP_LT: return CmpOp::kLt;
    case NFT_CMP_LTE: return CmpOp::kLte;
    case NFT_CMP_GT: return CmpOp::kGt;
    case NFT_CMP_GTE: return CmpOp::kGte;
    default: return CmpOp::kEq;
  }
}

int32_t VerdictToKernel(VerdictCode c) {
  switch (c) {
    case VerdictCode::kAccept: return NF_ACCEPT;
    case VerdictCode::kDrop: return NF_DROP;
    case VerdictCode::kReturn: return NFT_RETURN;
    case VerdictCode::kJump: return NFT_JUMP;
    case VerdictCode::kGoto: return NFT_GOTO;
    case VerdictCode::kContinue: return NFT_CONTINUE;
  }
  return NF_ACCEPT;
}

std::string Bytes(const nftnl_expr* e, uint16_t attr) {
  uint32_t len = 0;
  const void* p = nftnl_expr_get(e, attr, &len);
  if (p == nullptr) return "";
  return std::string(static_cast<const char*>(p), len);
}

void SetBytes(nftnl_expr* e, uint16_t attr, const std::string& b) {
  nftnl_expr_set(e, attr, b.data(), b.size());
}

}  // namespace

Verdict VerdictFromKernel(int32_t v, const char* chain) {
  switch (v) {
    case NF_DROP: return Drop();
    case NFT_RETURN: return Return();
    case NFT_JUMP: return Jump(chain ? chain : "");
    case NFT_GOTO: return Goto(chain ? chain : "");
    case NFT_CONTINUE: return Verdict{VerdictCode::kContinue, ""};
    default: return Accept();
  }
}

int32_t EncodeVerdict(const Verdict& v) { return VerdictToKernel(v.code); }

nftnl_expr* EncodeExpr(const Expr& expr) {
  return std::visit(
      Overloaded{
          [](const MetaExpr& m) {
            nftnl_expr* e = nftnl_expr_alloc("meta");
            nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, MetaKeyToKernel(m.key));
            nftnl_expr_set_u32(e, NFTNL_EXPR_META_DREG, m.dreg);
            return e;
          },
          [](const MetaSetExpr& m) {
            nftnl_expr* e = nftnl_expr_alloc("meta");
            nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, MetaKeyToKernel(m.key));
            nftnl_expr_set_u32(e, NFTNL_EXPR_META_SREG, m.sreg);
            return e;
          },
          [](const PayloadExpr& p) {
            nftnl_expr* e = nftnl_expr_alloc("payload");
            nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_BASE,
                               p.base == PayloadBase::kNetwork ? NFT_PAYLOAD_NETWORK_HEADER
                                                               : NFT_PAYLOAD_TRANSPORT_HEADER);
            nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_OFFSET, p.offset);
            nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_LEN, p.len);
            nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_DREG, p.dreg);
            return e;
          },
          [](const CmpExpr& c) {
            nftnl_expr* e = nftnl_expr_alloc("cmp");
            nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_SREG, c.sreg);
            nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_OP, CmpOpToKernel(c.op));
            SetBytes(e, NFTNL_EXPR_CMP_DATA, c.data);
            return e;
          },
          [](const BitwiseExpr& b) {
            nftnl_expr* e = nftnl_expr_alloc("bitwise");
            nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_SREG, b.sreg);
            nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_DREG, b.dreg);
            nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_LEN, b.len);
            SetBytes(e, NFTNL_EXPR_BITWISE_MASK, b.mask);
            SetBytes(e, NFTNL_EXPR_BITWISE_XOR, b.xor_);
            return e;
          },
          [](const LookupExpr& l) {
            nftnl_expr* e = nftnl_expr_alloc("lookup");
            nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SREG, l.sreg);
            if (l.dreg) nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_DREG, *l.dreg);
            nftnl_expr_set_str(e, NFTNL_EXPR_LOOKUP_SET, l.set.c_str());
            if (l.invert) nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_FLAGS, NFT_LOOKUP_F_INV);
            return e;
          },
          [](const ImmediateExpr& i) {
            nftnl_expr* e = nftnl_expr_alloc("immediate");
            nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, i.dreg);
            if (i.verdict) {
              nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_VERDICT, EncodeVerdict(*i.verdict));
              if (!i.verdict->chain.empty()) {
                nftnl_expr_set_str(e, NFTNL_EXPR_IMM_CHAIN, i.verdict->chain.c_str());
              }
            } else {
              SetBytes(e, NFTNL_EXPR_IMM_DATA, i.data);
            }
            return e;
          },
          [](const NatExpr& n) {
            nftnl_expr* e = nftnl_expr_alloc("nat");
            nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_TYPE,
                               n.type == NatType::kSnat ? NFT_NAT_SNAT : NFT_NAT_DNAT);
            nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_FAMILY, NfProtoOf(n.family));
            if (n.reg_addr) nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_REG_ADDR_MIN, *n.reg_addr);
            if (n.reg_proto) nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_REG_PROTO_MIN, *n.reg_proto);
            uint32_t flags = (n.persistent ? NF_NAT_RANGE_PERSISTENT : 0) |
                             (n.random ? NF_NAT_RANGE_PROTO_RANDOM : 0) |
                             (n.fully_random ? NF_NAT_RANGE_PROTO_RANDOM_FULLY : 0);
            if (flags) nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_FLAGS, flags);
            return e;
          },
          [](const MasqExpr& m) {
            nftnl_expr* e = nftnl_expr_alloc("masq");
            if (m.fully_random) {
              nftnl_expr_set_u32(e, NFTNL_EXPR_MASQ_FLAGS, NF_NAT_RANGE_PROTO_RANDOM_FULLY);
            }
            return e;
          },
          [](const RedirExpr& r) {
            nftnl_expr* e = nftnl_expr_alloc("redir");
            if (r.reg_proto) nftnl_expr_set_u32(e, NFTNL_EXPR_REDIR_REG_PROTO_MIN, *r.reg_proto);
            return e;
          },
          [](const NumgenExpr& n) {
            nftnl_expr* e = nftnl_expr_alloc("numgen");
            nftnl_expr_set_u32(e, NFTNL_EXPR_NG_DREG, n.dreg);
            nftnl_expr_set_u32(e, NFTNL_EXPR_NG_MODULUS, n.modulus);
            nftnl_expr_set_u32(e, NFTNL_EXPR_NG_TYPE, n.incremental ? NFT_NG_INCREMENTAL
                                                                    : NFT_NG_RANDOM);
            return e;
          },
          [](const HashExpr& h) {
            nftnl_expr* e = nftnl_expr_alloc("hash");
            nftnl_expr_set_u32(e, NFTNL_EXPR_HASH_SREG, h.sreg);
            nftnl_expr_set_u32(e, NFTNL_EXPR_HASH_DREG, h.dreg);
            nftnl_expr_set_u32(e, NFTNL_EXPR_HASH_LEN, h.len);
            nftnl_expr_set_u32(e, NFTNL_EXPR_HASH_MODULUS, h.modulus);
            nftnl_expr_set_u32(e, NFTNL_EXPR_HASH_SEED, h.seed);
            nftnl_expr_set_u32(e, NFTNL_EXPR_HASH_TYPE, NFT_HASH_JENKINS);
            return e;
          },
          [](const FibExpr& f) {
            nftnl_expr* e = nftnl_expr_alloc("fib");
            nftnl_expr_set_u32(e, NFTNL_EXPR_FIB_DREG, f.dreg);
            nftnl_expr_set_u32(e, NFTNL_EXPR_FIB_RESULT, NFT_FIB_RESULT_ADDRTYPE);
            nftnl_expr_set_u32(e, NFTNL_EXPR_FIB_FLAGS, NFTA_FIB_F_DADDR);
            return e;
          },
          [](const CtStateExpr& c) {
            nftnl_expr* e = nftnl_expr_alloc("ct");
            nftnl_expr_set_u32(e, NFTNL_EXPR_CT_DREG, c.dreg);
            nftnl_expr_set_u32(e, NFTNL_EXPR_CT_KEY, c.status ? NFT_CT_STATUS : NFT_CT_STATE);
            return e;
          },
          [](const CounterExpr&) { return nftnl_expr_alloc("counter"); },
          [](const OtherExpr&) -> nftnl_expr* { return nullptr; },
      },
      expr);
}

Expr DecodeExpr(const nftnl_expr* e) {
  std::string name = nftnl_expr_get_str(e, NFTNL_EXPR_NAME);
  auto u32 = [e](uint16_t a) { return nftnl_expr_get_u32(e, a); };
  auto has = [e](uint16_t a) { return nftnl_expr_is_set(e, a); };
  if (name == "meta" && has(NFTNL_EXPR_META_DREG)) {
    if (auto k = MetaKeyFromKernel(u32(NFTNL_EXPR_META_KEY))) {
      return MetaExpr{*k, u32(NFTNL_EXPR_META_DREG)};
    }
  } else if (name == "meta" && has(NFTNL_EXPR_META_SREG)) {
    if (auto k = MetaKeyFromKernel(u32(NFTNL_EXPR_META_KEY))) {
      return MetaSetExpr{*k, u32(NFTNL_EXPR_META_SREG)};
    }
  } else if (name == "payload" && has(NFTNL_EXPR_PAYLOAD_DREG)) {
    uint32_t base = u32(NFTNL_EXPR_PAYLOAD_BASE);
    if (base == NFT_PAYLOAD_NETWORK_HEADER || base == NFT_PAYLOAD_TRANSPORT_HEADER) {
      return PayloadExpr{base == NFT_PAYLOAD_NETWORK_HEADER ? PayloadBase::kNetwork
                                                            : PayloadBase::kTransport,
                         u32(NFTNL_EXPR_PAYLOAD_OFFSET), u32(NFTNL_EXPR_PAYLOAD_LEN),
                         u32(NFTNL_EXPR_PAYLOAD_DREG)};
    }
  } else if (name == "cmp") {
    return CmpExpr{u32(NFTNL_EXPR_CMP_SREG), CmpOpFromKernel(u32(NFTNL_EXPR_CMP_OP)),
                   Bytes(e, NFTNL_EXPR_CMP_DATA)};
  } else if (name == "bitwise" && has(NFTNL_EXPR_BITWISE_MASK)) {
    return BitwiseExpr{u32(NFTNL_EXPR_BITWISE_SREG), u32(NFTNL_EXPR_BITWISE_DREG),
                       u32(NFTNL_EXPR_BITWISE_LEN), Bytes(e, NFTNL_EXPR_BITWISE_MASK),
                       Bytes(e, NFTNL_EXPR_BITWISE_XOR)};
  } else if (name == "lookup") {
    LookupExpr l{u32(NFTNL_EXPR_LOOKUP_SREG), std::nullopt,
                 nftnl_expr_get_str(e, NFTNL_EXPR_LOOKUP_SET), false};
    if (has(NFTNL_EXPR_LOOKUP_DREG)) l.dreg = u32(NFTNL_EXPR_LOOKUP_DREG);
    l.invert = has(NFTNL_EXPR_LOOKUP_FLAGS) && (u32(NFTNL_EXPR_LOOKUP_FLAGS) & NFT_LOOKUP_F_INV);
    return l;
  } else if (name == "immediate") {
    ImmediateExpr i{u32(NFTNL_EXPR_IMM_DREG), "", std::nullopt};
    if (has(NFTNL_EXPR_IMM_VERDICT)) {
      const char* chain =
          has(NFTNL_EXPR_IMM_CHAIN) ? nftnl_expr_get_str(e, NFTNL_EXPR_IMM_CHAIN) : nullptr;
      i.verdict = VerdictFromKernel(static_cast<int32_t>(u32(NFTNL_EXPR_IMM_VERDICT)), chain);
    } else {
      i.data = Bytes(e, NFTNL_EXPR_IMM_DATA);
    }
    return i;
  } else if (name == "nat") {
    NatExpr n{u32(NFTNL_EXPR_NAT_TYPE) == NFT_NAT_SNAT ? NatType::kSnat : NatType::kDnat,
              FamilyFromNfProto(u32(NFTNL_EXPR_NAT_FAMILY)).value_or(Family::kIp),
              std::nullopt, std::nullopt};
    if (has(NFTNL_EXPR_NAT_REG_ADDR_MIN)) n.reg_addr = u32(NFTNL_EXPR_NAT_REG_ADDR_MIN);
    if (has(NFTNL_EXPR_NAT_REG_PROTO_MIN)) n.reg_proto = u32(NFTNL_EXPR_NAT_REG_PROTO_MIN);
    uint32_t flags = has(NFTNL_EXPR_NAT_FLAGS) ? u32(NFTNL_EXPR_NAT_FLAGS) : 0;
    n.persistent = flags & NF_NAT_RANGE_PERSISTENT;
    n.random = flags & NF_NAT_RANGE_PROTO_RANDOM;
    n.fully_random = flags & NF_NAT_RANGE_PROTO_RANDOM_FULLY;
    return n;
  } else if (name == "masq") {
    uint32_t flags = has(NFTNL_EXPR_MASQ_FLAGS) ? u32(NFTNL_EXPR_MASQ_FLAGS) : 0;
    return MasqExpr{(flags & NF_NAT_RANGE_PROTO_RANDOM_FULLY) != 0};
  } else if (name == "redir") {
    RedirExpr r;
    if (has(NFTNL_EXPR_REDIR_REG_PROTO_MIN)) r.reg_proto = u32(NFTNL_EXPR_REDIR_REG_PROTO_MIN);
    return r;
  } else if (name == "numgen") {
    return NumgenExpr{u32(NFTNL_EXPR_NG_DREG), u32(NFTNL_EXPR_NG_MODULUS),
                      u32(NFTNL_EXPR_NG_TYPE) == NFT_NG_INCREMENTAL};
  } else if (name == "hash" && u32(NFTNL_EXPR_HASH_TYPE) == NFT_HASH_JENKINS) {
    return HashExpr{u32(NFTNL_EXPR_HASH_SREG), u32(NFTNL_EXPR_HASH_DREG),
                    u32(NFTNL_EXPR_HASH_LEN), u32(NFTNL_EXPR_HASH_MODULUS),
                    u32(NFTNL_EXPR_HASH_SEED)};
  } else if (name == "fib" && u32(NFTNL_EXPR_FIB_RESULT) == NFT_FIB_RESULT_ADDRTYPE &&
             u32(NFTNL_EXPR_FIB_FLAGS) == NFTA_FIB_F_DADDR) {
    return FibExpr{u32(NFTNL_EXPR_FIB_DREG)};
  } else if (name == "ct" && has(NFTNL_EXPR_CT_DREG) &&
             (u32(NFTNL_EXPR_CT_KEY) == NFT_CT_STATE || u32(NFTNL_EXPR_CT_KEY) == NFT_CT_STATUS)) {
    return CtStateExpr{u32(NFTNL_EXPR_CT_DREG), u32(NFTNL_EXPR_CT_KEY) == NFT_CT_STATUS};
  } else if (name == "counter") {
    return CounterExpr{nftnl_expr_get_u64(e, NFTNL_EXPR_CTR_PACKETS),
                       nftnl_expr_get_u64(e, NFTNL_EXPR_CTR_BYTES)};
  }
  return OtherExpr{name};
}

}  // namespace shoal::kernel::nft::internal
