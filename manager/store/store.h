// MemoryStore: the manager's replicated object store (DESIGN.md §6).
//
// Objects (Node, Service, Task, Network, Cluster, Secret, Config) live in memory as immutable
// protobuf messages in persistent maps with secondary indexes (state.h, pmap.h). The store is
// the raft StateMachine: every change is a raft entry (a serialized InternalRaftRequest) and
// becomes visible when it is applied, on the leader and on every follower alike.
//
// Reads:   View() returns a consistent snapshot; it never blocks writers and writers never
//          block it (publishing a new version is one pointer swap).
// Writes:  Update(fn) runs fn on a Tx over the latest version, proposes the recorded actions as
//          one InternalRaftRequest through the Proposer and returns once the entry is applied
//          locally, with the new version (raft index). Local writers are serialized (one
//          transaction in flight per store, as in SwarmKit) so they never conflict with each
//          other; stale versions from clients fail with Aborted "update out of sequence".
//          Batch(fn) splits large bulk changes into entries of at most
//          max_changes_per_tx actions / max_tx_bytes bytes.
// Watch:   Watch / ViewAndWatch stream committed transactions (watch.h), exactly once and in
//          order, resumable from a version within a bounded history.
// Raft:    Apply/Snapshot/Restore implement manager/raft/state_machine.h; Restore turns the
//          jump to the snapshot into ordinary create/update/delete events so watchers continue.
//
// Errors from Update/Batch: those of Tx (tx.h) and of fn; FailedPrecondition "not the leader";
// ResourceExhausted for a transaction over max_tx_bytes; the Proposer's errors (Unavailable,
// DeadlineExceeded: the outcome is unknown, read again); an error from the applier when the
// entry was rejected at apply time (the state is then unchanged).
//
// Thread safety: all methods are thread-safe. Apply/Snapshot/Restore are called by the raft
// apply thread (serially). Update/Batch must not be called from inside a watch filter, from a
// Tx function, or from the apply thread.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "base/clock.h"
#include "base/random.h"
#include "manager/raft/state_machine.h"
#include "manager/store/read_tx.h"
#include "manager/store/state.h"
#include "manager/store/tx.h"
#include "manager/store/watch.h"

namespace shoal::manager::store {

struct StoreOptions {
  // SwarmKit: MaxChangesPerTransaction = 200, MaxTransactionBytes = 1.5 MiB.
  size_t max_changes_per_tx = 200;
  size_t max_tx_bytes = 1536 * 1024;
  // How long Update waits for its entry to be committed and applied.
  absl::Duration propose_timeout = absl::Seconds(30);
  // Commits / events kept for Watch(from_version) (events hold object versions alive, so
  // both are bounded); watchers' default queue limit in commits.
  size_t history_commits = 10000;
  size_t history_events = 100000;
  size_t watch_queue_limit = 10000;
};

class MemoryStore;

// Bulk writes: each Update(fn) is atomic (never split across raft entries); the batch commits
// its transaction whenever it reaches the change or byte limit, and at the end. A sub-update
// whose changes would push the transaction past max_tx_bytes is rolled back and run again on a
// fresh transaction after the current one commits, so `fn` must act only through the Tx.
class Batch {
 public:
  absl::Status Update(absl::FunctionRef<absl::Status(Tx&)> fn);
  // Raft entries committed so far by this batch.
  size_t transactions() const { return transactions_; }

 private:
  friend class MemoryStore;
  explicit Batch(MemoryStore* store) : store_(store) {}
  absl::Status Flush();
  MemoryStore* store_;
  std::unique_ptr<Tx> tx_;
  size_t transactions_ = 0;
  uint64_t version_ = 0;
};

class MemoryStore final : public raft::StateMachine {
 public:
  // `proposer` (the raft node, or FakeProposer in tests), `clock` and `random` must outlive
  // the store. The proposer must deliver entries to this store's Apply().
  MemoryStore(raft::Proposer* proposer, base::Clock* clock, base::Random* random,
              StoreOptions options = {});
  ~MemoryStore() override;
  MemoryStore(const MemoryStore&) = delete;
  MemoryStore& operator=(const MemoryStore&) = delete;

  // A read snapshot of the latest applied version.
  ReadView View() const;

  // Runs `fn` on a transaction and replicates its changes; returns the version (raft index) at
  // which they became visible (the current version if `fn` changed nothing). If `fn` returns an
  // error nothing is proposed and that error is returned.
  absl::StatusOr<uint64_t> Update(absl::FunctionRef<absl::Status(Tx&)> fn);

  // Runs `fn` with a Batch; returns the version of the last entry the batch committed. On error
  // the transactions already committed stay committed (as in SwarmKit).
  absl::StatusOr<uint64_t> BatchUpdate(absl::FunctionRef<absl::Status(Batch&)> fn);

  // Streams committed transactions (see watch.h for the guarantees and errors).
  absl::StatusOr<std::unique_ptr<Watcher>> Watch(WatchOptions options = {});
  // Runs `fn` on a view and returns a watcher that starts exactly after that view's version.
  absl::StatusOr<std::unique_ptr<Watcher>> ViewAndWatch(absl::FunctionRef<void(const ReadView&)> fn,
                                                        WatchOptions options = {});

  // raft::StateMachine. Apply of an entry at or below the current version is ignored (replay
  // after a restore). A malformed entry or one whose actions fail validation changes nothing
  // but the version; the proposer (if local) gets the error.
  void Apply(uint64_t index, absl::string_view data) override;
  absl::StatusOr<std::string> Snapshot() override;
  // Captures the current version (one pointer copy); the serializer runs on any thread.
  absl::StatusOr<Serializer> CaptureSnapshot() override;
  absl::Status Restore(uint64_t index, absl::string_view snapshot) override;

  uint64_t version() const { return View().version(); }
  // Oldest version Watch(from_version) accepts.
  uint64_t watch_history_floor() const { return hub_->history_floor(); }

 private:
  friend class Batch;
  struct Pending {
    bool done = false;
    absl::Status status;
    uint64_t index = 0;
  };

  std::shared_ptr<const State> Current() const;
  static absl::StatusOr<std::string> SerializeState(const State& state);
  absl::StatusOr<uint64_t> Commit(Tx& tx);  // proposes (spends tx); requires write_mu_
  void Publish(std::shared_ptr<const State> next, std::vector<Change> changes);
  void Resolve(uint64_t request_id, absl::Status status, uint64_t index);

  raft::Proposer* const proposer_;
  base::Clock* const clock_;
  const StoreOptions options_;
  std::shared_ptr<WatchHub> hub_;

  // Serializes local transactions (held from reading the base version until applied).
  std::mutex write_mu_;
  // Serializes Apply/Restore (the raft apply thread is serial already; this makes it explicit).
  std::mutex apply_mu_;

  mutable std::mutex root_mu_;  // guards only the pointer swap / copy
  std::shared_ptr<const State> root_;

  std::mutex pending_mu_;
  std::condition_variable pending_cv_;
  absl::flat_hash_map<uint64_t, Pending> pending_;
  uint64_t next_request_id_;  // guarded by write_mu_
};

}  // namespace shoal::manager::store
