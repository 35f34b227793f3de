#include "manager/ca/ca_service.h"

#include <optional>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/status.h"
#include "manager/ca/authz.h"
#include "manager/ca/join_token.h"
#include "manager/ca/pki.h"

namespace shoal::manager::ca {
namespace {

grpc::Status ToGrpc(const absl::Status& s) {
  if (s.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), std::string(s.message()));
}

absl::Duration NodeCertValidity(const api::Cluster& cluster) {
  const auto& d = cluster.spec().ca_config().node_cert_expiry();
  if (d.seconds() == 0 && d.nanos() == 0) return kDefaultNodeCertValidity;
  return absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
}

api::NodeRole ToApiRole(Role role) {
  return role == Role::kManager ? api::NODE_ROLE_MANAGER : api::NODE_ROLE_WORKER;
}
Role FromApiRole(api::NodeRole role) {
  return role == api::NODE_ROLE_MANAGER ? Role::kManager : Role::kWorker;
}

}  // namespace

absl::StatusOr<ClusterBootstrap> PrepareCluster(base::Clock& clock, base::Random& random,
                                                absl::Duration node_cert_expiry) {
  if (node_cert_expiry != absl::ZeroDuration() && node_cert_expiry < kMinTestNodeCertValidity) {
    return absl::InvalidArgumentError(
        absl::StrCat("node_cert_expiry: ", absl::FormatDuration(node_cert_expiry),
                     " is below the minimum of ", absl::FormatDuration(kMinTestNodeCertValidity)));
  }
  ASSIGN_OR_RETURN(RootCA root, RootCA::Create(clock, random));
  ClusterBootstrap b;
  api::Cluster& cluster = b.cluster;
  cluster.set_id(base::NewId(random));
  cluster.mutable_spec()->mutable_annotations()->set_name(kDefaultClusterName);
  auto* rc = cluster.mutable_root_ca();
  rc->set_ca_cert(root.cert_pem());
  rc->set_ca_key(root.key_pem());
  rc->set_ca_cert_hash(root.digest());
  rc->mutable_join_tokens()->set_worker(GenerateJoinToken(root.digest(), random));
  rc->mutable_join_tokens()->set_manager(GenerateJoinToken(root.digest(), random));
  cluster.add_default_address_pool("10.0.0.0/8");
  cluster.set_subnet_size(24);
  cluster.set_vxlan_udp_port(4789);
  if (node_cert_expiry != absl::ZeroDuration()) {
    auto* d = cluster.mutable_spec()->mutable_ca_config()->mutable_node_cert_expiry();
    d->set_seconds(absl::ToInt64Seconds(node_cert_expiry));
  }

  ASSIGN_OR_RETURN(PKeyPtr key, GenerateP256Key());
  ASSIGN_OR_RETURN(std::string key_pem, KeyToPem(key.get()));
  ASSIGN_OR_RETURN(std::string csr, CreateCsrPem(key.get(), "shoal-node"));
  RootCA::IssueOptions options;
  options.node_id = base::NewId(random);
  options.cluster_id = cluster.id();
  options.role = Role::kManager;
  options.validity = NodeCertValidity(cluster);
  options.min_validity = kMinTestNodeCertValidity;
  ASSIGN_OR_RETURN(std::string cert, root.IssueNodeCertificate(csr, options, clock, random));
  api::Node& node = b.node;
  node.set_id(options.node_id);
  node.mutable_spec()->set_desired_role(api::NODE_ROLE_MANAGER);
  node.mutable_spec()->set_membership(api::NodeSpec::MEMBERSHIP_ACCEPTED);
  node.set_role(api::NODE_ROLE_MANAGER);
  auto* c = node.mutable_certificate();
  c->set_role(api::NODE_ROLE_MANAGER);
  c->set_csr(csr);
  c->set_state(api::Certificate::ISSUANCE_ISSUED);
  c->set_certificate(cert);
  c->set_cn(node.id());
  ASSIGN_OR_RETURN(b.self.identity, root.VerifyNodeCertificate(cert, clock.Now()));
  b.self.tls.root_pem = root.cert_pem();
  b.self.tls.cert_pem = std::move(cert);
  b.self.tls.key_pem = std::move(key_pem);
  return b;
}

