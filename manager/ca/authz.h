// Who may call which RPC (DESIGN.md §6 Security).
//
// Every TCP listener of a manager is mTLS (tls.h): the TLS layer verifies that a presented
// client certificate chains to the cluster root. On top of that, Authorizer runs for every call
// before the handler (it is the server credentials' AuthMetadataProcessor) and decides from the
// method path and the caller's certificate:
//   - public methods (CA.GetRootCACertificate, NodeCA.*, Health): anyone, certificate or not —
//     a join token or the certificate itself authenticates inside the handler;
//   - node methods (Dispatcher.*): a valid worker or manager certificate;
//   - manager methods (Control.*, Raft.*, RaftMembership.*, CA.GetUnlockKey): a manager
//     certificate only;
//   - any other method: denied (a new service must be added to the policy explicitly).
// A certificate is refused when it is not valid now, names another cluster (O), or belongs to a
// removed node (the cluster's blacklist). Denials are UNAUTHENTICATED (no or bad certificate) or
// PERMISSION_DENIED (wrong role) with a message naming the method and the reason.
//
// On success the caller's identity is attached to the call's AuthContext; handlers read it with
// CallerOf(). Calls on the local unix socket (insecure credentials, filesystem permissions guard
// it) carry no AuthContext identity and are reported as local.
//
// Thread safety: Process() runs concurrently on gRPC threads; Authorizer is immutable apart
// from the thread-safe callbacks it is given.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include <grpcpp/security/auth_metadata_processor.h>
#include <grpcpp/server_context.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "base/clock.h"
#include "manager/ca/root_ca.h"

namespace shoal::manager::ca {

enum class Access { kPublic, kNode, kManager };

// Access required by `method` ("/package.Service/Method"); nullopt = not in the policy.
std::optional<Access> RequiredAccess(absl::string_view method);

// What the handler knows about its caller.
struct Caller {
  bool local = false;          // came in over the local unix socket (trusted admin)
  std::optional<NodeIdentity> node;  // set when a valid node certificate was presented
  bool IsManager() const { return local || (node && node->role == Role::kManager); }
};

// Reads the identity Authorizer attached to the call. Calls without TLS are `local`.
Caller CallerOf(const grpc::ServerContext& context);

// A manager that forwards a call to the leader names the original caller in this metadata
// entry: a node id, "local" (its unix socket) or "-" (an anonymous caller, e.g. a joiner).
inline constexpr char kForwardedForMetadata[] = "shoal-forwarded-for";

// The node a manager forwarded this call for: set only when `caller` presented a manager
// certificate (managers are trusted to name the caller they relay) and the metadata names a
// node id. Anything else — no metadata, "local", "-", or a non-manager claiming to forward —
// gives nullopt.
std::optional<std::string> ForwardedNodeId(const grpc::ServerContext& context,
                                           const Caller& caller);

class Authorizer final : public grpc::AuthMetadataProcessor {
 public:
  struct Options {
    std::shared_ptr<const RootCA> root;  // verifies presented certificates
    std::string cluster_id;              // certificates must name it (O)
    base::Clock* clock = nullptr;
    // True when `node_id` was removed from the cluster (its certificates are refused).
    std::function<bool(const std::string& node_id)> is_removed;
  };
  explicit Authorizer(Options options);

  bool IsBlocking() const override { return false; }
  grpc::Status Process(const InputMetadata& auth_metadata, grpc::AuthContext* context,
                       OutputMetadata* consumed_auth_metadata,
                       OutputMetadata* response_metadata) override;

  // The decision Process() makes, without gRPC types (unit-tested directly). `cert_pem` empty =
  // no client certificate. Returns the identity (nullopt for an anonymous public call).
  absl::StatusOr<std::optional<NodeIdentity>> Decide(absl::string_view method,
                                                     absl::string_view cert_pem) const;

 private:
  Options options_;
};

}  // namespace shoal::manager::ca
