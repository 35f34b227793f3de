#include "daemon/swarm_service.h"

namespace shoal::daemon {
namespace {

grpc::Status ToGrpc(const absl::Status& s) {
  if (s.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), std::string(s.message()));
}

template <typename T>
grpc::Status Fill(absl::StatusOr<T> r, T* out) {
  if (!r.ok()) return ToGrpc(r.status());
  *out = *std::move(r);
  return grpc::Status::OK;
}

}  // namespace

grpc::Status SwarmService::Init(grpc::ServerContext*, const api::SwarmInitRequest* req,
                                api::SwarmInitResponse* resp) {
  return Fill(daemon_.Init(*req), resp);
}

grpc::Status SwarmService::Join(grpc::ServerContext*, const api::SwarmJoinRequest* req,
                                api::SwarmJoinResponse* resp) {
  return Fill(daemon_.Join(*req), resp);
}

grpc::Status SwarmService::Leave(grpc::ServerContext*, const api::SwarmLeaveRequest* req,
                                 api::SwarmLeaveResponse*) {
  return ToGrpc(daemon_.Leave(*req));
}

grpc::Status SwarmService::Info(grpc::ServerContext*, const api::SwarmInfoRequest*,
                                api::SwarmInfoResponse* resp) {
  *resp = daemon_.Info();
  return grpc::Status::OK;
}

}  // namespace shoal::daemon
