#include "manager/node/membership_service.h"

#include <functional>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "manager/ca/authz.h"

namespace shoal::manager::node {
namespace {

grpc::Status ToGrpc(const absl::Status& s) {
  if (s.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), std::string(s.message()));
}

constexpr absl::Duration kMembershipTimeout = absl::Seconds(10);

// Raft takes one configuration change at a time: while another is still being applied (a
// joiner just added, a caught-up learner being promoted, a new leader's no-op) a change is
// refused with FailedPrecondition "... not applied yet; retry" (manager/raft/core_leader.cc;
// matched by its text, the only thing that tells it from other refusals). The leader waits its
// turn instead of failing the join.
absl::Status OneConfChange(raft::RaftNode& raft, const std::function<absl::Status()>& change) {
  const absl::Time deadline = absl::Now() + kMembershipTimeout;
  for (;;) {
    absl::Status s = change();
    if (s.code() != absl::StatusCode::kFailedPrecondition ||
        !absl::StrContains(s.message(), "not applied yet") || !raft.IsLeader() ||
        absl::Now() >= deadline) {
      return s;
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
}

}  // namespace

grpc::Status MembershipService::NotLeader(grpc::ServerContext* ctx) const {
  raft::NodeStatus st = raft_.Status();
  std::string leader_addr;
  for (const auto& m : st.members) {
    if (m.raft_id() == st.leader) leader_addr = m.addr();
  }
  if (!leader_addr.empty()) ctx->AddTrailingMetadata(kLeaderAddrMetadata, leader_addr);
  return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                      leader_addr.empty()
                          ? "not the leader; no leader is known right now"
                          : absl::StrCat("not the leader; the leader is at ", leader_addr));
}

grpc::Status MembershipService::Join(grpc::ServerContext* ctx, const api::JoinRequest* req,
                                     api::JoinResponse* resp) {
  ca::Caller caller = ca::CallerOf(*ctx);
  if (!caller.node || caller.node->role != ca::Role::kManager) {
    return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                        "RaftMembership.Join needs a manager certificate");
  }
  if (req->addr().empty()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "addr: the joiner's raft address is "
                        "required");
  }
  if (!raft_.IsLeader()) return NotLeader(ctx);
  raft::NodeStatus st = raft_.Status();
  std::set<uint64_t> used;
  for (const auto& m : st.members) {
    // A manager re-joining (e.g. after losing its state) gets its old member replaced.
    if (m.node_id() == caller.node->node_id) {
      auto s =
          OneConfChange(raft_, [&] { return raft_.RemoveMember(m.raft_id(), kMembershipTimeout); });
      if (!s.ok()) return ToGrpc(s);
    }
    used.insert(m.raft_id());
  }
  uint64_t id = 0;
  while (id == 0 || used.contains(id)) id = random_.Uint64();
  api::RaftMember member;
  member.set_raft_id(id);
  member.set_node_id(caller.node->node_id);
  member.set_addr(req->addr());
  auto added = OneConfChange(raft_, [&] { return raft_.AddMember(member, kMembershipTimeout); });
  if (!added.ok()) return ToGrpc(added);
  resp->set_raft_id(id);
  for (const auto& m : raft_.Status().members) *resp->add_members() = m;
  return grpc::Status::OK;
}

grpc::Status MembershipService::Leave(grpc::ServerContext* ctx, const api::LeaveRequest* req,
                                      api::LeaveResponse*) {
  ca::Caller caller = ca::CallerOf(*ctx);
  if (!caller.node || caller.node->role != ca::Role::kManager) {
    return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                        "RaftMembership.Leave needs a manager certificate");
  }
  if (!raft_.IsLeader()) return NotLeader(ctx);
  for (const auto& m : raft_.Status().members) {
    if (m.raft_id() != req->node().raft_id()) continue;
    if (m.node_id() != caller.node->node_id) {
      return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                          "a manager can only remove its own raft member");
    }
    return ToGrpc(
        OneConfChange(raft_, [&] { return raft_.RemoveMember(m.raft_id(), kMembershipTimeout); }));
  }
  return grpc::Status(grpc::StatusCode::NOT_FOUND,
                      absl::StrCat("raft member ", req->node().raft_id(), " not found"));
}

}  // namespace shoal::manager::node
