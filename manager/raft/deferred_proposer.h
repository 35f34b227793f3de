// DeferredProposer: a Proposer that forwards to a RaftNode set after construction.
//
// The store needs its proposer when it is constructed and RaftNode::Create needs the store (its
// state machine): construct this first, give it to the store, create the node, then Set() it.
// Before Set() (or after Set(nullptr)) proposals fail UNAVAILABLE and IsLeader() is false.
//
// Thread safety: all methods are thread-safe; the node must outlive its use here.
#pragma once

#include <atomic>

#include "manager/raft/node.h"

namespace shoal::manager::raft {

class DeferredProposer final : public Proposer {
 public:
  void Set(RaftNode* node) { node_.store(node); }
  absl::StatusOr<uint64_t> ProposeAndWait(absl::string_view data,
                                          absl::Duration timeout) override {
    RaftNode* n = node_.load();
    if (n == nullptr) return absl::UnavailableError("raft node not started");
    return n->ProposeAndWait(data, timeout);
  }
  bool IsLeader() const override {
    RaftNode* n = node_.load();
    return n != nullptr && n->IsLeader();
  }

 private:
  std::atomic<RaftNode*> node_{nullptr};
};

}  // namespace shoal::manager::raft
