// The Control API on shoald's local socket. The manager serves Control on its own internal
// unix socket (manager/node/manager.h); this service relays every call there, so the CLI needs
// one socket. When the node is not a manager it answers FAILED_PRECONDITION with what to do.
//
// Thread safety: gRPC calls methods concurrently; `target` must be thread-safe.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "api/control.grpc.pb.h"

namespace shoal::daemon {

namespace api = ::shoal::api::v1;

class ControlProxy final : public api::Control::Service {
 public:
  struct Target {
    std::shared_ptr<api::Control::Stub> stub;  // null: not a manager
    std::string why_not;                       // the error text when stub is null
  };
  explicit ControlProxy(std::function<Target()> target) : target_(std::move(target)) {}

#define SHOAL_PROXY(Method)                                                                  \
  grpc::Status Method(grpc::ServerContext* ctx, const api::Method##Request* req,            \
                      api::Method##Response* resp) override {                               \
    return Relay(ctx, [&](api::Control::Stub& stub, grpc::ClientContext* out) {             \
      return stub.Method(out, *req, resp);                                                  \
    });                                                                                     \
  }
  SHOAL_PROXY(GetNode)
  SHOAL_PROXY(ListNodes)
  SHOAL_PROXY(UpdateNode)
  SHOAL_PROXY(RemoveNode)
  SHOAL_PROXY(CreateService)
  SHOAL_PROXY(GetService)
  SHOAL_PROXY(ListServices)
  SHOAL_PROXY(UpdateService)
  SHOAL_PROXY(RemoveService)
  SHOAL_PROXY(GetTask)
  SHOAL_PROXY(ListTasks)
  SHOAL_PROXY(RemoveTask)
  SHOAL_PROXY(CreateNetwork)
  SHOAL_PROXY(GetNetwork)
  SHOAL_PROXY(ListNetworks)
  SHOAL_PROXY(RemoveNetwork)
  SHOAL_PROXY(CreateSecret)
  SHOAL_PROXY(GetSecret)
  SHOAL_PROXY(ListSecrets)
  SHOAL_PROXY(RemoveSecret)
  SHOAL_PROXY(CreateConfig)
  SHOAL_PROXY(GetConfig)
  SHOAL_PROXY(ListConfigs)
  SHOAL_PROXY(RemoveConfig)
  SHOAL_PROXY(GetCluster)
  SHOAL_PROXY(UpdateCluster)
#undef SHOAL_PROXY

  grpc::Status Watch(grpc::ServerContext* ctx, const api::WatchRequest* req,
                     grpc::ServerWriter<api::WatchEvent>* writer) override;

 private:
  using Call = std::function<grpc::Status(api::Control::Stub&, grpc::ClientContext*)>;
  grpc::Status Relay(grpc::ServerContext* ctx, const Call& call);

  std::function<Target()> target_;
};

}  // namespace shoal::daemon
