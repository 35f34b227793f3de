// RoleManager: applies node.spec.desired_role (promote / demote) on the leader, keeping the
// Raft quorum safe (semantics in swarmkit.md §4 "Role manager").
//
//   promote  worker -> manager: node.role becomes MANAGER (the node then renews its
//            certificate with the manager OU and joins Raft itself)
//   demote   manager -> worker: refused while it would lose quorum or remove the last
//            manager (the reason goes to node.role_message and is retried as reachability
//            changes); the leader hands leadership away before demoting itself; otherwise the
//            Raft member is removed first, then node.role becomes WORKER
//
// Whether a demotion is safe is decided by the same rule Control applies when the demotion is
// requested (controlapi::CheckDemotion, on the members as node.manager_status records them:
// controlapi::MembersFromStore). Reachability comes from node.manager_status (kept by the
// leader from its raft view); removal and leadership
// transfer go through RaftMembership (RaftNodeMembership over manager/raft's RaftNode, a fake
// in tests).
//
// Thread safety: a Component: runs on the leader loop thread only.
#pragma once

#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "manager/leader/loop.h"
#include "manager/raft/node.h"

namespace shoal::manager::leader {

class RaftMembership {
 public:
  virtual ~RaftMembership() = default;
  // Raft id of this (the leader's) member.
  virtual uint64_t self() const = 0;
  virtual absl::Status RemoveMember(uint64_t raft_id) = 0;
  // Hands leadership to another reachable voter; the caller stops being the leader.
  virtual absl::Status TransferLeadership() = 0;
};

// RaftMembership over this manager's raft::RaftNode (leadership goes to the first other voter).
class RaftNodeMembership final : public RaftMembership {
 public:
  explicit RaftNodeMembership(raft::RaftNode& node, absl::Duration timeout = absl::Seconds(5))
      : node_(node), timeout_(timeout) {}
  uint64_t self() const override { return node_.id(); }
  absl::Status RemoveMember(uint64_t raft_id) override {
    return node_.RemoveMember(raft_id, timeout_);
  }
  absl::Status TransferLeadership() override;

 private:
  raft::RaftNode& node_;
  absl::Duration timeout_;
};

class RoleManager final : public Component {
 public:
  explicit RoleManager(RaftMembership& raft) : raft_(raft) {}
  const char* name() const override { return "roles"; }
  void Init(const store::ReadView& view) override;
  void Observe(const store::Commit& commit) override;
  absl::Status Step(store::MemoryStore& store, absl::Time now) override;

 private:
  absl::Status Reconcile(store::MemoryStore& store, const api::v1::Node& node);
  RaftMembership& raft_;
  std::set<std::string> pending_;  // nodes whose desired role differs from their role
};

}  // namespace shoal::manager::leader
