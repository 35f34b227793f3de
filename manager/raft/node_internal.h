// RaftNode internals shared by its source files (node*.cc); not part of the public API.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "manager/raft/node.h"

namespace shoal::manager::raft {

struct RaftNode::Waiter {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  absl::StatusOr<uint64_t> result = absl::UnknownError("pending");
  uint64_t term = 0;
  std::chrono::steady_clock::time_point proposed_at;  // Enqueue() time
  bool acked = false;                                  // a follower acknowledged it
  std::function<void(absl::StatusOr<uint64_t>)> callback;  // async proposers

  void Complete(absl::StatusOr<uint64_t> r) {
    {
      std::lock_guard<std::mutex> l(mu);
      if (done) return;
      done = true;
      if (!callback) {
        result = std::move(r);
        cv.notify_all();
        return;
      }
    }
    callback(std::move(r));
  }
  absl::StatusOr<uint64_t> Wait(absl::Duration timeout) {
    std::unique_lock<std::mutex> l(mu);
    if (!cv.wait_for(l, absl::ToChronoNanoseconds(timeout), [&] { return done; })) {
      return absl::DeadlineExceededError("raft: timed out waiting for the entry to apply");
    }
    return result;
  }
};

struct RaftNode::Input {
  enum Kind { kMessage, kPropose, kConfChange, kRead, kTransfer, kSnapshotSaved, kDurable };
  Kind kind = kMessage;
  absl::Status status;  // kSnapshotSaved: the serializer's or the file write's result
  std::optional<SnapshotData> snapshot;  // kSnapshotSaved: set once serialized
  api::RaftMessage msg;
  std::string data;
  api::ConfChange cc;
  uint64_t target = 0;  // kTransfer; kDurable: the durable index
  uint64_t term = 0;    // kDurable: that entry's term
  std::shared_ptr<Waiter> waiter;
  std::chrono::steady_clock::time_point at;  // Enqueue() time
};

}  // namespace shoal::manager::raft
