// Object and message encoding for the netlink adapter. Set key/data types use nft's datatype
// ids (nftables include/datatype.h; concatenations are ids shifted by 6 bits per field) so
// `nft list ruleset` prints our sets with their real types.
#include "kernel/nft/codec.h"

#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/common.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>
#include <libnftnl/udata.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "kernel/nft/expr_codec.h"

namespace shoal::kernel::nft::internal {

namespace {
constexpr size_t kMsgScratch = 1 << 20;   // one message never exceeds this
constexpr size_t kElemsPerMsg = 1024;     // element lists are split to stay well below it
}  // namespace

constexpr uint32_t kTypeBits = 6;

uint32_t DatatypeId(FieldType t) {
  switch (t) {
    case FieldType::kIpv4Addr: return 7;      // TYPE_IPADDR
    case FieldType::kIpv6Addr: return 8;      // TYPE_IP6ADDR
    case FieldType::kInetProto: return 12;    // TYPE_INET_PROTOCOL
    case FieldType::kInetService: return 13;  // TYPE_INET_SERVICE
    case FieldType::kMark: return 19;         // TYPE_MARK
    case FieldType::kInteger: return 4;       // TYPE_INTEGER
    case FieldType::kIfname: return 41;       // TYPE_IFNAME
  }
  return 4;
}

std::optional<FieldType> FieldFromDatatype(uint32_t id) {
  switch (id) {
    case 7: return FieldType::kIpv4Addr;
    case 8: return FieldType::kIpv6Addr;
    case 12: return FieldType::kInetProto;
    case 13: return FieldType::kInetService;
    case 19: return FieldType::kMark;
    case 4: return FieldType::kInteger;
    case 41: return FieldType::kIfname;
    default: return std::nullopt;
  }
}

uint32_t ConcatType(const std::vector<FieldType>& f) {
  uint32_t t = 0;
  for (FieldType x : f) t = (t << kTypeBits) | DatatypeId(x);
  return t;
}

std::vector<FieldType> SplitConcatType(uint32_t t, uint32_t len) {
  std::vector<FieldType> out;
  while (t != 0) {
    auto f = FieldFromDatatype(t & ((1u << kTypeBits) - 1));
    out.insert(out.begin(), f.value_or(FieldType::kInteger));
    t >>= kTypeBits;
  }
  if (out.empty() && len > 0) out.push_back(FieldType::kInteger);
  return out;
}

// Single fields are stored unpadded; each field of a concatenation is padded to 4 bytes.
uint32_t KeyLen(const std::vector<FieldType>& f) {
  if (f.size() == 1) return FieldLen(f[0]);
  uint32_t n = 0;
  for (FieldType x : f) n += (FieldLen(x) + 3) / 4 * 4;
  return n;
}

std::string PackKey(const std::vector<Datum>& key) {
  if (key.size() == 1) return key[0].bytes;
  std::string out;
  for (const Datum& d : key) {
    out += d.bytes;
    out.append((4 - d.bytes.size() % 4) % 4, '\0');
  }
  return out;
}

std::vector<Datum> UnpackKey(const std::string& b, const std::vector<FieldType>& types) {
  if (types.size() == 1) return {Datum{b}};
  std::vector<Datum> out;
  size_t off = 0;
  for (FieldType t : types) {
    size_t len = FieldLen(t);
    out.push_back(Datum{off + len <= b.size() ? b.substr(off, len) : ""});
    off += (len + 3) / 4 * 4;
  }
  return out;
}

namespace {


uint32_t HookToKernel(Hook h) {
  switch (h) {
    case Hook::kPrerouting: return NF_INET_PRE_ROUTING;
    case Hook::kInput: return NF_INET_LOCAL_IN;
    case Hook::kForward: return NF_INET_FORWARD;
    case Hook::kOutput: return NF_INET_LOCAL_OUT;
    case Hook::kPostrouting: return NF_INET_POST_ROUTING;
  }
  return NF_INET_LOCAL_IN;
}

const char* ChainTypeName(ChainType t) {
  switch (t) {
    case ChainType::kFilter: return "filter";
    case ChainType::kNat: return "nat";
    case ChainType::kRoute: return "route";
  }
  return "filter";
}

TablePtr MakeTable(const TableRef& t) {
  TablePtr p(nftnl_table_alloc());
  nftnl_table_set_u32(p.get(), NFTNL_TABLE_FAMILY, NfProtoOf(t.family));
  nftnl_table_set_str(p.get(), NFTNL_TABLE_NAME, t.name.c_str());
  return p;
}

ChainPtr MakeChain(const TableRef& t, const Chain& c) {
  ChainPtr p(nftnl_chain_alloc());
  nftnl_chain_set_u32(p.get(), NFTNL_CHAIN_FAMILY, NfProtoOf(t.family));
  nftnl_chain_set_str(p.get(), NFTNL_CHAIN_TABLE, t.name.c_str());
  nftnl_chain_set_str(p.get(), NFTNL_CHAIN_NAME, c.name.c_str());
  if (c.base) {
    nftnl_chain_set_u32(p.get(), NFTNL_CHAIN_HOOKNUM, HookToKernel(c.base->hook));
    nftnl_chain_set_s32(p.get(), NFTNL_CHAIN_PRIO, c.base->priority);
    nftnl_chain_set_str(p.get(), NFTNL_CHAIN_TYPE, ChainTypeName(c.base->type));
    nftnl_chain_set_u32(p.get(), NFTNL_CHAIN_POLICY, c.base->policy_drop ? NF_DROP : NF_ACCEPT);
  }
  return p;
}

SetPtr MakeSet(const TableRef& t, const Set& s, bool shape) {
  SetPtr p(nftnl_set_alloc());
  nftnl_set_set_u32(p.get(), NFTNL_SET_FAMILY, NfProtoOf(t.family));
  nftnl_set_set_str(p.get(), NFTNL_SET_TABLE, t.name.c_str());
  nftnl_set_set_str(p.get(), NFTNL_SET_NAME, s.name.c_str());
  if (!shape) return p;
  uint32_t flags = 0;
  if (s.verdict_map || !s.data.empty()) flags |= NFT_SET_MAP;
  // Field lengths of a concatenation go with NFT_SET_CONCAT (kernels >= 6.x reject one
  // without the other).
  if (s.key.size() > 1) flags |= NFT_SET_CONCAT;
  nftnl_set_set_u32(p.get(), NFTNL_SET_FLAGS, flags);
  nftnl_set_set_u32(p.get(), NFTNL_SET_KEY_TYPE, ConcatType(s.key));
  nftnl_set_set_u32(p.get(), NFTNL_SET_KEY_LEN, KeyLen(s.key));
  if (s.key.size() > 1) {
    uint8_t lens[NFT_REG32_COUNT] = {};
    for (size_t i = 0; i < s.key.size() && i < NFT_REG32_COUNT; ++i) lens[i] = FieldLen(s.key[i]);
    nftnl_set_set_data(p.get(), NFTNL_SET_DESC_CONCAT, lens, s.key.size());
  }
  if (s.verdict_map) {
    nftnl_set_set_u32(p.get(), NFTNL_SET_DATA_TYPE, NFT_DATA_VERDICT);
    nftnl_set_set_u32(p.get(), NFTNL_SET_DATA_LEN, 0);
  } else if (!s.data.empty()) {
    nftnl_set_set_u32(p.get(), NFTNL_SET_DATA_TYPE, ConcatType(s.data));
    nftnl_set_set_u32(p.get(), NFTNL_SET_DATA_LEN, KeyLen(s.data));
  }
  return p;
}

void AddElems(nftnl_set* set, const std::vector<Element>& elems, size_t from, size_t to,
              bool with_data) {
  for (size_t i = from; i < to; ++i) {
    const Element& el = elems[i];
    nftnl_set_elem* e = nftnl_set_elem_alloc();
    std::string key = PackKey(el.key);
    nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY, key.data(), key.size());
    if (with_data && el.verdict) {
      nftnl_set_elem_set_u32(e, NFTNL_SET_ELEM_VERDICT, EncodeVerdict(*el.verdict));
      if (!el.verdict->chain.empty()) {
        nftnl_set_elem_set_str(e, NFTNL_SET_ELEM_CHAIN, el.verdict->chain.c_str());
      }
    } else if (with_data && !el.data.empty()) {
      std::string data = PackKey(el.data);
      nftnl_set_elem_set(e, NFTNL_SET_ELEM_DATA, data.data(), data.size());
    }
    nftnl_set_elem_add(set, e);
  }
}

RulePtr MakeRule(const TableRef& t, const Rule& r, bool with_body) {
  RulePtr p(nftnl_rule_alloc());
  nftnl_rule_set_u32(p.get(), NFTNL_RULE_FAMILY, NfProtoOf(t.family));
  nftnl_rule_set_str(p.get(), NFTNL_RULE_TABLE, t.name.c_str());
  nftnl_rule_set_str(p.get(), NFTNL_RULE_CHAIN, r.chain.c_str());
  if (!with_body) {
    nftnl_rule_set_u64(p.get(), NFTNL_RULE_HANDLE, r.handle);
    return p;
  }
  for (const Expr& e : r.exprs) {
    if (nftnl_expr* x = EncodeExpr(e)) nftnl_rule_add_expr(p.get(), x);
  }
  if (!r.comment.empty()) {
    nftnl_udata_buf* ud = nftnl_udata_buf_alloc(NFT_USERDATA_MAXLEN);
    nftnl_udata_put_strz(ud, NFTNL_UDATA_RULE_COMMENT, r.comment.c_str());
    nftnl_rule_set_data(p.get(), NFTNL_RULE_USERDATA, nftnl_udata_buf_data(ud),
                        nftnl_udata_buf_len(ud));
    nftnl_udata_buf_free(ud);
  }
  return p;
}

class Encoder {
 public:
  Encoder(EncodedBatch* out) : out_(out), scratch_(kMsgScratch) {}

