// Dump requests and decoding of dumped objects (netlink adapter, internal).
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

#include <cstring>
#include <memory>

#include "kernel/nft/codec.h"
#include "kernel/nft/expr_codec.h"

namespace shoal::kernel::nft::internal {
namespace {


std::optional<Hook> HookFromKernel(uint32_t h) {
  switch (h) {
    case NF_INET_PRE_ROUTING: return Hook::kPrerouting;
    case NF_INET_LOCAL_IN: return Hook::kInput;
    case NF_INET_FORWARD: return Hook::kForward;
    case NF_INET_LOCAL_OUT: return Hook::kOutput;
    case NF_INET_POST_ROUTING: return Hook::kPostrouting;
    default: return std::nullopt;
  }
}

bool SameTable(uint32_t family, const char* name, const TableRef& t) {
  return family == NfProtoOf(t.family) && name != nullptr && t.name == name;
}

int CommentCb(const nftnl_udata* attr, void* data) {
  if (nftnl_udata_type(attr) == NFTNL_UDATA_RULE_COMMENT) {
    const char* s = static_cast<const char*>(nftnl_udata_get(attr));
    uint8_t len = nftnl_udata_len(attr);
    *static_cast<std::string*>(data) = std::string(s, strnlen(s, len));
  }
  return MNL_CB_OK;
}

}  // namespace

nlmsghdr* BuildGetTable(char* buf, const TableRef& t, uint32_t seq) {
  nlmsghdr* nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETTABLE, NfProtoOf(t.family), NLM_F_ACK, seq);
  TablePtr p(nftnl_table_alloc());
  nftnl_table_set_str(p.get(), NFTNL_TABLE_NAME, t.name.c_str());
  nftnl_table_nlmsg_build_payload(nlh, p.get());
  return nlh;
}

nlmsghdr* BuildDumpTables(char* buf, uint32_t seq) {
  return nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETTABLE, NFPROTO_UNSPEC, NLM_F_DUMP, seq);
}

nlmsghdr* BuildDumpChains(char* buf, Family f, uint32_t seq) {
  return nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETCHAIN, NfProtoOf(f), NLM_F_DUMP, seq);
}

nlmsghdr* BuildDumpSets(char* buf, const TableRef& t, uint32_t seq) {
  nlmsghdr* nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETSET, NfProtoOf(t.family), NLM_F_DUMP, seq);
  SetPtr p(nftnl_set_alloc());
  nftnl_set_set_str(p.get(), NFTNL_SET_TABLE, t.name.c_str());
  nftnl_set_nlmsg_build_payload(nlh, p.get());
  return nlh;
}

nlmsghdr* BuildDumpElements(char* buf, const TableRef& t, const std::string& set, uint32_t seq) {
  nlmsghdr* nlh =
      nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETSETELEM, NfProtoOf(t.family), NLM_F_DUMP, seq);
  SetPtr p(nftnl_set_alloc());
  nftnl_set_set_str(p.get(), NFTNL_SET_TABLE, t.name.c_str());
  nftnl_set_set_str(p.get(), NFTNL_SET_NAME, set.c_str());
  nftnl_set_elems_nlmsg_build_payload(nlh, p.get());
  return nlh;
}

nlmsghdr* BuildDumpRules(char* buf, const TableRef& t, uint32_t seq) {
  nlmsghdr* nlh =
      nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETRULE, NfProtoOf(t.family), NLM_F_DUMP, seq);
  RulePtr p(nftnl_rule_alloc());
  nftnl_rule_set_str(p.get(), NFTNL_RULE_TABLE, t.name.c_str());
  nftnl_rule_nlmsg_build_payload(nlh, p.get());
  return nlh;
}

bool DecodeTable(const nlmsghdr* nlh, TableRef* out) {
  TablePtr p(nftnl_table_alloc());
  if (nftnl_table_nlmsg_parse(nlh, p.get()) < 0) return false;
  auto fam = FamilyFromNfProto(nftnl_table_get_u32(p.get(), NFTNL_TABLE_FAMILY));
  if (!fam) return false;  // arp, bridge, netdev tables are not ours
  out->family = *fam;
  out->name = nftnl_table_get_str(p.get(), NFTNL_TABLE_NAME);
  return true;
}

bool DecodeChain(const nlmsghdr* nlh, const TableRef& t, Chain* out) {
  ChainPtr p(nftnl_chain_alloc());
  if (nftnl_chain_nlmsg_parse(nlh, p.get()) < 0) return false;
  if (!SameTable(nftnl_chain_get_u32(p.get(), NFTNL_CHAIN_FAMILY),
                 nftnl_chain_get_str(p.get(), NFTNL_CHAIN_TABLE), t)) {
    return false;
  }
  out->name = nftnl_chain_get_str(p.get(), NFTNL_CHAIN_NAME);
  out->base.reset();
  if (nftnl_chain_is_set(p.get(), NFTNL_CHAIN_HOOKNUM)) {
    BaseChain b;
    b.hook = HookFromKernel(nftnl_chain_get_u32(p.get(), NFTNL_CHAIN_HOOKNUM)).value_or(Hook::kInput);
    b.priority = nftnl_chain_get_s32(p.get(), NFTNL_CHAIN_PRIO);
    std::string type = nftnl_chain_is_set(p.get(), NFTNL_CHAIN_TYPE)
                           ? nftnl_chain_get_str(p.get(), NFTNL_CHAIN_TYPE) : "filter";
    b.type = type == "nat" ? ChainType::kNat : type == "route" ? ChainType::kRoute
                                                               : ChainType::kFilter;
    b.policy_drop = nftnl_chain_is_set(p.get(), NFTNL_CHAIN_POLICY) &&
                    nftnl_chain_get_u32(p.get(), NFTNL_CHAIN_POLICY) == NF_DROP;
    out->base = b;
  }
  return true;
}

