// Control service: the cluster object, node removal, task removal and Watch.
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "base/status.h"
#include "manager/ca/ca_service.h"
#include "manager/ca/join_token.h"
#include "manager/ca/root_ca.h"
#include "manager/controlapi/control_service.h"
#include "manager/controlapi/resolve.h"

namespace shoal::manager::controlapi {
namespace {

absl::Status Invalid(absl::string_view field, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", why));
}

absl::Duration ToDuration(const google::protobuf::Duration& d) {
  return absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
}

absl::Status ValidateClusterSpec(const api::ClusterSpec& spec) {
  const std::string& name = spec.annotations().name();
  if (!name.empty() && name != ca::kDefaultClusterName) {
    return Invalid("spec.annotations.name", "the cluster is always named \"default\"");
  }
  if (spec.orchestration().task_history_retention_limit() < -1) {
    return Invalid("spec.orchestration.task_history_retention_limit",
                   "must be -1 (unlimited) or at least 0");
  }
  const auto& raft = spec.raft();
  if (raft.election_tick() != 0 || raft.heartbeat_tick() != 0) {
    uint32_t hb = raft.heartbeat_tick() == 0 ? 1 : raft.heartbeat_tick();
    uint32_t el = raft.election_tick() == 0 ? 10 : raft.election_tick();
    if (el <= hb) {
      return Invalid("spec.raft.election_tick", "must be greater than spec.raft.heartbeat_tick");
    }
  }
  if (raft.has_tick_interval() && ToDuration(raft.tick_interval()) <= absl::ZeroDuration()) {
    return Invalid("spec.raft.tick_interval", "must be positive");
  }
  if (spec.dispatcher().has_heartbeat_period() &&
      ToDuration(spec.dispatcher().heartbeat_period()) < absl::Seconds(1)) {
    return Invalid("spec.dispatcher.heartbeat_period", "must be at least 1s");
  }
  if (spec.ca_config().has_node_cert_expiry() &&
      ToDuration(spec.ca_config().node_cert_expiry()) < ca::kMinNodeCertValidity) {
    return Invalid("spec.ca_config.node_cert_expiry", "must be at least 1h");
  }
  return absl::OkStatus();
}

// What clients may see of the cluster: never the CA key or the unlock keys.
api::Cluster Redacted(const api::Cluster& c) {
  api::Cluster out = c;
  out.mutable_root_ca()->clear_ca_key();
  out.clear_unlock_keys();
  return out;
}

}  // namespace

std::vector<RaftMemberView> MembersFromStore(const store::ReadTx& tx) {
  std::vector<RaftMemberView> out;
  for (const auto& n : tx.Find<api::Node>(store::All())) {
    if (n->role() != api::NODE_ROLE_MANAGER) continue;
    RaftMemberView m;
    m.raft_id = n->manager_status().raft_id();
    m.node_id = n->id();
    m.self = n->manager_status().leader();
    m.reachable = n->manager_status().reachability() == api::ManagerStatus::REACHABILITY_REACHABLE;
    out.push_back(m);
  }
  return out;
}

absl::Status CheckDemotion(const store::ReadTx& tx, const api::Node& node,
                           const std::vector<RaftMemberView>& members) {
  size_t managers = 0;
  bool node_is_manager = false;
  for (const auto& n : tx.Find<api::Node>(store::All())) {
    if (n->role() != api::NODE_ROLE_MANAGER) continue;
    ++managers;
    node_is_manager |= n->id() == node.id();
  }
  if (managers == 1 && node_is_manager) {
    return absl::FailedPreconditionError(
        absl::StrCat("attempting to demote the last manager of the swarm (node ", node.id(), ")"));
  }
  bool member = false;
  size_t reachable = 0;
  for (const auto& m : members) {
    if (m.node_id == node.id()) {
      member = true;
      continue;
    }
    if (m.self || m.reachable) ++reachable;
  }
  if (!member) return absl::OkStatus();  // not in raft: no quorum at stake
  const size_t quorum = (members.size() - 1) / 2 + 1;
  if (reachable < quorum) {
    return absl::FailedPreconditionError(absl::StrCat(
        "can't remove member from the raft: this would result in a loss of quorum (demoting node ",
        node.id(), " leaves ", members.size() - 1, " managers, ", reachable, " of them reachable; ",
        quorum, " are needed)"));
  }
  return absl::OkStatus();
}

grpc::Status ControlService::RemoveNode(grpc::ServerContext*, const api::RemoveNodeRequest* req,
                                        api::RemoveNodeResponse*) {
  auto r = store_.Update([&](store::Tx& tx) -> absl::Status {
    ASSIGN_OR_RETURN(auto node, Resolve<api::Node>(tx, req->node_id(), "node"));
    if (node->spec().desired_role() == api::NODE_ROLE_MANAGER ||
        node->role() == api::NODE_ROLE_MANAGER) {
      return absl::FailedPreconditionError(absl::StrCat(
          "node ", node->id(), " is a manager; demote it to a worker before removing it"));
    }
    if (!req->force() && node->status().state() == api::NodeStatus::STATE_READY) {
      return absl::FailedPreconditionError(
          absl::StrCat("node ", node->id(), " is not down and can't be removed (use force)"));
    }
    ASSIGN_OR_RETURN(auto cluster, ca::GetCluster(tx));
    api::Cluster next = *cluster;
    auto& entry = (*next.mutable_blacklisted_certificates())[node->id()];
    // Refused until the certificate expires; a missing/unparsable one is refused for the
    // longest validity a node certificate can have.
    absl::Time expiry = clock_now() + ca::kDefaultNodeCertValidity;
    if (auto root = ca::RootCA::FromPem(cluster->root_ca().ca_cert(), ""); root.ok()) {
      auto id = root->VerifyNodeCertificate(node->certificate().certificate(), clock_now());
      if (id.ok()) expiry = id->not_after;
    }
    entry.mutable_expiry()->set_seconds(absl::ToUnixSeconds(expiry));
    RETURN_IF_ERROR(tx.Update(next));
    return tx.Delete<api::Node>(node->id());
  });
  return ToGrpc(r.status());
}

grpc::Status ControlService::RemoveTask(grpc::ServerContext*, const api::RemoveTaskRequest* req,
                                        api::RemoveTaskResponse*) {
  auto r = store_.Update([&](store::Tx& tx) -> absl::Status {
    if (req->task_id().empty()) return Invalid("task_id", "required");
    if (tx.Get<api::Task>(req->task_id()) == nullptr) {
      return absl::NotFoundError(absl::StrCat("task ", req->task_id(), " not found"));
    }
    return tx.Delete<api::Task>(req->task_id());
  });
  return ToGrpc(r.status());
}

grpc::Status ControlService::GetCluster(grpc::ServerContext*, const api::GetClusterRequest*,
                                        api::GetClusterResponse* resp) {
  auto cluster = ca::GetCluster(store_.View());
  if (!cluster.ok()) return ToGrpc(cluster.status());
  *resp->mutable_cluster() = Redacted(**cluster);
  return grpc::Status::OK;
}

grpc::Status ControlService::UpdateCluster(grpc::ServerContext*,
                                           const api::UpdateClusterRequest* req,
                                           api::UpdateClusterResponse* resp) {
  if (auto s = ValidateClusterSpec(req->spec()); !s.ok()) return ToGrpc(s);
  auto r = store_.Update([&](store::Tx& tx) -> absl::Status {
    ASSIGN_OR_RETURN(auto cluster, ca::GetCluster(tx));
    if (req->cluster_version().index() != cluster->meta().version().index()) {
      return absl::AbortedError(absl::StrCat(
          "update out of sequence: the cluster is at version ", cluster->meta().version().index(),
          ", the update was based on ", req->cluster_version().index()));
    }
    api::Cluster next = *cluster;
    *next.mutable_spec() = req->spec();
    next.mutable_spec()->mutable_annotations()->set_name(ca::kDefaultClusterName);
    auto* tokens = next.mutable_root_ca()->mutable_join_tokens();
    const std::string& digest = cluster->root_ca().ca_cert_hash();
    if (req->rotate_worker_token()) tokens->set_worker(ca::GenerateJoinToken(digest, random_));
    if (req->rotate_manager_token()) tokens->set_manager(ca::GenerateJoinToken(digest, random_));
    return tx.Update(next);
  });
  if (!r.ok()) return ToGrpc(r.status());
  *resp->mutable_cluster() = Redacted(*ca::GetCluster(store_.View()).value());
  return grpc::Status::OK;
}

grpc::Status ControlService::Watch(grpc::ServerContext* ctx, const api::WatchRequest* req,
                                   grpc::ServerWriter<api::WatchEvent>* writer) {
  store::WatchOptions options;
  for (int k : req->kinds()) {
    switch (k) {
      case api::WatchRequest::KIND_NODE:
        options.kinds.push_back(store::Kind::kNode);
        break;
      case api::WatchRequest::KIND_SERVICE:
        options.kinds.push_back(store::Kind::kService);
        break;
      case api::WatchRequest::KIND_TASK:
        options.kinds.push_back(store::Kind::kTask);
        break;
      case api::WatchRequest::KIND_NETWORK:
        options.kinds.push_back(store::Kind::kNetwork);
        break;
      case api::WatchRequest::KIND_CLUSTER:
        options.kinds.push_back(store::Kind::kCluster);
        break;
      case api::WatchRequest::KIND_SECRET:
        options.kinds.push_back(store::Kind::kSecret);
        break;
      case api::WatchRequest::KIND_CONFIG:
        options.kinds.push_back(store::Kind::kConfig);
        break;
      default:
        return ToGrpc(Invalid("kinds", absl::StrCat("unknown kind ", k)));
    }
  }
  if (req->has_resume_from()) options.from_version = req->resume_from().index();
  auto watcher = store_.Watch(options);
  if (!watcher.ok()) return ToGrpc(watcher.status());
  while (!ctx->IsCancelled()) {
    auto commit = (*watcher)->Next(absl::Milliseconds(200));
    if (absl::IsDeadlineExceeded(commit.status())) continue;
    if (!commit.ok()) return ToGrpc(commit.status());
    for (const store::Event& e : commit->events) {
      api::WatchEvent out;
      out.set_action(e.type == store::EventType::kCreate   ? api::WatchEvent::ACTION_CREATE
                     : e.type == store::EventType::kUpdate ? api::WatchEvent::ACTION_UPDATE
                                                           : api::WatchEvent::ACTION_REMOVE);
      out.mutable_version()->set_index(e.version);
      if (auto* n = e.Get<api::Node>()) *out.mutable_node() = *n;
      if (auto* s = e.Get<api::Service>()) *out.mutable_service() = *s;
      if (auto* t = e.Get<api::Task>()) *out.mutable_task() = *t;
      if (auto* n = e.Get<api::Network>()) *out.mutable_network() = *n;
      if (auto* c = e.Get<api::Cluster>()) *out.mutable_cluster() = Redacted(*c);
      if (auto* s = e.Get<api::Secret>()) {
        *out.mutable_secret() = *s;
        out.mutable_secret()->mutable_spec()->clear_data();
      }
      if (auto* c = e.Get<api::Config>()) *out.mutable_config() = *c;
      if (!writer->Write(out)) return grpc::Status::OK;  // client went away
    }
  }
  return grpc::Status::OK;
}

}  // namespace shoal::manager::controlapi
