// The Dispatcher gRPC service (api/dispatcher.proto) over a Dispatcher (dispatcher.h).
//
// The caller's node id comes from an IdentityFn, never from the request:
//   CertificateIdentity()   the CN of the verified client certificate (mTLS; the manager/ca
//                           Authorizer has checked role and cluster before the handler runs)
//   MetadataIdentity(key)   the value of a request metadata entry — trusts the client: for
//                           in-process tests and benchmarks only
// A call without an identity fails UNAUTHENTICATED. Streams poll their dispatcher stream every
// `poll` (real time) to notice a cancelled call; Session marks the node DISCONNECTED when the
// agent goes away. absl::Status codes map 1:1 onto gRPC codes.
//
// Thread safety: gRPC calls methods concurrently; the Dispatcher is thread-safe.
#pragma once

#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "api/dispatcher.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "manager/dispatcher/dispatcher.h"

namespace shoal::manager::dispatcher {

using IdentityFn = std::function<absl::StatusOr<std::string>(const grpc::ServerContext&)>;

IdentityFn CertificateIdentity();
IdentityFn MetadataIdentity(std::string key = "x-shoal-node-id");

grpc::Status ToGrpc(const absl::Status& status);

class DispatcherService final : public api::Dispatcher::Service {
 public:
  DispatcherService(Dispatcher& dispatcher, IdentityFn identity,
                    absl::Duration poll = absl::Milliseconds(100))
      : d_(dispatcher), identity_(std::move(identity)), poll_(poll) {}

  grpc::Status Session(grpc::ServerContext* ctx, const api::SessionRequest* request,
                       grpc::ServerWriter<api::SessionMessage>* writer) override;
  grpc::Status Heartbeat(grpc::ServerContext* ctx, const api::HeartbeatRequest* request,
                         api::HeartbeatResponse* response) override;
  grpc::Status Assignments(grpc::ServerContext* ctx, const api::AssignmentsRequest* request,
                           grpc::ServerWriter<api::AssignmentsMessage>* writer) override;
  grpc::Status UpdateTaskStatus(grpc::ServerContext* ctx,
                                const api::UpdateTaskStatusRequest* request,
                                api::UpdateTaskStatusResponse* response) override;

 private:
  Dispatcher& d_;
  IdentityFn identity_;
  absl::Duration poll_;
};

}  // namespace shoal::manager::dispatcher
