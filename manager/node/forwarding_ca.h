// NodeCA on any manager: a join (IssueNodeCertificate with a join token) reaching a follower is
// forwarded to the leader, which checks the token against the current cluster object and
// writes the new Node (only the leader writes). `swarm join` therefore works through any
// manager, and a token rotated a moment ago is refused everywhere: the leader judges it.
// Renewals (no token: the caller's certificate is the identity) reaching a follower are
// forwarded too, naming the node in the "shoal-forwarded-for" metadata; the leader trusts that
// name only from a manager certificate (ca::ForwardedNodeId). NodeCertificateStatus is read on
// the leader when one is known, since this replica may not have applied the new certificate yet.
//
// Thread safety: gRPC calls methods concurrently; LeaderChannel is thread-safe.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "api/ca.grpc.pb.h"
#include "manager/ca/ca_service.h"
#include "manager/ca/tls.h"
#include "manager/node/forwarding_control.h"

namespace shoal::manager::node {

class ForwardingNodeCA final : public api::NodeCA::Service {
 public:
  ForwardingNodeCA(ca::NodeCAService& local, std::function<ForwardingControl::Leader()> leader,
                   std::shared_ptr<LeaderChannel> channel)
      : local_(local), leader_(std::move(leader)), channel_(std::move(channel)) {}

  grpc::Status IssueNodeCertificate(grpc::ServerContext* ctx,
                                    const api::IssueNodeCertificateRequest* req,
                                    api::IssueNodeCertificateResponse* resp) override;
  grpc::Status NodeCertificateStatus(grpc::ServerContext* ctx,
                                     const api::NodeCertificateStatusRequest* req,
                                     api::NodeCertificateStatusResponse* resp) override;

 private:
  ca::NodeCAService& local_;
  std::function<ForwardingControl::Leader()> leader_;
  std::shared_ptr<LeaderChannel> channel_;
};

}  // namespace shoal::manager::node