absl::Status StoreCluster(store::MemoryStore& store, const ClusterBootstrap& b) {
  return store
      .Update([&](store::Tx& tx) -> absl::Status {
        if (!tx.Find<api::Cluster>(store::ByName(kDefaultClusterName)).empty()) {
          return absl::AlreadyExistsError("the cluster object exists already");
        }
        RETURN_IF_ERROR(tx.Create(b.cluster));
        return tx.Create(b.node);
      })
      .status();
}

absl::StatusOr<api::Cluster> InitCluster(store::MemoryStore& store, base::Clock& clock,
                                         base::Random& random) {
  if (auto existing = GetCluster(store.View()); existing.ok()) return **existing;
  ASSIGN_OR_RETURN(ClusterBootstrap b, PrepareCluster(clock, random));
  // Only the cluster object: InitCluster is for tests that add their own nodes.
  auto r = store.Update([&](store::Tx& tx) -> absl::Status {
    if (!tx.Find<api::Cluster>(store::ByName(kDefaultClusterName)).empty()) {
      return absl::AlreadyExistsError("cluster exists");
    }
    return tx.Create(b.cluster);
  });
  if (!r.ok() && !absl::IsAlreadyExists(r.status())) return r.status();
  ASSIGN_OR_RETURN(auto stored, GetCluster(store.View()));
  return *stored;
}

absl::StatusOr<JoinResult> BootstrapCluster(store::MemoryStore& store, base::Clock& clock,
                                            base::Random& random) {
  ASSIGN_OR_RETURN(ClusterBootstrap b, PrepareCluster(clock, random));
  RETURN_IF_ERROR(StoreCluster(store, b));
  return b.self;
}

absl::StatusOr<std::shared_ptr<const api::Cluster>> GetCluster(const store::ReadTx& tx) {
  auto found = tx.Find<api::Cluster>(store::ByName(kDefaultClusterName));
  if (found.empty()) {
    return absl::FailedPreconditionError(
        "this node is not part of an initialized cluster (no cluster object)");
  }
  return found.front();
}

bool IsRemovedNode(const store::ReadTx& tx, const std::string& node_id) {
  auto cluster = GetCluster(tx);
  return cluster.ok() && (*cluster)->blacklisted_certificates().contains(node_id);
}

absl::StatusOr<std::shared_ptr<const RootCA>> RootCache::Get(const api::Cluster& cluster) {
  std::lock_guard<std::mutex> lock(mu_);
  if (root_ == nullptr || cert_pem_ != cluster.root_ca().ca_cert()) {
    ASSIGN_OR_RETURN(RootCA root,
                     RootCA::FromPem(cluster.root_ca().ca_cert(), cluster.root_ca().ca_key()));
    root_ = std::make_shared<const RootCA>(std::move(root));
    cert_pem_ = cluster.root_ca().ca_cert();
  }
  return root_;
}

grpc::Status CAService::GetRootCACertificate(grpc::ServerContext*,
                                             const api::GetRootCACertificateRequest*,
                                             api::GetRootCACertificateResponse* resp) {
  auto cluster = GetCluster(store_.View());
  if (!cluster.ok()) return ToGrpc(cluster.status());
  resp->set_certificate((*cluster)->root_ca().ca_cert());
  return grpc::Status::OK;
}

grpc::Status CAService::GetUnlockKey(grpc::ServerContext* ctx, const api::GetUnlockKeyRequest*,
                                     api::GetUnlockKeyResponse* resp) {
  if (!CallerOf(*ctx).IsManager()) {
    return grpc::Status(grpc::StatusCode::PERMISSION_DENIED, "GetUnlockKey is for managers only");
  }
  auto cluster = GetCluster(store_.View());
  if (!cluster.ok()) return ToGrpc(cluster.status());
  if (!(*cluster)->unlock_keys().empty()) resp->set_unlock_key((*cluster)->unlock_keys(0));
  resp->mutable_version()->set_index((*cluster)->meta().version().index());
  return grpc::Status::OK;
}

namespace {

// The node whose certificate authenticates this call: the caller's own, or, when another
// manager relayed the call to this leader, the node that manager names (a follower relays
// renewals: only the leader writes). A relayed anonymous caller (a joiner) gives nullopt, so a
// relaying manager can never renew its own certificate by accident.
std::optional<std::string> AuthenticatedNode(const grpc::ServerContext& ctx, const Caller& caller) {
  if (!caller.node) return std::nullopt;
  if (caller.node->role == Role::kManager &&
      ctx.client_metadata().count(kForwardedForMetadata) != 0) {
    return ForwardedNodeId(ctx, caller);
  }
  return caller.node->node_id;
}

}  // namespace

