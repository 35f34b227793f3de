// The Swarm gRPC service (api/swarm.proto) on shoald's local socket: a thin translation of
// Daemon's init/join/leave/info into gRPC (absl status codes map one to one).
#pragma once

#include "api/swarm.grpc.pb.h"
#include "daemon/daemon.h"

namespace shoal::daemon {

class SwarmService final : public api::Swarm::Service {
 public:
  explicit SwarmService(Daemon& daemon) : daemon_(daemon) {}

  grpc::Status Init(grpc::ServerContext*, const api::SwarmInitRequest* req,
                    api::SwarmInitResponse* resp) override;
  grpc::Status Join(grpc::ServerContext*, const api::SwarmJoinRequest* req,
                    api::SwarmJoinResponse* resp) override;
  grpc::Status Leave(grpc::ServerContext*, const api::SwarmLeaveRequest* req,
                     api::SwarmLeaveResponse* resp) override;
  grpc::Status Info(grpc::ServerContext*, const api::SwarmInfoRequest* req,
                    api::SwarmInfoResponse* resp) override;

 private:
  Daemon& daemon_;
};

}  // namespace shoal::daemon
