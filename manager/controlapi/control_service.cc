#include "manager/controlapi/control_service.h"

#include <algorithm>
#include <optional>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/status.h"
#include "manager/controlapi/resolve.h"
#include "manager/controlapi/validate.h"

namespace shoal::manager::controlapi {
namespace {

constexpr uint32_t kDefaultPageSize = 1000;

const std::string& NameOf(const api::Service& o) { return o.spec().annotations().name(); }
const std::string& NameOf(const api::Network& o) { return o.spec().annotations().name(); }
const std::string& NameOf(const api::Secret& o) { return o.spec().annotations().name(); }
const std::string& NameOf(const api::Config& o) { return o.spec().annotations().name(); }
const std::string& NameOf(const api::Node& o) {
  return o.spec().annotations().name().empty() ? o.description().hostname()
                                               : o.spec().annotations().name();
}
const std::string& NameOf(const api::Task& o) { return o.annotations().name(); }

template <typename T>
const google::protobuf::Map<std::string, std::string>& LabelsOf(const T& o) {
  return o.spec().annotations().labels();
}
template <>
const google::protobuf::Map<std::string, std::string>& LabelsOf(const api::Task& o) {
  return o.annotations().labels();
}

template <typename T>
bool Matches(const T& o, const api::ListFilters& f) {
  if (!f.names().empty() &&
      std::find(f.names().begin(), f.names().end(), NameOf(o)) == f.names().end()) {
    return false;
  }
  if (!f.name_prefixes().empty() &&
      std::none_of(f.name_prefixes().begin(), f.name_prefixes().end(),
                   [&](const std::string& p) { return absl::StartsWith(NameOf(o), p); })) {
    return false;
  }
  if (!f.id_prefixes().empty() &&
      std::none_of(f.id_prefixes().begin(), f.id_prefixes().end(),
                   [&](const std::string& p) { return absl::StartsWith(o.id(), p); })) {
    return false;
  }
  for (const auto& [k, v] : f.labels()) {
    auto it = LabelsOf(o).find(k);
    if (it == LabelsOf(o).end() || (!v.empty() && it->second != v)) return false;
  }
  if constexpr (std::is_same_v<T, api::Task>) {
    auto in = [](const auto& list, const auto& v) {
      return list.empty() || std::find(list.begin(), list.end(), v) != list.end();
    };
    if (!in(f.service_ids(), o.service_id()) || !in(f.node_ids(), o.node_id())) return false;
    if (!f.desired_states().empty() &&
        std::find(f.desired_states().begin(), f.desired_states().end(), o.desired_state()) ==
            f.desired_states().end()) {
      return false;
    }
  }
  if constexpr (std::is_same_v<T, api::Node>) {
    if (!f.roles().empty() &&
        std::find(f.roles().begin(), f.roles().end(), o.role()) == f.roles().end()) {
      return false;
    }
  }
  return true;
}

// Objects in id order after `page.page_token`, at most page_size of them.
template <typename T>
std::vector<std::shared_ptr<const T>> Page(const store::ReadView& view, const api::ListFilters& f,
                                           const api::PageRequest& page, std::string* next) {
  const uint32_t size = page.page_size() == 0 ? kDefaultPageSize : page.page_size();
  std::vector<std::shared_ptr<const T>> out;
  next->clear();
  view.ForEach<T>(store::All(), [&](const std::shared_ptr<const T>& o) {
    if (!page.page_token().empty() && o->id() <= page.page_token()) return true;
    if (!Matches(*o, f)) return true;
    if (out.size() == size) {
      *next = out.back()->id();
      return false;
    }
    out.push_back(o);
    return true;
  });
  return out;
}

api::Secret Redacted(const api::Secret& s) {
  api::Secret out = s;
  out.mutable_spec()->clear_data();
  return out;
}

}  // namespace

// ---- services ----

grpc::Status ControlService::CreateService(grpc::ServerContext*,
                                           const api::CreateServiceRequest* req,
                                           api::CreateServiceResponse* resp) {
  if (auto s = ValidateServiceSpec(req->spec()); !s.ok()) return ToGrpc(s);
  api::Service svc;
  svc.set_id(base::NewId(random_));
  *svc.mutable_spec() = req->spec();
  svc.set_spec_version(1);
  auto r = store_.Update([&](store::Tx& tx) -> absl::Status {
    // Network references are resolved to ids, so later renames cannot re-target them.
    for (auto& att : *svc.mutable_spec()->mutable_task()->mutable_networks()) {
      auto net = Resolve<api::Network>(tx, att.target(), "network");
      if (!net.ok()) return base::Annotate(net.status(), "spec.task.networks");
      att.set_target((*net)->id());
    }
    if (!tx.Find<api::Service>(store::ByName(NameOf(svc))).empty()) {
      return absl::AlreadyExistsError(
          absl::StrCat("service name '", NameOf(svc), "' is already in use"));
    }
    return tx.Create(svc);
  });
  if (!r.ok()) return ToGrpc(r.status());
  *resp->mutable_service() = *store_.View().Get<api::Service>(svc.id());
  return grpc::Status::OK;
}

grpc::Status ControlService::GetService(grpc::ServerContext*, const api::GetServiceRequest* req,
                                        api::GetServiceResponse* resp) {
  auto s = Resolve<api::Service>(store_.View(), req->service_id(), "service");
  if (!s.ok()) return ToGrpc(s.status());
  *resp->mutable_service() = **s;
  return grpc::Status::OK;
}

grpc::Status ControlService::ListServices(grpc::ServerContext*, const api::ListServicesRequest* req,
                                          api::ListServicesResponse* resp) {
  for (const auto& s : Page<api::Service>(store_.View(), req->filters(), req->page(),
                                          resp->mutable_next_page_token())) {
    *resp->add_services() = *s;
  }
  return grpc::Status::OK;
}

grpc::Status ControlService::UpdateService(grpc::ServerContext*,
                                           const api::UpdateServiceRequest* req,
                                           api::UpdateServiceResponse* resp) {
  std::string id;
  auto r = store_.Update([&](store::Tx& tx) -> absl::Status {
    ASSIGN_OR_RETURN(auto current, Resolve<api::Service>(tx, req->service_id(), "service"));
    id = current->id();
    if (req->service_version().index() != current->meta().version().index()) {
      return absl::AbortedError(absl::StrCat("update out of sequence: service ", NameOf(*current),
                                             " is at version ", current->meta().version().index(),
                                             ", the update was based on ",
                                             req->service_version().index()));
    }
    api::Service next = *current;
    if (req->rollback()) {
      if (!current->has_previous_spec()) {
        return absl::FailedPreconditionError(
            absl::StrCat("service ", NameOf(*current), " does not have a previous spec"));
      }
      *next.mutable_spec() = current->previous_spec();
    } else {
      RETURN_IF_ERROR(ValidateServiceUpdate(current->spec(), req->spec()));
      *next.mutable_spec() = req->spec();
      for (auto& att : *next.mutable_spec()->mutable_task()->mutable_networks()) {
        auto net = Resolve<api::Network>(tx, att.target(), "network");
        if (!net.ok()) return base::Annotate(net.status(), "spec.task.networks");
        att.set_target((*net)->id());
      }
    }
    *next.mutable_previous_spec() = current->spec();
    next.set_previous_spec_version(current->spec_version());
    next.set_spec_version(current->spec_version() + 1);
    if (req->rollback()) {
      // Marks the change as a rollback so the orchestrator rolls it out with the rollback
      // config (manager/orchestrator/update.h); unmarked it would roll as an ordinary update.
      api::UpdateStatus* us = next.mutable_update_status();
      us->Clear();
      us->set_state(api::UpdateStatus::STATE_ROLLBACK_STARTED);
      us->set_spec_version(next.spec_version());
      us->set_message("manually requested rollback");
      us->mutable_started_at()->set_seconds(absl::ToUnixSeconds(clock_now()));
    }
    return tx.Update(next);
  });
  if (!r.ok()) return ToGrpc(r.status());
  *resp->mutable_service() = *store_.View().Get<api::Service>(id);
  return grpc::Status::OK;
}

grpc::Status ControlService::RemoveService(grpc::ServerContext*,
                                           const api::RemoveServiceRequest* req,
                                           api::RemoveServiceResponse*) {
  auto r = store_.Update([&](store::Tx& tx) -> absl::Status {
    ASSIGN_OR_RETURN(auto svc, Resolve<api::Service>(tx, req->service_id(), "service"));
    return tx.Delete<api::Service>(svc->id());
  });
  return ToGrpc(r.status());
}

// ---- networks ----

grpc::Status ControlService::CreateNetwork(grpc::ServerContext*,
                                           const api::CreateNetworkRequest* req,
                                           api::CreateNetworkResponse* resp) {
  if (auto s = ValidateNetworkSpec(req->spec()); !s.ok()) return ToGrpc(s);
  api::Network net;
  net.set_id(base::NewId(random_));
  *net.mutable_spec() = req->spec();
  auto r = store_.Update([&](store::Tx& tx) -> absl::Status {
    if (!tx.Find<api::Network>(store::ByName(NameOf(net))).empty()) {
      return absl::AlreadyExistsError(
          absl::StrCat("network name '", NameOf(net), "' is already in use"));
    }
    if (net.spec().ingress()) {
      for (const auto& n : tx.Find<api::Network>(store::All())) {
        if (n->spec().ingress()) {
          return absl::AlreadyExistsError(
              absl::StrCat("spec.ingress: an ingress network already exists (", NameOf(*n), ")"));
        }
      }
    }
    return tx.Create(net);
  });
  if (!r.ok()) return ToGrpc(r.status());
  *resp->mutable_network() = *store_.View().Get<api::Network>(net.id());
  return grpc::Status::OK;
}

grpc::Status ControlService::GetNetwork(grpc::ServerContext*, const api::GetNetworkRequest* req,
                                        api::GetNetworkResponse* resp) {
  auto n = Resolve<api::Network>(store_.View(), req->network_id(), "network");
  if (!n.ok()) return ToGrpc(n.status());
  *resp->mutable_network() = **n;
  return grpc::Status::OK;
}

grpc::Status ControlService::ListNetworks(grpc::ServerContext*, const api::ListNetworksRequest* req,
                                          api::ListNetworksResponse* resp) {
  for (const auto& n : Page<api::Network>(store_.View(), req->filters(), req->page(),
                                          resp->mutable_next_page_token())) {
    *resp->add_networks() = *n;
  }
  return grpc::Status::OK;
}

grpc::Status ControlService::RemoveNetwork(grpc::ServerContext*,
                                           const api::RemoveNetworkRequest* req,
                                           api::RemoveNetworkResponse*) {
  auto r = store_.Update([&](store::Tx& tx) -> absl::Status {
    ASSIGN_OR_RETURN(auto net, Resolve<api::Network>(tx, req->network_id(), "network"));
    for (const auto& s : tx.Find<api::Service>(store::All())) {
      for (const auto& att : s->spec().task().networks()) {
        if (att.target() == net->id()) {
          return absl::FailedPreconditionError(
              absl::StrCat("network ", NameOf(*net), " is in use by service ", NameOf(*s)));
        }
      }
    }
    return tx.Delete<api::Network>(net->id());
  });
  return ToGrpc(r.status());
}

// ---- secrets and configs ----

grpc::Status ControlService::CreateSecret(grpc::ServerContext*, const api::CreateSecretRequest* req,
                                          api::CreateSecretResponse* resp) {
  if (auto s = ValidateSecretSpec(req->spec()); !s.ok()) return ToGrpc(s);
  api::Secret secret;
  secret.set_id(base::NewId(random_));
  *secret.mutable_spec() = req->spec();
  auto r = store_.Update([&](store::Tx& tx) -> absl::Status {
    if (!tx.Find<api::Secret>(store::ByName(NameOf(secret))).empty()) {
      return absl::AlreadyExistsError(
          absl::StrCat("secret name '", NameOf(secret), "' is already in use"));
    }
    return tx.Create(secret);
  });
  if (!r.ok()) return ToGrpc(r.status());
  *resp->mutable_secret() = Redacted(*store_.View().Get<api::Secret>(secret.id()));
  return grpc::Status::OK;
}

grpc::Status ControlService::GetSecret(grpc::ServerContext*, const api::GetSecretRequest* req,
                                       api::GetSecretResponse* resp) {
  auto s = Resolve<api::Secret>(store_.View(), req->secret_id(), "secret");
  if (!s.ok()) return ToGrpc(s.status());
  *resp->mutable_secret() = Redacted(**s);
  return grpc::Status::OK;
}

grpc::Status ControlService::ListSecrets(grpc::ServerContext*, const api::ListSecretsRequest* req,
                                         api::ListSecretsResponse* resp) {
  for (const auto& s : Page<api::Secret>(store_.View(), req->filters(), req->page(),
                                         resp->mutable_next_page_token())) {
    *resp->add_secrets() = Redacted(*s);
  }
  return grpc::Status::OK;
}

grpc::Status ControlService::RemoveSecret(grpc::ServerContext*, const api::RemoveSecretRequest* req,
                                          api::RemoveSecretResponse*) {
  auto r = store_.Update([&](store::Tx& tx) -> absl::Status {
    ASSIGN_OR_RETURN(auto secret, Resolve<api::Secret>(tx, req->secret_id(), "secret"));
    for (const auto& s : tx.Find<api::Service>(store::All())) {
      for (const auto& ref : s->spec().task().container().secrets()) {
        if (ref.secret_id() == secret->id()) {
          return absl::FailedPreconditionError(
              absl::StrCat("secret ", NameOf(*secret), " is in use by service ", NameOf(*s)));
        }
      }
    }
    return tx.Delete<api::Secret>(secret->id());
  });
  return ToGrpc(r.status());
}

grpc::Status ControlService::CreateConfig(grpc::ServerContext*, const api::CreateConfigRequest* req,
                                          api::CreateConfigResponse* resp) {
  if (auto s = ValidateConfigSpec(req->spec()); !s.ok()) return ToGrpc(s);
  api::Config config;
  config.set_id(base::NewId(random_));
  *config.mutable_spec() = req->spec();
  auto r = store_.Update([&](store::Tx& tx) -> absl::Status {
    if (!tx.Find<api::Config>(store::ByName(NameOf(config))).empty()) {
      return absl::AlreadyExistsError(
          absl::StrCat("config name '", NameOf(config), "' is already in use"));
    }
    return tx.Create(config);
  });
  if (!r.ok()) return ToGrpc(r.status());
  *resp->mutable_config() = *store_.View().Get<api::Config>(config.id());
  return grpc::Status::OK;
}

grpc::Status ControlService::GetConfig(grpc::ServerContext*, const api::GetConfigRequest* req,
                                       api::GetConfigResponse* resp) {
  auto c = Resolve<api::Config>(store_.View(), req->config_id(), "config");
  if (!c.ok()) return ToGrpc(c.status());
  *resp->mutable_config() = **c;
  return grpc::Status::OK;
}

grpc::Status ControlService::ListConfigs(grpc::ServerContext*, const api::ListConfigsRequest* req,
                                         api::ListConfigsResponse* resp) {
  for (const auto& c : Page<api::Config>(store_.View(), req->filters(), req->page(),
                                         resp->mutable_next_page_token())) {
    *resp->add_configs() = *c;
  }
  return grpc::Status::OK;
}

grpc::Status ControlService::RemoveConfig(grpc::ServerContext*, const api::RemoveConfigRequest* req,
                                          api::RemoveConfigResponse*) {
  auto r = store_.Update([&](store::Tx& tx) -> absl::Status {
    ASSIGN_OR_RETURN(auto config, Resolve<api::Config>(tx, req->config_id(), "config"));
    for (const auto& s : tx.Find<api::Service>(store::All())) {
      for (const auto& ref : s->spec().task().container().configs()) {
        if (ref.config_id() == config->id()) {
          return absl::FailedPreconditionError(
              absl::StrCat("config ", NameOf(*config), " is in use by service ", NameOf(*s)));
        }
      }
    }
    return tx.Delete<api::Config>(config->id());
  });
  return ToGrpc(r.status());
}

// ---- tasks and nodes ----

grpc::Status ControlService::GetTask(grpc::ServerContext*, const api::GetTaskRequest* req,
                                     api::GetTaskResponse* resp) {
  auto t = Resolve<api::Task>(store_.View(), req->task_id(), "task");
  if (!t.ok()) return ToGrpc(t.status());
  *resp->mutable_task() = **t;
  return grpc::Status::OK;
}

grpc::Status ControlService::ListTasks(grpc::ServerContext*, const api::ListTasksRequest* req,
                                       api::ListTasksResponse* resp) {
  for (const auto& t : Page<api::Task>(store_.View(), req->filters(), req->page(),
                                       resp->mutable_next_page_token())) {
    *resp->add_tasks() = *t;
  }
  return grpc::Status::OK;
}

grpc::Status ControlService::GetNode(grpc::ServerContext*, const api::GetNodeRequest* req,
                                     api::GetNodeResponse* resp) {
  auto n = Resolve<api::Node>(store_.View(), req->node_id(), "node");
  if (!n.ok()) return ToGrpc(n.status());
  *resp->mutable_node() = **n;
  return grpc::Status::OK;
}

grpc::Status ControlService::ListNodes(grpc::ServerContext*, const api::ListNodesRequest* req,
                                       api::ListNodesResponse* resp) {
  for (const auto& n : Page<api::Node>(store_.View(), req->filters(), req->page(),
                                       resp->mutable_next_page_token())) {
    *resp->add_nodes() = *n;
  }
  return grpc::Status::OK;
}

grpc::Status ControlService::UpdateNode(grpc::ServerContext*, const api::UpdateNodeRequest* req,
                                        api::UpdateNodeResponse* resp) {
  if (auto s = ValidateNodeSpec(req->spec()); !s.ok()) return ToGrpc(s);
  // Read before the store transaction: raft applies into the store under its own locks.
  std::optional<std::vector<RaftMemberView>> live;
  if (raft_members_) live = raft_members_();
  std::string id;
  auto r = store_.Update([&](store::Tx& tx) -> absl::Status {
    ASSIGN_OR_RETURN(auto node, Resolve<api::Node>(tx, req->node_id(), "node"));
    id = node->id();
    if (req->node_version().index() != node->meta().version().index()) {
      return absl::AbortedError(absl::StrCat("update out of sequence: node ", node->id(),
                                             " is at version ", node->meta().version().index()));
    }
    api::Node next = *node;
    *next.mutable_spec() = req->spec();
    if (req->spec().desired_role() != node->spec().desired_role()) {
      if (node->spec().desired_role() == api::NODE_ROLE_MANAGER &&
          req->spec().desired_role() == api::NODE_ROLE_WORKER) {
        RETURN_IF_ERROR(CheckDemotion(tx, *node, live ? *live : MembersFromStore(tx)));
      }
      // The node renews its certificate and gets the new role with it (manager/ca).
      next.mutable_certificate()->set_state(api::Certificate::ISSUANCE_RENEW);
    }
    return tx.Update(next);
  });
  if (!r.ok()) return ToGrpc(r.status());
  *resp->mutable_node() = *store_.View().Get<api::Node>(id);
  return grpc::Status::OK;
}

}  // namespace shoal::manager::controlapi