grpc::Status NodeCAService::IssueNodeCertificate(grpc::ServerContext* ctx,
                                                 const api::IssueNodeCertificateRequest* req,
                                                 api::IssueNodeCertificateResponse* resp) {
  if (req->csr().empty()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "csr: a PEM certificate request is "
                                                            "required");
  }
  auto view = store_.View();
  auto cluster = GetCluster(view);
  if (!cluster.ok()) return ToGrpc(cluster.status());
  auto root = roots_.Get(**cluster);
  if (!root.ok()) return ToGrpc(root.status());

  std::optional<std::string> authenticated = AuthenticatedNode(*ctx, CallerOf(*ctx));
  const bool renewal = authenticated.has_value() && req->token().empty();
  std::string node_id;
  Role role = Role::kWorker;
  if (renewal) {
    node_id = *authenticated;
    auto node = view.Get<api::Node>(node_id);
    if (node == nullptr) {
      return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                          absl::StrCat("node ", node_id, " is not a member of this cluster"));
    }
    role = FromApiRole(node->role());
  } else {
    if (req->token().empty()) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          "token: a join token is required to join the cluster");
    }
    const auto& tokens = (*cluster)->root_ca().join_tokens();
    auto granted = AuthorizeJoin(req->token(), tokens.worker(), tokens.manager(),
                                 (*cluster)->root_ca().ca_cert_hash());
    if (!granted.ok()) return ToGrpc(granted.status());
    role = *granted;
    node_id = base::NewId(random_);
  }

  RootCA::IssueOptions options;
  options.node_id = node_id;
  options.cluster_id = (*cluster)->id();
  options.role = role;
  options.validity = NodeCertValidity(**cluster);
  // The stored spec was validated where it came in (Control: >= 1 h; init: the test floor).
  options.min_validity = kMinTestNodeCertValidity;
  auto cert = (*root)->IssueNodeCertificate(req->csr(), options, clock_, random_);
  if (!cert.ok()) return ToGrpc(cert.status());

  auto r = store_.Update([&](store::Tx& tx) -> absl::Status {
    api::Node node;
    auto existing = tx.Get<api::Node>(node_id);
    if (existing != nullptr) {
      node = *existing;
    } else {
      if (renewal) return absl::PermissionDeniedError(absl::StrCat("node ", node_id, " was removed"));
      node.set_id(node_id);
      node.mutable_spec()->set_desired_role(ToApiRole(role));
      node.mutable_spec()->set_membership(api::NodeSpec::MEMBERSHIP_ACCEPTED);
      node.mutable_spec()->set_availability(req->availability());
    }
    node.set_role(ToApiRole(role));
    auto* c = node.mutable_certificate();
    c->set_role(ToApiRole(role));
    c->set_csr(req->csr());
    c->set_state(api::Certificate::ISSUANCE_ISSUED);
    c->clear_err();
    c->set_certificate(*cert);
    c->set_cn(node_id);
    return existing != nullptr ? tx.Update(node) : tx.Create(node);
  });
  if (!r.ok()) return ToGrpc(r.status());
  resp->set_node_id(node_id);
  resp->set_node_membership(api::NodeSpec::MEMBERSHIP_ACCEPTED);
  return grpc::Status::OK;
}

grpc::Status NodeCAService::NodeCertificateStatus(grpc::ServerContext*,
                                                  const api::NodeCertificateStatusRequest* req,
                                                  api::NodeCertificateStatusResponse* resp) {
  if (req->node_id().empty()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "node_id: required");
  }
  auto view = store_.View();
  auto cluster = GetCluster(view);
  if (!cluster.ok()) return ToGrpc(cluster.status());
  auto node = view.Get<api::Node>(req->node_id());
  if (node == nullptr) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND,
                        absl::StrCat("node ", req->node_id(), ": not found"));
  }
  *resp->mutable_certificate() = node->certificate();
  resp->set_node_role(node->role());
  resp->mutable_root_ca_bundle()->set_ca_cert((*cluster)->root_ca().ca_cert());
  resp->mutable_root_ca_bundle()->set_ca_cert_hash((*cluster)->root_ca().ca_cert_hash());
  return grpc::Status::OK;
}

}  // namespace shoal::manager::ca