  nlmsghdr* Hdr(uint16_t type, const TableRef& t, uint16_t flags) {
    return nftnl_nlmsg_build_hdr(scratch_.data(), type, NfProtoOf(t.family), flags, next_seq_);
  }
  void Commit(nlmsghdr* nlh, int op) {
    out_->bytes.append(reinterpret_cast<const char*>(nlh), nlh->nlmsg_len);
    out_->seq_to_op.push_back(op);
    ++next_seq_;
  }
  void Begin() {
    out_->first_seq = next_seq_ = out_->first_seq;
    nlmsghdr* nlh = nftnl_batch_begin(scratch_.data(), next_seq_);
    Commit(nlh, -1);
  }
  void End() {
    nlmsghdr* nlh = nftnl_batch_end(scratch_.data(), next_seq_);
    Commit(nlh, -1);
  }
  uint32_t next_seq() const { return next_seq_; }
  std::vector<char>& scratch() { return scratch_; }

 private:
  EncodedBatch* out_;
  std::vector<char> scratch_;
  uint32_t next_seq_ = 0;
};

}  // namespace

uint16_t NfProtoOf(Family f) {
  switch (f) {
    case Family::kIp: return NFPROTO_IPV4;
    case Family::kIp6: return NFPROTO_IPV6;
    case Family::kInet: return NFPROTO_INET;
  }
  return NFPROTO_INET;
}

