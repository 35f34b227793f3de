#include "manager/node/forwarding_control.h"

#include <chrono>

#include "absl/strings/str_cat.h"
#include "manager/ca/authz.h"

namespace shoal::manager::node {

std::shared_ptr<grpc::Channel> LeaderChannel::To(const std::string& address) {
  std::lock_guard<std::mutex> lock(mu_);
  if (channel_ == nullptr || address_ != address) {
    channel_ = ca::DialManager(address, ca::ChannelCredentials(tls_));
    address_ = address;
  }
  return channel_;
}

grpc::Status CheckForwardable(const grpc::ServerContext& ctx, const LeaderRef& leader) {
  if (ctx.client_metadata().count(kForwardedForMetadata) != 0) {
    return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                        "leadership moved while the call was being forwarded; retry");
  }
  if (leader.address.empty()) {
    return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                        "no raft leader is known right now (election in progress); retry");
  }
  return grpc::Status::OK;
}

grpc::Status AnnotateForwarded(const grpc::Status& s, const std::string& address) {
  if (s.error_code() != grpc::StatusCode::UNAVAILABLE) return s;
  return grpc::Status(s.error_code(), absl::StrCat("forwarding to the leader at ", address, ": ",
                                                   s.error_message()));
}

grpc::Status ForwardingControl::Route(grpc::ServerContext* ctx, const LocalCall& local,
                                      const RemoteCall& remote) {
  Leader leader = leader_();
  if (leader.is_self) return local();
  if (grpc::Status s = CheckForwardable(*ctx, leader); !s.ok()) return s;
  ca::Caller caller = ca::CallerOf(*ctx);
  grpc::ClientContext out;
  out.set_deadline(ctx->deadline());
  out.AddMetadata(kForwardedForMetadata,
                  caller.node ? caller.node->node_id : std::string(caller.local ? "local" : "-"));
  api::Control::Stub stub(channel_->To(leader.address));
  return AnnotateForwarded(remote(stub, &out), leader.address);
}

}  // namespace shoal::manager::node
