// FakeNft: an in-memory nftables with the kernel's observable semantics (see nft.h): atomic
// batches, the same error codes, rule handles, reference checks (a chain or set in use cannot be
// deleted), element clash detection. It does not evaluate packets. Counter values stay 0.
// Thread-safe.
#pragma once

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
  struct State {
    std::map<std::pair<Family, std::string>, Table> tables;
    uint64_t next_handle = 1;
  };
  absl::Status ApplyOp(State& s, const Op& op) const;

  mutable std::mutex mu_;
  State state_;
  int applies_ = 0;
  size_t ops_applied_ = 0;
  absl::Status fail_next_;
};

}  // namespace shoal::kernel::nft
