// The contract between the raft node and the replicated state machine (the store).
//
// StateMachine is implemented by the store; the raft node calls it in log order, never
// concurrently with itself (one call at a time, each seeing the previous ones' effects, but not
// always from the same thread: the thread holding the raft loop applies — see node.h): Apply() for
// every committed normal entry that carries data (the election no-op and configuration changes are
// not passed on), CaptureSnapshot() when the node compacts its log, Restore() when a snapshot from
// the leader replaces the local state (every entry up to `index` is then reflected in the restored
// state). CaptureSnapshot returns a serializer for the state as of that call; the node runs it on
// another thread, concurrently with later Apply() calls, so a large state does not stall the
// raft loop (heartbeats, elections). The default serializes at once through Snapshot().
//
// Proposer is implemented by the raft node: ProposeAndWait() replicates `data` as one normal
// entry and returns its raft index once the entry is committed AND applied locally (so a
// reader on this node sees its effect). Errors:
//   FailedPrecondition "not the leader"  this node is not the leader (nothing was proposed);
//   Unavailable                          leadership was lost, or the node stopped, before the
//                                        entry was known to be applied (outcome unknown);
//   DeadlineExceeded                     `timeout` passed first (outcome unknown);
//   ResourceExhausted                    the uncommitted log is full or `data` is too large.
// Both classes are thread-safe as seen by their callers.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace shoal::manager::raft {

// Implemented by the replicated state machine (the store). Calls are serialized (see above).
class StateMachine {
 public:
  virtual ~StateMachine() = default;
  virtual void Apply(uint64_t index, absl::string_view data) = 0;  // committed normal entry
  virtual absl::StatusOr<std::string> Snapshot() = 0;              // serialize state
  using Serializer = std::function<absl::StatusOr<std::string>()>;
  virtual absl::StatusOr<Serializer> CaptureSnapshot() {
    absl::StatusOr<std::string> s = Snapshot();
    if (!s.ok()) return s.status();
    return Serializer([data = std::move(*s)]() -> absl::StatusOr<std::string> { return data; });
  }
  virtual absl::Status Restore(uint64_t index, absl::string_view snapshot) = 0;
};

// Implemented by the raft node: replicate `data`, block until applied locally.
class Proposer {
 public:
  virtual ~Proposer() = default;
  // Returns the raft index; FailedPrecondition "not the leader" / Unavailable on lost
  // leadership (see the file comment for all codes).
  virtual absl::StatusOr<uint64_t> ProposeAndWait(absl::string_view data,
                                                  absl::Duration timeout) = 0;
  virtual bool IsLeader() const = 0;
};

}  // namespace shoal::manager::raft
