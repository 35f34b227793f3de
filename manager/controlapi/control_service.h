// The Control gRPC service (api/control.proto) over the replicated store.
//
// Implemented: services, networks, secrets, configs (create/get/list/update/remove as the
// proto defines them), tasks (get/list/remove), nodes (get/list/update/remove), the cluster
// object (get/update with join-token rotation) and Watch. Every spec is validated first
// (validate.h) and errors carry the canonical code and name the field. Lists are filtered and
// paginated by id (page_size default 1000, next_page_token = last id returned), so no response
// depends on a message-size cap. Secret data, the CA key and unlock keys are never returned.
// Nodes: changing desired_role marks the certificate for renewal (the node renews and gets the
// new role); demoting a manager follows SwarmKit's rule (CheckDemotion below); removing a node
// requires it to be a worker and not READY (unless force) and
// blacklists its certificate until it expires (manager/ca/authz.h refuses it from then on).
// Who may call: the access policy in manager/ca/authz.h (managers only, or the local socket).
// Forwarding to the leader: not here — writes go through the store's proposer.
//
// Thread safety: gRPC calls methods concurrently; the store is thread-safe and the service
// holds no other state.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "api/control.grpc.pb.h"
#include "base/clock.h"
#include "base/random.h"
#include "manager/store/store.h"

namespace shoal::manager::controlapi {

namespace api = ::shoal::api::v1;

// A raft member as the serving manager (the leader) sees it right now: SwarmKit's raft
// membership plus transport.Active.
struct RaftMemberView {
  uint64_t raft_id = 0;
  std::string node_id;
  bool self = false;       // the manager serving the call
  bool reachable = false;  // heard from within the election timeout
};
using RaftMembersFn = std::function<std::vector<RaftMemberView>()>;

class ControlService final : public api::Control::Service {
 public:
  // `clock` (optional; real time when null) dates certificate blacklist entries.
  ControlService(store::MemoryStore& store, base::Random& random, base::Clock* clock = nullptr)
      : store_(store), random_(random), clock_(clock) {}

  // The live raft membership for the demotion check (set before serving). Without it the
  // members are the store's managers and their published manager_status (the leader is
  // reachable, others as recorded).
  void SetRaftMembers(RaftMembersFn members) { raft_members_ = std::move(members); }

  grpc::Status CreateService(grpc::ServerContext*, const api::CreateServiceRequest*,
                             api::CreateServiceResponse*) override;
  grpc::Status GetService(grpc::ServerContext*, const api::GetServiceRequest*,
                          api::GetServiceResponse*) override;
  grpc::Status ListServices(grpc::ServerContext*, const api::ListServicesRequest*,
                            api::ListServicesResponse*) override;
  grpc::Status UpdateService(grpc::ServerContext*, const api::UpdateServiceRequest*,
                             api::UpdateServiceResponse*) override;
  grpc::Status RemoveService(grpc::ServerContext*, const api::RemoveServiceRequest*,
                             api::RemoveServiceResponse*) override;

  grpc::Status CreateNetwork(grpc::ServerContext*, const api::CreateNetworkRequest*,
                             api::CreateNetworkResponse*) override;
  grpc::Status GetNetwork(grpc::ServerContext*, const api::GetNetworkRequest*,
                          api::GetNetworkResponse*) override;
  grpc::Status ListNetworks(grpc::ServerContext*, const api::ListNetworksRequest*,
                            api::ListNetworksResponse*) override;
  grpc::Status RemoveNetwork(grpc::ServerContext*, const api::RemoveNetworkRequest*,
                             api::RemoveNetworkResponse*) override;

  grpc::Status CreateSecret(grpc::ServerContext*, const api::CreateSecretRequest*,
                            api::CreateSecretResponse*) override;
  grpc::Status GetSecret(grpc::ServerContext*, const api::GetSecretRequest*,
                         api::GetSecretResponse*) override;
  grpc::Status ListSecrets(grpc::ServerContext*, const api::ListSecretsRequest*,
                           api::ListSecretsResponse*) override;
  grpc::Status RemoveSecret(grpc::ServerContext*, const api::RemoveSecretRequest*,
                            api::RemoveSecretResponse*) override;

  grpc::Status CreateConfig(grpc::ServerContext*, const api::CreateConfigRequest*,
                            api::CreateConfigResponse*) override;
  grpc::Status GetConfig(grpc::ServerContext*, const api::GetConfigRequest*,
                         api::GetConfigResponse*) override;
  grpc::Status ListConfigs(grpc::ServerContext*, const api::ListConfigsRequest*,
                           api::ListConfigsResponse*) override;
  grpc::Status RemoveConfig(grpc::ServerContext*, const api::RemoveConfigRequest*,
                            api::RemoveConfigResponse*) override;

  grpc::Status GetTask(grpc::ServerContext*, const api::GetTaskRequest*,
                       api::GetTaskResponse*) override;
  grpc::Status ListTasks(grpc::ServerContext*, const api::ListTasksRequest*,
                         api::ListTasksResponse*) override;
  grpc::Status GetNode(grpc::ServerContext*, const api::GetNodeRequest*,
                       api::GetNodeResponse*) override;
  grpc::Status ListNodes(grpc::ServerContext*, const api::ListNodesRequest*,
                         api::ListNodesResponse*) override;
  grpc::Status UpdateNode(grpc::ServerContext*, const api::UpdateNodeRequest*,
                          api::UpdateNodeResponse*) override;
  grpc::Status RemoveNode(grpc::ServerContext*, const api::RemoveNodeRequest*,
                          api::RemoveNodeResponse*) override;
  grpc::Status RemoveTask(grpc::ServerContext*, const api::RemoveTaskRequest*,
                          api::RemoveTaskResponse*) override;

  grpc::Status GetCluster(grpc::ServerContext*, const api::GetClusterRequest*,
                          api::GetClusterResponse*) override;
  grpc::Status UpdateCluster(grpc::ServerContext*, const api::UpdateClusterRequest*,
                             api::UpdateClusterResponse*) override;
  grpc::Status Watch(grpc::ServerContext*, const api::WatchRequest*,
                     grpc::ServerWriter<api::WatchEvent>*) override;

 private:
  absl::Time clock_now() const { return clock_ != nullptr ? clock_->Now() : absl::Now(); }

  store::MemoryStore& store_;
  base::Random& random_;
  base::Clock* clock_;
  RaftMembersFn raft_members_;
};

// Whether `node` (desired role manager) may be demoted, by SwarmKit's rule
// (manager/controlapi/node.go UpdateNode + manager/state/raft/raft.go CanRemoveMember):
//  - FailedPrecondition "attempting to demote the last manager of the swarm" when it is the
//    only node whose role is manager;
//  - FailedPrecondition "can't remove member from the raft: this would result in a loss of
//    quorum" unless reachable >= (members - 1) / 2 + 1, where `members` counts every raft
//    member (the node included) and `reachable` the members other than the node that are the
//    serving manager itself or reachable from it — the quorum of the configuration left after
//    the removal, counting only managers that can vote now.
// Departure: SwarmKit answers NotFound when the node is not (yet) a raft member; here nothing
// is at stake then (e.g. cancelling a promotion whose node never came up), so it is allowed.
absl::Status CheckDemotion(const store::ReadTx& tx, const api::Node& node,
                           const std::vector<RaftMemberView>& members);
// The members as the store records them (no live raft view): managers by role, reachable when
// leader or REACHABLE in manager_status.
std::vector<RaftMemberView> MembersFromStore(const store::ReadTx& tx);

}  // namespace shoal::manager::controlapi
