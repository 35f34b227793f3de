// RaftMembership gRPC service over a RaftNode: a manager that joined the cluster's CA (it holds
// a manager certificate, checked by the access policy) asks the leader to add it to raft.
//
// Join: leader only — on a follower it fails FAILED_PRECONDITION and names the leader's address
// in the message and in the "shoal-leader-addr" trailing metadata so the joiner can retry
// there. The leader picks a fresh raft id, adds the member as a learner (promoted once caught
// up) with the caller's node id (from its certificate) and returns the member list.
// Leave: removes the caller's own raft member (a manager can only remove itself).
#pragma once

#include <functional>
#include <string>

#include "api/raft.grpc.pb.h"
#include "base/random.h"
#include "manager/raft/node.h"

namespace shoal::manager::node {

namespace api = ::shoal::api::v1;

inline constexpr char kLeaderAddrMetadata[] = "shoal-leader-addr";

class MembershipService final : public api::RaftMembership::Service {
 public:
  MembershipService(raft::RaftNode& raft, base::Random& random) : raft_(raft), random_(random) {}
  grpc::Status Join(grpc::ServerContext* ctx, const api::JoinRequest* req,
                    api::JoinResponse* resp) override;
  grpc::Status Leave(grpc::ServerContext* ctx, const api::LeaveRequest* req,
                     api::LeaveResponse* resp) override;

 private:
  grpc::Status NotLeader(grpc::ServerContext* ctx) const;
  raft::RaftNode& raft_;
  base::Random& random_;
};

}  // namespace shoal::manager::node
