// Control API on any manager: the leader serves calls itself; a follower forwards each unary
// call to the current leader over mTLS (its own manager certificate) and relays the answer, so
// `shoal` works against whichever manager it talks to. The original caller is passed along in
// the "shoal-forwarded-for" metadata ("local" for the unix socket, else the node id), which the
// leader accepts only from a manager certificate (the access policy guarantees that). A call
// that was already forwarded is never forwarded again (leadership moved meanwhile): it fails
// UNAVAILABLE and the client retries. Watch is served locally (the follower's store is a
// replica and its watch never misses an event).
//
// Thread safety: gRPC calls methods concurrently; LeaderChannel is thread-safe.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "api/control.grpc.pb.h"
#include "manager/ca/authz.h"
#include "manager/ca/tls.h"
#include "manager/controlapi/control_service.h"

namespace shoal::manager::node {

namespace api = ::shoal::api::v1;

using ca::kForwardedForMetadata;

// Where a follower forwards a call. Shared by ForwardingControl and ForwardingNodeCA.
struct LeaderRef {
  bool is_self = false;
  std::string address;  // empty when no leader is known
};

// OK when a call may be forwarded to `leader`; UNAVAILABLE when it was already forwarded once
// (leadership moved meanwhile) or no leader is known. Clients retry either.
grpc::Status CheckForwardable(const grpc::ServerContext& ctx, const LeaderRef& leader);
// An UNAVAILABLE answer of the leader at `address`, saying it came from the forwarding hop.
grpc::Status AnnotateForwarded(const grpc::Status& s, const std::string& address);

// The one channel a manager forwards over (Control and NodeCA share it), dialled with this
// manager's certificate and re-dialled when the leader's address changes. Thread-safe.
class LeaderChannel {
 public:
  explicit LeaderChannel(ca::TlsMaterial tls) : tls_(std::move(tls)) {}
  std::shared_ptr<grpc::Channel> To(const std::string& address);

 private:
  const ca::TlsMaterial tls_;
  std::mutex mu_;
  std::string address_;
  std::shared_ptr<grpc::Channel> channel_;
};

class ForwardingControl final : public api::Control::Service {
 public:
  using Leader = LeaderRef;
  ForwardingControl(controlapi::ControlService& local, std::function<Leader()> leader,
                    std::shared_ptr<LeaderChannel> channel)
      : local_(local), leader_(std::move(leader)), channel_(std::move(channel)) {}

#define SHOAL_FORWARD(Method)                                                    \
  grpc::Status Method(grpc::ServerContext* ctx, const api::Method##Request* req, \
                      api::Method##Response* resp) override {                    \
    return Route(                                                                \
        ctx, [&] { return local_.Method(ctx, req, resp); },                      \
        [&](api::Control::Stub& stub, grpc::ClientContext* out) {                \
          return stub.Method(out, *req, resp);                                   \
        });                                                                      \
  }
  SHOAL_FORWARD(GetNode)
  SHOAL_FORWARD(ListNodes)
  SHOAL_FORWARD(UpdateNode)
  SHOAL_FORWARD(RemoveNode)
  SHOAL_FORWARD(CreateService)
  SHOAL_FORWARD(GetService)
  SHOAL_FORWARD(ListServices)
  SHOAL_FORWARD(UpdateService)
  SHOAL_FORWARD(RemoveService)
  SHOAL_FORWARD(GetTask)
  SHOAL_FORWARD(ListTasks)
  SHOAL_FORWARD(RemoveTask)
  SHOAL_FORWARD(CreateNetwork)
  SHOAL_FORWARD(GetNetwork)
  SHOAL_FORWARD(ListNetworks)
  SHOAL_FORWARD(RemoveNetwork)
  SHOAL_FORWARD(CreateSecret)
  SHOAL_FORWARD(GetSecret)
  SHOAL_FORWARD(ListSecrets)
  SHOAL_FORWARD(RemoveSecret)
  SHOAL_FORWARD(CreateConfig)
  SHOAL_FORWARD(GetConfig)
  SHOAL_FORWARD(ListConfigs)
  SHOAL_FORWARD(RemoveConfig)
  SHOAL_FORWARD(GetCluster)
  SHOAL_FORWARD(UpdateCluster)
#undef SHOAL_FORWARD

  grpc::Status Watch(grpc::ServerContext* ctx, const api::WatchRequest* req,
                     grpc::ServerWriter<api::WatchEvent>* writer) override {
    return local_.Watch(ctx, req, writer);
  }

 private:
  using LocalCall = std::function<grpc::Status()>;
  using RemoteCall = std::function<grpc::Status(api::Control::Stub&, grpc::ClientContext*)>;
  grpc::Status Route(grpc::ServerContext* ctx, const LocalCall& local, const RemoteCall& remote);

  controlapi::ControlService& local_;
  std::function<Leader()> leader_;
  std::shared_ptr<LeaderChannel> channel_;
};

}  // namespace shoal::manager::node
