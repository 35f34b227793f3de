// Progress: the leader's view of one peer's log (etcd-raft's probe/replicate/snapshot model).
//
//   kProbe      at most one append in flight until the peer answers (finding the match point);
//   kReplicate  optimistic pipelining: `next` advances on send, bounded by Inflights;
//   kSnapshot   a snapshot is being streamed in chunks; no appends until it is installed.
// Not thread-safe; owned by the Core.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>

#include "api/raft.pb.h"

namespace shoal::manager::raft {

// Bounded window of in-flight append messages: count and bytes.
class Inflights {
 public:
  Inflights(size_t max_count, uint64_t max_bytes) : max_count_(max_count), max_bytes_(max_bytes) {}
  void Add(uint64_t last_index, uint64_t bytes);
  // Frees every message whose last index is <= `index`.
  void FreeLE(uint64_t index);
  void Reset();
  void FreeFirst();
  bool Full() const { return items_.size() >= max_count_ || (max_bytes_ > 0 && bytes_ >= max_bytes_); }
  size_t count() const { return items_.size(); }
  uint64_t bytes() const { return bytes_; }

 private:
  struct Item {
    uint64_t index;
    uint64_t bytes;
  };
  size_t max_count_;
  uint64_t max_bytes_;
  std::deque<Item> items_;
  uint64_t bytes_ = 0;
};

struct Progress {
  enum class State { kProbe, kReplicate, kSnapshot };

  Progress(uint64_t next_index, size_t max_inflight, uint64_t max_inflight_bytes)
      : next(next_index), inflights(max_inflight, max_inflight_bytes) {}

  uint64_t match = 0;
  uint64_t next = 1;
  State state = State::kProbe;
  bool probe_sent = false;     // kProbe: an append is outstanding
  bool recent_active = false;  // heard from since the last CheckQuorum round
  bool learner = false;
  Inflights inflights;
  // kSnapshot: which snapshot is streaming and how far.
  uint64_t snap_index = 0;
  uint64_t snap_sent = 0;    // bytes sent
  uint64_t snap_acked = 0;   // bytes acknowledged
  int snap_idle_ticks = 0;   // ticks without a chunk acknowledgement
  // The snapshot being streamed (kept alive even if the leader compacts again meanwhile).
  std::shared_ptr<const std::string> snap_data;
  ::shoal::api::v1::SnapshotMetadata snap_meta;

  void BecomeProbe();
  void BecomeReplicate();
  void BecomeSnapshot(uint64_t index);
  // Peer acknowledged up to `n`; returns true when that is news.
  bool MaybeUpdate(uint64_t n);
  // Peer rejected an append at `rejected`; `hint` is its suggested match. Returns false for a
  // stale rejection.
  bool MaybeDecrTo(uint64_t rejected, uint64_t hint);
  bool Paused() const;
  void OptimisticUpdate(uint64_t last) { next = last + 1; }
};

const char* StateName(Progress::State s);

}  // namespace shoal::manager::raft
