// Internal to kernel/nft: converts between the plain values in types.h and libnftnl objects /
// nfnetlink messages. Pure (no sockets) so the netlink adapter stays small.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "kernel/nft/nft.h"

#include <libnftnl/chain.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>
#include <linux/netlink.h>

namespace shoal::kernel::nft::internal {

template <typename T, void (*Free)(const T*)>
struct Deleter {
  void operator()(T* p) const { Free(p); }
};
using TablePtr = std::unique_ptr<nftnl_table, Deleter<nftnl_table, nftnl_table_free>>;
using ChainPtr = std::unique_ptr<nftnl_chain, Deleter<nftnl_chain, nftnl_chain_free>>;
using SetPtr = std::unique_ptr<nftnl_set, Deleter<nftnl_set, nftnl_set_free>>;
using RulePtr = std::unique_ptr<nftnl_rule, Deleter<nftnl_rule, nftnl_rule_free>>;

uint16_t NfProtoOf(Family f);

// nft datatype ids and key layout (single field unpadded, concatenations padded to 4 bytes).
uint32_t DatatypeId(FieldType t);
std::optional<FieldType> FieldFromDatatype(uint32_t id);
uint32_t ConcatType(const std::vector<FieldType>& f);
std::vector<FieldType> SplitConcatType(uint32_t t, uint32_t len);
uint32_t KeyLen(const std::vector<FieldType>& f);
std::string PackKey(const std::vector<Datum>& key);
std::vector<Datum> UnpackKey(const std::string& b, const std::vector<FieldType>& types);
Verdict VerdictFromKernel(int32_t v, const char* chain);
int32_t EncodeVerdict(const Verdict& v);
std::optional<Family> FamilyFromNfProto(uint32_t nfproto);

// Appends one nfnetlink batch (BEGIN, ops..., END) to `out`. Sequence numbers start at
// `first_seq`; seq_to_op[seq - first_seq] is the index of the op that produced that message
// (one op can produce several messages: large element lists are split). The last message of
// the batch carries NLM_F_ACK, so a successful batch yields exactly one ack.
struct EncodedBatch {
  std::string bytes;
  uint32_t first_seq = 0;
  uint32_t last_seq = 0;  // seq of the last op message (acked)
  std::vector<int> seq_to_op;  // -1 for BEGIN/END
};
absl::StatusOr<EncodedBatch> EncodeBatch(const Batch& batch, uint32_t first_seq);

// Requests for dumps (written into buf; returns the header).
nlmsghdr* BuildGetTable(char* buf, const TableRef& t, uint32_t seq);
nlmsghdr* BuildDumpTables(char* buf, uint32_t seq);
nlmsghdr* BuildDumpChains(char* buf, Family f, uint32_t seq);
nlmsghdr* BuildDumpSets(char* buf, const TableRef& t, uint32_t seq);
nlmsghdr* BuildDumpElements(char* buf, const TableRef& t, const std::string& set, uint32_t seq);
nlmsghdr* BuildDumpRules(char* buf, const TableRef& t, uint32_t seq);

// Decoders for one dumped message; return false if the message is not for `table`.
bool DecodeTable(const nlmsghdr* nlh, TableRef* out);
bool DecodeChain(const nlmsghdr* nlh, const TableRef& t, Chain* out);
bool DecodeSet(const nlmsghdr* nlh, const TableRef& t, Set* out);
void DecodeElements(const nlmsghdr* nlh, const Set& shape, std::vector<Element>* out);
bool DecodeRule(const nlmsghdr* nlh, const TableRef& t, Rule* out);

}  // namespace shoal::kernel::nft::internal
