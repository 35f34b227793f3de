#include "manager/dispatcher/service.h"

#include "absl/strings/str_cat.h"

namespace shoal::manager::dispatcher {

grpc::Status ToGrpc(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

IdentityFn CertificateIdentity() {
  return [](const grpc::ServerContext& ctx) -> absl::StatusOr<std::string> {
    auto auth = ctx.auth_context();
    if (auth != nullptr && auth->IsPeerAuthenticated()) {
      auto cn = auth->FindPropertyValues("x509_common_name");
      if (!cn.empty() && !cn.front().empty())
        return std::string(cn.front().data(), cn.front().size());
    }
    return absl::UnauthenticatedError("no verified node certificate on the call");
  };
}

IdentityFn MetadataIdentity(std::string key) {
  return [key](const grpc::ServerContext& ctx) -> absl::StatusOr<std::string> {
    auto it = ctx.client_metadata().find(key);
    if (it == ctx.client_metadata().end() || it->second.empty()) {
      return absl::UnauthenticatedError(absl::StrCat("no '", key, "' metadata on the call"));
    }
    return std::string(it->second.data(), it->second.size());
  };
}

grpc::Status DispatcherService::Session(grpc::ServerContext* ctx,
                                        const api::SessionRequest* request,
                                        grpc::ServerWriter<api::SessionMessage>* writer) {
  auto node = identity_(*ctx);
  if (!node.ok()) return ToGrpc(node.status());
  auto stream = d_.OpenSession(*node, *request, ctx->peer());
  if (!stream.ok()) return ToGrpc(stream.status());
  while (true) {
    if (ctx->IsCancelled()) {
      (*stream)->Disconnected();
      return grpc::Status::CANCELLED;
    }
    auto msg = (*stream)->Next(poll_);
    if (!msg.ok()) return ToGrpc(msg.status());
    if (msg->has_value() && !writer->Write(**msg)) {
      (*stream)->Disconnected();
      return grpc::Status(grpc::StatusCode::UNAVAILABLE, "session stream closed by the agent");
    }
  }
}

grpc::Status DispatcherService::Heartbeat(grpc::ServerContext* ctx,
                                          const api::HeartbeatRequest* request,
                                          api::HeartbeatResponse* response) {
  auto node = identity_(*ctx);
  if (!node.ok()) return ToGrpc(node.status());
  auto period = d_.Heartbeat(*node, request->session_id());
  if (!period.ok()) return ToGrpc(period.status());
  int64_t ns = absl::ToInt64Nanoseconds(*period);
  response->mutable_period()->set_seconds(ns / 1'000'000'000);
  response->mutable_period()->set_nanos(static_cast<int32_t>(ns % 1'000'000'000));
  return grpc::Status::OK;
}

grpc::Status DispatcherService::Assignments(grpc::ServerContext* ctx,
                                            const api::AssignmentsRequest* request,
                                            grpc::ServerWriter<api::AssignmentsMessage>* writer) {
  auto node = identity_(*ctx);
  if (!node.ok()) return ToGrpc(node.status());
  auto stream = d_.OpenAssignments(*node, request->session_id());
  if (!stream.ok()) return ToGrpc(stream.status());
  while (!ctx->IsCancelled()) {
    auto msg = (*stream)->Next(poll_);
    if (!msg.ok()) return ToGrpc(msg.status());
    if (msg->has_value() && !writer->Write(**msg)) {
      return grpc::Status(grpc::StatusCode::UNAVAILABLE, "assignments stream closed by the agent");
    }
  }
  return grpc::Status::CANCELLED;
}

grpc::Status DispatcherService::UpdateTaskStatus(grpc::ServerContext* ctx,
                                                 const api::UpdateTaskStatusRequest* request,
                                                 api::UpdateTaskStatusResponse*) {
  auto node = identity_(*ctx);
  if (!node.ok()) return ToGrpc(node.status());
  return ToGrpc(d_.UpdateTaskStatus(*node, *request));
}

}  // namespace shoal::manager::dispatcher
