// kernel/nft: Shoal's nftables adapter (libnftnl + libmnl), one atomic transaction per change.
//
// Layers (DESIGN.md §3):
//   types.h  plain values: Table, Chain, Set (sets, verdict maps, typed maps), Element, Rule.
//   rule.h   RuleBuilder: the expression vocabulary (masquerade, dnat, redirect, fib local,
//            concatenated vmap lookup, numgen/jhash -> vmap, counters, ...).
//   nft.h    (this file) Batch of operations + the Nft interface.
//   netlink_nft.h  OpenNft(netns_fd): the real adapter, bound to one network namespace.
//   fake_nft.h     FakeNft: in-memory, same semantics and errors, for unit tests.
//   plan.h   PlanTable(desired, observed) -> Batch: the minimal delta (pure);
//            SyncTable(nft, desired): observe + plan + apply (one reconcile step).
//
// Typical use (egress masquerade, owner helper "net"):
//
//   nft::TableRef t{nft::Family::kIp, "shoal-gw"};
//   nft::Batch b;
//   b.AddTable(t);
//   b.AddChain(t, {"postrouting", nft::BaseChain{nft::ChainType::kNat,
//                                               nft::Hook::kPostrouting, nft::kPrioritySrcNat}});
//   b.AddRule(t, nft::RuleBuilder(t.family, "postrouting")
//                    .Saddr(*nft::ParsePrefix("172.18.0.0/16")).OifName("shoal_gwbridge", false)
//                    .Counter().Masquerade());
//   RETURN_IF_ERROR(nft->Apply(b));  // all or nothing
//
// Or level-triggered: build the desired nft::Table, then
//   ASSIGN_OR_RETURN(size_t ops, nft::SyncTable(*nft, desired));  // 0 when converged
//
// Scaling note (measured, docs/benchmarks.md): every commit that adds a rule with a NAT or
// jump/goto expression, or a map element with a jump/goto verdict, makes the kernel re-validate
// every chain reachable from the table's base chains (O(table size) per change: ~5 ms CPU at
// 10k per-service chains). RuleBuilder::DnatMap gives a chain-free LB layout whose service and
// backend changes are plain map elements: constant ~35 µs per service at 1k and 10k.
//
// Semantics (identical in the kernel adapter and FakeNft):
//   * A Batch is applied atomically: on any error nothing changes, and the error names the
//     failing operation: "nft op 3 (add rule inet shoal-lb svc-web): <reason>".
//   * AddTable/AddChain/AddSet create if missing and succeed if present (nft "add");
//     CreateTable/CreateChain/CreateSet fail with ALREADY_EXISTS if present (nft "create").
//   * AddElements: ALREADY_EXISTS if the key exists with different data (kernel EEXIST/EBUSY);
//     identical elements are accepted. DeleteElements: NOT_FOUND if a key is missing.
//   * Delete*: NOT_FOUND if missing; FAILED_PRECONDITION if still in use (a chain referenced by a
//     rule/element, a set referenced by a rule, a chain/table that is not empty).
//     DeleteTable removes everything in the table at once.
//   * Rules referencing a missing chain/set: NOT_FOUND. Bad expressions: INVALID_ARGUMENT.
//   * Netlink errno values are mapped to canonical codes in ONE place (errors.cc).
// Thread safety: Batch is a value. Nft implementations are thread-safe.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "kernel/nft/rule.h"
#include "kernel/nft/types.h"

namespace shoal::kernel::nft {

struct TableRef {
  Family family = Family::kInet;
  std::string name;
  friend bool operator==(const TableRef&, const TableRef&) = default;
};

enum class OpKind : uint8_t {
  kAddTable, kCreateTable, kDeleteTable, kFlushTable,
  kAddChain, kCreateChain, kDeleteChain, kFlushChain,
  kAddSet, kCreateSet, kDeleteSet, kFlushSet,
  kAddElements, kDeleteElements,
  kAddRule, kDeleteRule,
};

struct Op {
  OpKind kind;
  TableRef table;
  Chain chain;       // chain ops (name only for delete/flush)
  Set set;           // set ops; element ops carry the set name + elements (key/data types not needed)
  Rule rule;         // kAddRule; kDeleteRule uses rule.chain + rule.handle
};

// An ordered list of operations sent as one nfnetlink batch (NFNL_MSG_BATCH_BEGIN ... END).
class Batch {
 public:
  Batch& AddTable(const TableRef& t);
  Batch& CreateTable(const TableRef& t);
  Batch& DeleteTable(const TableRef& t);
  Batch& FlushTable(const TableRef& t);  // removes all rules of all chains (keeps chains/sets)

  Batch& AddChain(const TableRef& t, Chain c);
  Batch& CreateChain(const TableRef& t, Chain c);
  Batch& DeleteChain(const TableRef& t, std::string chain);  // chain must be empty
  Batch& FlushChain(const TableRef& t, std::string chain);   // removes its rules

  // `s.elements` are added too (after the set) when non-empty.
  Batch& AddSet(const TableRef& t, Set s);
  Batch& CreateSet(const TableRef& t, Set s);
  Batch& DeleteSet(const TableRef& t, std::string set);
  Batch& FlushSet(const TableRef& t, std::string set);  // removes all elements
  Batch& AddElements(const TableRef& t, std::string set, std::vector<Element> elems);
  Batch& DeleteElements(const TableRef& t, std::string set, std::vector<Element> elems);

  Batch& AddRule(const TableRef& t, Rule r);  // appended at the end of r.chain
  Batch& DeleteRule(const TableRef& t, std::string chain, uint64_t handle);

  const std::vector<Op>& ops() const { return ops_; }
  bool empty() const { return ops_.empty(); }
  size_t size() const { return ops_.size(); }
  void Append(const Batch& other);

 private:
  std::vector<Op> ops_;
};

// "add rule inet shoal-lb svc-web" (used in error messages and logs).
std::string DescribeOp(const Op& op);

class Nft {
 public:
  virtual ~Nft() = default;
  // Applies all operations atomically (see the semantics above). An empty batch is OK.
  virtual absl::Status Apply(const Batch& batch) = 0;
  // Every table in the namespace (any owner), for finding leftovers by name prefix.
  virtual absl::StatusOr<std::vector<TableRef>> ListTables() = 0;
  // Full contents of one table with rule handles and counter values. NOT_FOUND if missing.
  virtual absl::StatusOr<Table> GetTable(const TableRef& t) = 0;
};

// Deletes the table if it exists (adds then deletes it in one batch: idempotent, atomic).
absl::Status DeleteTableIfExists(Nft& nft, const TableRef& t);

}  // namespace shoal::kernel::nft