bool DecodeSet(const nlmsghdr* nlh, const TableRef& t, Set* out) {
  SetPtr p(nftnl_set_alloc());
  if (nftnl_set_nlmsg_parse(nlh, p.get()) < 0) return false;
  if (!SameTable(nftnl_set_get_u32(p.get(), NFTNL_SET_FAMILY),
                 nftnl_set_get_str(p.get(), NFTNL_SET_TABLE), t)) {
    return false;
  }
  uint32_t flags = nftnl_set_get_u32(p.get(), NFTNL_SET_FLAGS);
  if (flags & NFT_SET_ANONYMOUS) return false;  // anonymous sets belong to their rule
  *out = Set{};
  out->name = nftnl_set_get_str(p.get(), NFTNL_SET_NAME);
  out->key = SplitConcatType(nftnl_set_get_u32(p.get(), NFTNL_SET_KEY_TYPE),
                             nftnl_set_get_u32(p.get(), NFTNL_SET_KEY_LEN));
  if (flags & NFT_SET_MAP) {
    uint32_t dt = nftnl_set_get_u32(p.get(), NFTNL_SET_DATA_TYPE);
    if (dt == NFT_DATA_VERDICT) {
      out->verdict_map = true;
    } else {
      out->data = SplitConcatType(dt, nftnl_set_get_u32(p.get(), NFTNL_SET_DATA_LEN));
    }
  }
  return true;
}

void DecodeElements(const nlmsghdr* nlh, const Set& shape, std::vector<Element>* out) {
  SetPtr p(nftnl_set_alloc());
  if (nftnl_set_elems_nlmsg_parse(nlh, p.get()) < 0) return;
  nftnl_set_elems_iter* it = nftnl_set_elems_iter_create(p.get());
  for (nftnl_set_elem* e = nftnl_set_elems_iter_next(it); e != nullptr;
       e = nftnl_set_elems_iter_next(it)) {
    Element el;
    uint32_t len = 0;
    const char* key = static_cast<const char*>(nftnl_set_elem_get(e, NFTNL_SET_ELEM_KEY, &len));
    el.key = UnpackKey(std::string(key ? key : "", key ? len : 0), shape.key);
    if (nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_VERDICT)) {
      const char* chain = nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_CHAIN)
                              ? nftnl_set_elem_get_str(e, NFTNL_SET_ELEM_CHAIN) : nullptr;
      el.verdict = VerdictFromKernel(
          static_cast<int32_t>(nftnl_set_elem_get_u32(e, NFTNL_SET_ELEM_VERDICT)), chain);
    } else if (nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_DATA)) {
      const char* d = static_cast<const char*>(nftnl_set_elem_get(e, NFTNL_SET_ELEM_DATA, &len));
      el.data = UnpackKey(std::string(d, len), shape.data);
    }
    out->push_back(std::move(el));
  }
  nftnl_set_elems_iter_destroy(it);
}

bool DecodeRule(const nlmsghdr* nlh, const TableRef& t, Rule* out) {
  RulePtr p(nftnl_rule_alloc());
  if (nftnl_rule_nlmsg_parse(nlh, p.get()) < 0) return false;
  if (!SameTable(nftnl_rule_get_u32(p.get(), NFTNL_RULE_FAMILY),
                 nftnl_rule_get_str(p.get(), NFTNL_RULE_TABLE), t)) {
    return false;
  }
  *out = Rule{};
  out->chain = nftnl_rule_get_str(p.get(), NFTNL_RULE_CHAIN);
  out->handle = nftnl_rule_get_u64(p.get(), NFTNL_RULE_HANDLE);
  nftnl_expr_iter* it = nftnl_expr_iter_create(p.get());
  for (nftnl_expr* e = nftnl_expr_iter_next(it); e != nullptr; e = nftnl_expr_iter_next(it)) {
    out->exprs.push_back(DecodeExpr(e));
  }
  nftnl_expr_iter_destroy(it);
  if (nftnl_rule_is_set(p.get(), NFTNL_RULE_USERDATA)) {
    uint32_t len = 0;
    const void* ud = nftnl_rule_get_data(p.get(), NFTNL_RULE_USERDATA, &len);
    nftnl_udata_parse(ud, len, CommentCb, &out->comment);
  }
  return true;
}

}  // namespace shoal::kernel::nft::internal
