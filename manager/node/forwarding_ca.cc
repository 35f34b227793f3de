#include "manager/node/forwarding_ca.h"

namespace shoal::manager::node {

grpc::Status ForwardingNodeCA::IssueNodeCertificate(grpc::ServerContext* ctx,
                                                    const api::IssueNodeCertificateRequest* req,
                                                    api::IssueNodeCertificateResponse* resp) {
  ForwardingControl::Leader leader = leader_();
  ca::Caller caller = ca::CallerOf(*ctx);
  // A join (token) or a renewal (the caller's certificate); anything else is the local
  // service's to refuse.
  const bool renewal = req->token().empty() && caller.node.has_value();
  if (leader.is_self || (req->token().empty() && !renewal)) {
    return local_.IssueNodeCertificate(ctx, req, resp);
  }
  if (grpc::Status s = CheckForwardable(*ctx, leader); !s.ok()) return s;
  grpc::ClientContext out;
  out.set_deadline(ctx->deadline());
  // The leader renews the node named here (it trusts a manager certificate to name it); a
  // joiner has no identity yet.
  out.AddMetadata(kForwardedForMetadata, renewal ? caller.node->node_id : std::string("-"));
  api::NodeCA::Stub stub(channel_->To(leader.address));
  return AnnotateForwarded(stub.IssueNodeCertificate(&out, *req, resp), leader.address);
}

// Read on the leader when one is known: it wrote the certificate a moment ago, and this
// replica may still hold the node's previous certificate (a renewal) or no node at all (a
// join). The local replica answers on the leader, for a relayed call, and when no leader is
// known.
grpc::Status ForwardingNodeCA::NodeCertificateStatus(grpc::ServerContext* ctx,
                                                     const api::NodeCertificateStatusRequest* req,
                                                     api::NodeCertificateStatusResponse* resp) {
  ForwardingControl::Leader leader = leader_();
  if (leader.is_self || !CheckForwardable(*ctx, leader).ok()) {
    return local_.NodeCertificateStatus(ctx, req, resp);
  }
  grpc::ClientContext out;
  out.set_deadline(ctx->deadline());
  out.AddMetadata(kForwardedForMetadata, "-");
  api::NodeCA::Stub stub(channel_->To(leader.address));
  return AnnotateForwarded(stub.NodeCertificateStatus(&out, *req, resp), leader.address);
}

}  // namespace shoal::manager::node
