#include "manager/ca/authz.h"

#include <grpc/grpc_security_constants.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace shoal::manager::ca {
namespace {

constexpr char kNodeIdProperty[] = "shoal_node_id";
constexpr char kRoleProperty[] = "shoal_role";
constexpr char kClusterProperty[] = "shoal_cluster_id";

struct Rule {
  const char* method;  // a full method, or a service prefix ending in '/'
  Access access;
};

// Default deny: a method missing here cannot be called over TCP at all.
constexpr Rule kPolicy[] = {
    {"/shoal.api.v1.CA/GetRootCACertificate", Access::kPublic},
    {"/shoal.api.v1.CA/GetUnlockKey", Access::kManager},
    {"/shoal.api.v1.NodeCA/", Access::kPublic},
    {"/shoal.api.v1.Health/", Access::kPublic},
    {"/grpc.health.v1.Health/", Access::kPublic},
    {"/shoal.api.v1.Dispatcher/", Access::kNode},
    {"/shoal.api.v1.Control/", Access::kManager},
    {"/shoal.api.v1.Raft/", Access::kManager},
    {"/shoal.api.v1.RaftMembership/", Access::kManager},
};

std::string ToString(grpc::string_ref s) { return std::string(s.data(), s.size()); }

grpc::Status ToGrpc(const absl::Status& s) {
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), std::string(s.message()));
}

}  // namespace

std::optional<Access> RequiredAccess(absl::string_view method) {
  for (const Rule& rule : kPolicy) {
    absl::string_view m = rule.method;
    if (absl::EndsWith(m, "/") ? absl::StartsWith(method, m) && method.size() > m.size()
                               : method == m) {
      return rule.access;
    }
  }
  return std::nullopt;
}

Caller CallerOf(const grpc::ServerContext& context) {
  Caller caller;
  auto auth = context.auth_context();
  bool tls = false;
  if (auth != nullptr) {
    for (const auto& v : auth->FindPropertyValues(GRPC_TRANSPORT_SECURITY_TYPE_PROPERTY_NAME)) {
      if (ToString(v) == GRPC_SSL_TRANSPORT_SECURITY_TYPE) tls = true;
    }
  }
  if (!tls) {
    // Only the unix socket listener is created without TLS.
    caller.local = absl::StartsWith(context.peer(), "unix:");
    return caller;
  }
  auto ids = auth->FindPropertyValues(kNodeIdProperty);
  auto roles = auth->FindPropertyValues(kRoleProperty);
  auto clusters = auth->FindPropertyValues(kClusterProperty);
  // gRPC 1.51 keeps one AuthContext per connection: Process() adds the identity again on every
  // call, so a connection that has carried N calls holds N copies. They all come from the one
  // certificate of that connection; anything else (none, or values that differ) is no identity.
  auto single = [](const std::vector<grpc::string_ref>& values) -> std::optional<std::string> {
    if (values.empty()) return std::nullopt;
    for (const auto& v : values) {
      if (v != values.front()) return std::nullopt;
    }
    return ToString(values.front());
  };
  auto node_id = single(ids);
  auto role_name = single(roles);
  auto cluster_id = single(clusters);
  if (!node_id || !role_name || !cluster_id) return caller;
  auto role = RoleFromName(*role_name);
  if (!role.ok()) return caller;
  NodeIdentity id;
  id.node_id = *std::move(node_id);
  id.role = *role;
  id.cluster_id = *std::move(cluster_id);
  caller.node = std::move(id);
  return caller;
}

std::optional<std::string> ForwardedNodeId(const grpc::ServerContext& context,
                                           const Caller& caller) {
  if (!caller.node || caller.node->role != Role::kManager) return std::nullopt;
  const auto& md = context.client_metadata();
  auto it = md.find(kForwardedForMetadata);
  if (it == md.end()) return std::nullopt;
  std::string id = ToString(it->second);
  if (id.empty() || id == "-" || id == "local") return std::nullopt;
  return id;
}

Authorizer::Authorizer(Options options) : options_(std::move(options)) {}

absl::StatusOr<std::optional<NodeIdentity>> Authorizer::Decide(absl::string_view method,
                                                               absl::string_view cert_pem) const {
  std::optional<Access> access = RequiredAccess(method);
  if (!access) {
    return absl::PermissionDeniedError(
        absl::StrCat(method, " is not served to remote callers (not in the access policy)"));
  }
  const bool is_public = *access == Access::kPublic;
  if (cert_pem.empty()) {
    if (is_public) return std::optional<NodeIdentity>();
    return absl::UnauthenticatedError(
        absl::StrCat(method, " needs a node certificate (mTLS) and none was presented"));
  }
  auto denied = [&](absl::Status s) -> absl::StatusOr<std::optional<NodeIdentity>> {
    // A node with an expired or revoked certificate may still use the public join/renew
    // methods with a token, as an anonymous caller.
    if (is_public) return std::optional<NodeIdentity>();
    return s;
  };
  auto id = options_.root->VerifyNodeCertificate(cert_pem, options_.clock->Now());
  if (!id.ok()) {
    return denied(absl::UnauthenticatedError(
        absl::StrCat(method, ": client certificate refused: ", id.status().message())));
  }
  if (id->cluster_id != options_.cluster_id) {
    return denied(absl::UnauthenticatedError(absl::StrCat(
        method, ": client certificate belongs to cluster ", id->cluster_id, ", not this one")));
  }
  if (options_.is_removed && options_.is_removed(id->node_id)) {
    return denied(absl::PermissionDeniedError(
        absl::StrCat(method, ": node ", id->node_id, " was removed from the cluster")));
  }
  if (*access == Access::kManager && id->role != Role::kManager) {
    return absl::PermissionDeniedError(absl::StrCat(method, " is for managers only; node ",
                                                    id->node_id, " is a ", RoleName(id->role)));
  }
  return std::optional<NodeIdentity>(*std::move(id));
}

grpc::Status Authorizer::Process(const InputMetadata& auth_metadata, grpc::AuthContext* context,
                                 OutputMetadata*, OutputMetadata*) {
  std::string method;
  if (auto it = auth_metadata.find(":path"); it != auth_metadata.end()) {
    method = ToString(it->second);
  }
  std::string cert;
  for (const auto& v : context->FindPropertyValues(GRPC_X509_PEM_CERT_PROPERTY_NAME)) {
    cert = ToString(v);
  }
  auto decision = Decide(method, cert);
  if (!decision.ok()) return ToGrpc(decision.status());
  if (decision->has_value()) {
    const NodeIdentity& id = **decision;
    context->AddProperty(kNodeIdProperty, id.node_id);
    context->AddProperty(kRoleProperty, RoleName(id.role));
    context->AddProperty(kClusterProperty, id.cluster_id);
  }
  return grpc::Status::OK;
}

}  // namespace shoal::manager::ca
