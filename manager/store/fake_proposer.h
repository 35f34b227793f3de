// FakeProposer: a single-node, in-process stand-in for the raft node (manager/raft), for tests
// and benchmarks. ProposeAndWait assigns the next index, appends the entry to an in-memory log
// and applies it synchronously to every attached StateMachine (the first is "this node's"
// store; more model followers replaying the same log). It keeps the real contract of
// manager/raft/state_machine.h: returns the index once applied; FailedPrecondition "not the
// leader" when demoted; Unavailable/DeadlineExceeded mean the outcome is unknown.
//
// Fault hooks model what a real cluster does to a proposer:
//   FailNext(status, n)      the next n proposals fail before reaching the log (not applied)
//   ApplyThenFail(status, n) the next n proposals are committed and applied, but the caller
//                            gets `status` (leadership lost after commit: outcome unknown)
//   AppendForeign(data)      an entry proposed elsewhere (another leader) is applied
//   SetBeforeAppend(hook)    runs before each proposal is appended; may call AppendForeign to
//                            interleave a competing write between a transaction's read and its
//                            commit
//   SkipIndexes(n)           the next index jumps by n (no-op and configuration entries)
// set_keep_log(false) stops recording entries (benchmarks that append millions).
//
// Thread safety: thread-safe; entries are applied one at a time in index order.
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "manager/raft/state_machine.h"

namespace shoal::manager::store {

class FakeProposer final : public raft::Proposer {
 public:
  // Adds a state machine that receives every entry appended from now on.
  void Attach(raft::StateMachine* sm);

  absl::StatusOr<uint64_t> ProposeAndWait(absl::string_view data, absl::Duration timeout) override;
  bool IsLeader() const override;

  void SetLeader(bool leader);
  void FailNext(absl::Status status, int count = 1);
  void ApplyThenFail(absl::Status status, int count = 1);
  void SetBeforeAppend(std::function<void()> hook);
  uint64_t AppendForeign(std::string data);
  void SkipIndexes(uint64_t n);
  void set_keep_log(bool keep);

  // The log so far: (index, data).
  std::vector<std::pair<uint64_t, std::string>> Log() const;
  uint64_t last_index() const;
  int proposals() const;

 private:
  uint64_t AppendLocked(std::string data);  // requires mu_

  mutable std::mutex mu_;
  std::vector<raft::StateMachine*> machines_;
  std::vector<std::pair<uint64_t, std::string>> log_;
  uint64_t last_index_ = 0;
  uint64_t skip_ = 0;
  bool leader_ = true;
  bool keep_log_ = true;
  int proposals_ = 0;
  absl::Status fail_status_;
  int fail_count_ = 0;
  absl::Status after_status_;
  int after_count_ = 0;
  std::function<void()> before_append_;
};

}  // namespace shoal::manager::store
