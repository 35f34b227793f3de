// FakeNft: an in-memory nftables with the kernel's observable semantics (see nft.h): atomic
// batches, the same error codes, rule handles, reference checks (a chain or set in use cannot be
// deleted), element clash detection, NAT hook restrictions. It does not evaluate packets.
// Counter values stay 0. Cost: O(log n) per element/chain op and O(batch) per Apply (an undo
// log rolls a failed batch back; nothing is copied), so tests with 10k+ services stay fast.
// Thread-safe.
#pragma once

#include <functional>
#include <map>
#include <mutex>
#include <utility>

#include "kernel/nft/nft.h"

namespace shoal::kernel::nft {

class FakeNft : public Nft {
 public:
  absl::Status Apply(const Batch& batch) override;
  absl::StatusOr<std::vector<TableRef>> ListTables() override;
  absl::StatusOr<Table> GetTable(const TableRef& t) override;

  // Test hooks: number of successful Apply calls with a non-empty batch, and the total ops.
  int applies() const;
  size_t ops_applied() const;
  // Makes the next Apply fail with `status` (nothing applied), to test callers' rollback.
  void FailNextApply(absl::Status status);

 private:
  struct FSet {
    Set shape;                                // elements empty
    std::map<std::string, Element> elements;  // by packed key
  };
  struct FTable {
    std::map<std::string, Chain> chains;
    std::map<std::string, std::vector<Rule>> rules;  // by chain, in order
    std::map<std::string, FSet> sets;
    std::map<std::string, int> chain_refs;  // jump/goto from rules and elements
    std::map<std::string, int> set_refs;    // lookups from rules
  };
  using Undo = std::vector<std::function<void()>>;
  absl::Status ApplyOp(const Op& op, Undo& undo);

  mutable std::mutex mu_;
  std::map<std::pair<Family, std::string>, FTable> tables_;
  uint64_t next_handle_ = 1;
  int applies_ = 0;
  size_t ops_applied_ = 0;
  absl::Status fail_next_;
};

}  // namespace shoal::kernel::nft