std::optional<Family> FamilyFromNfProto(uint32_t nfproto) {
  switch (nfproto) {
    case NFPROTO_IPV4: return Family::kIp;
    case NFPROTO_IPV6: return Family::kIp6;
    case NFPROTO_INET: return Family::kInet;
    default: return std::nullopt;
  }
}

absl::StatusOr<EncodedBatch> EncodeBatch(const Batch& batch, uint32_t first_seq) {
  EncodedBatch out;
  out.first_seq = first_seq;
  Encoder enc(&out);
  enc.Begin();
  const auto& ops = batch.ops();
  for (size_t i = 0; i < ops.size(); ++i) {
    const Op& op = ops[i];
    int idx = static_cast<int>(i);
    const uint16_t create = NLM_F_CREATE;
    const uint16_t excl = NLM_F_CREATE | NLM_F_EXCL;
    switch (op.kind) {
      case OpKind::kAddTable:
      case OpKind::kCreateTable:
      case OpKind::kDeleteTable: {
        uint16_t type = op.kind == OpKind::kDeleteTable ? NFT_MSG_DELTABLE : NFT_MSG_NEWTABLE;
        uint16_t flags = op.kind == OpKind::kAddTable ? create
                         : op.kind == OpKind::kCreateTable ? excl : 0;
        nlmsghdr* nlh = enc.Hdr(type, op.table, flags);
        nftnl_table_nlmsg_build_payload(nlh, MakeTable(op.table).get());
        enc.Commit(nlh, idx);
        break;
      }
      case OpKind::kFlushTable: {
        // Flushing a table = deleting all its rules (NFT_MSG_DELRULE with only the table).
        nlmsghdr* nlh = enc.Hdr(NFT_MSG_DELRULE, op.table, 0);
        RulePtr r(nftnl_rule_alloc());
        nftnl_rule_set_u32(r.get(), NFTNL_RULE_FAMILY, NfProtoOf(op.table.family));
        nftnl_rule_set_str(r.get(), NFTNL_RULE_TABLE, op.table.name.c_str());
        nftnl_rule_nlmsg_build_payload(nlh, r.get());
        enc.Commit(nlh, idx);
        break;
      }
      case OpKind::kAddChain:
      case OpKind::kCreateChain:
      case OpKind::kDeleteChain: {
        uint16_t type = op.kind == OpKind::kDeleteChain ? NFT_MSG_DELCHAIN : NFT_MSG_NEWCHAIN;
        uint16_t flags = op.kind == OpKind::kAddChain ? create
                         : op.kind == OpKind::kCreateChain ? excl : 0;
        Chain c = op.chain;
        if (op.kind == OpKind::kDeleteChain) c.base.reset();
        nlmsghdr* nlh = enc.Hdr(type, op.table, flags);
        nftnl_chain_nlmsg_build_payload(nlh, MakeChain(op.table, c).get());
        enc.Commit(nlh, idx);
        break;
      }
      case OpKind::kFlushChain: {
        nlmsghdr* nlh = enc.Hdr(NFT_MSG_DELRULE, op.table, 0);
        Rule r;
        r.chain = op.chain.name;
        RulePtr p(nftnl_rule_alloc());
        nftnl_rule_set_u32(p.get(), NFTNL_RULE_FAMILY, NfProtoOf(op.table.family));
        nftnl_rule_set_str(p.get(), NFTNL_RULE_TABLE, op.table.name.c_str());
        nftnl_rule_set_str(p.get(), NFTNL_RULE_CHAIN, r.chain.c_str());
        nftnl_rule_nlmsg_build_payload(nlh, p.get());
        enc.Commit(nlh, idx);
        break;
      }
      case OpKind::kAddSet:
      case OpKind::kCreateSet: {
        if (op.set.key.empty()) {
          return absl::InvalidArgumentError(
              absl::StrCat("nft op ", i, " (", DescribeOp(op), "): set key has no fields"));
        }
        nlmsghdr* nlh =
            enc.Hdr(NFT_MSG_NEWSET, op.table, op.kind == OpKind::kAddSet ? create : excl);
        SetPtr set = MakeSet(op.table, op.set, true);
        // The kernel requires NFTA_SET_ID on NEWSET (a batch-local id; we refer by name).
        nftnl_set_set_u32(set.get(), NFTNL_SET_ID, static_cast<uint32_t>(i + 1));
        nftnl_set_nlmsg_build_payload(nlh, set.get());
        enc.Commit(nlh, idx);
        break;
      }
      case OpKind::kDeleteSet:
      case OpKind::kFlushSet: {
        // Flush = delete elements with no element list.
        uint16_t type = op.kind == OpKind::kDeleteSet ? NFT_MSG_DELSET : NFT_MSG_DELSETELEM;
        nlmsghdr* nlh = enc.Hdr(type, op.table, 0);
        SetPtr s = MakeSet(op.table, op.set, false);
        if (op.kind == OpKind::kDeleteSet) {
          nftnl_set_nlmsg_build_payload(nlh, s.get());
        } else {
          nftnl_set_elems_nlmsg_build_payload(nlh, s.get());
        }
        enc.Commit(nlh, idx);
        break;
      }
      case OpKind::kAddElements:
      case OpKind::kDeleteElements: {
        bool add = op.kind == OpKind::kAddElements;
        const auto& elems = op.set.elements;
        for (size_t from = 0; from < elems.size(); from += kElemsPerMsg) {
          size_t to = std::min(elems.size(), from + kElemsPerMsg);
          SetPtr s = MakeSet(op.table, op.set, false);
          AddElems(s.get(), elems, from, to, add);
          nlmsghdr* nlh = enc.Hdr(add ? NFT_MSG_NEWSETELEM : NFT_MSG_DELSETELEM, op.table,
                                  add ? create : 0);
          nftnl_set_elems_nlmsg_build_payload(nlh, s.get());
          enc.Commit(nlh, idx);
        }
        break;
      }
      case OpKind::kAddRule: {
        nlmsghdr* nlh = enc.Hdr(NFT_MSG_NEWRULE, op.table, NLM_F_CREATE | NLM_F_APPEND);
        nftnl_rule_nlmsg_build_payload(nlh, MakeRule(op.table, op.rule, true).get());
        enc.Commit(nlh, idx);
        break;
      }
      case OpKind::kDeleteRule: {
        nlmsghdr* nlh = enc.Hdr(NFT_MSG_DELRULE, op.table, 0);
        nftnl_rule_nlmsg_build_payload(nlh, MakeRule(op.table, op.rule, false).get());
        enc.Commit(nlh, idx);
        break;
      }
    }
  }
  out.last_seq = enc.next_seq() - 1;
  if (out.seq_to_op.size() > 1) {
    // Ask for an ack on the last op message only: a successful batch returns exactly one.
    size_t off = 0;
    for (uint32_t seq = out.first_seq; off < out.bytes.size(); ++seq) {
      auto* nlh = reinterpret_cast<nlmsghdr*>(out.bytes.data() + off);
      if (seq == out.last_seq) nlh->nlmsg_flags |= NLM_F_ACK;
      off += NLMSG_ALIGN(nlh->nlmsg_len);
    }
  }
  enc.End();
  return out;
}

}  // namespace shoal::kernel::nft::internal
