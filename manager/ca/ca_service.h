// The CA and NodeCA gRPC services, and cluster bootstrap (DESIGN.md §6 Security).
//
// The cluster's root CA (certificate and key) and its join tokens live in the Cluster object
// "default" in the replicated store, so every manager can sign and a leader change keeps them.
//
// IssueNodeCertificate is synchronous: the CA signs at once and the node polls
// NodeCertificateStatus once (it returns ISSUED immediately). Two cases:
//   - a caller presenting a valid, non-removed certificate renews it: same node id, the role the
//     node has now (Node.role, which the leader's role manager sets once a promotion or a
//     demotion is safe: a demoted manager gets a worker certificate only after it left raft);
//   - otherwise the request must carry a join token: the worker or manager token of this
//     cluster (AuthorizeJoin), which decides the role; the node gets a fresh id and a Node
//     object (membership ACCEPTED) is created.
// NodeCertificateStatus also returns Node.role (node_role): nodes poll it to notice a role change.
// Errors: InvalidArgument (missing/malformed token or CSR, naming the field), PermissionDenied
// (wrong, rotated or foreign token), FailedPrecondition (cluster not initialized), NotFound
// (unknown node id in NodeCertificateStatus).
//
// Thread safety: gRPC calls the methods concurrently; state is in the (thread-safe) store plus a
// mutex-guarded parsed-root cache.
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "absl/status/statusor.h"
#include "api/ca.grpc.pb.h"
#include "api/objects.pb.h"
#include "base/clock.h"
#include "base/random.h"
#include "manager/ca/join.h"
#include "manager/ca/root_ca.h"
#include "manager/store/store.h"

namespace shoal::manager::ca {

namespace api = ::shoal::api::v1;

inline constexpr char kDefaultClusterName[] = "default";

// A new cluster, prepared off-line: the Cluster object (root CA with key, join tokens, default
// address pool) and this node's Node object with a manager certificate whose key is generated
// here. `self` holds the TLS material (so raft can start with mTLS before anything is stored).
struct ClusterBootstrap {
  api::Cluster cluster;
  api::Node node;
  JoinResult self;
};
// `node_cert_expiry` non-zero: written to spec.ca_config.node_cert_expiry; it may be as short
// as kMinTestNodeCertValidity (labs and tests; Control's UpdateCluster asks for >= 1 h).
absl::StatusOr<ClusterBootstrap> PrepareCluster(
    base::Clock& clock, base::Random& random,
    absl::Duration node_cert_expiry = absl::ZeroDuration());
// Writes both objects in one transaction; AlreadyExists when a cluster object exists.
absl::Status StoreCluster(store::MemoryStore& store, const ClusterBootstrap& bootstrap);

// `shoal swarm init` in one step: PrepareCluster + StoreCluster.
absl::StatusOr<JoinResult> BootstrapCluster(store::MemoryStore& store, base::Clock& clock,
                                            base::Random& random);

// Tests: creates only the Cluster object unless one exists; returns it.
absl::StatusOr<api::Cluster> InitCluster(store::MemoryStore& store, base::Clock& clock,
                                         base::Random& random);

// The Cluster object, or FailedPrecondition when the cluster was never initialized.
absl::StatusOr<std::shared_ptr<const api::Cluster>> GetCluster(const store::ReadTx& tx);

// True when `node_id` was removed (its certificates are blacklisted until they expire).
bool IsRemovedNode(const store::ReadTx& tx, const std::string& node_id);

// Parses the cluster's root, caching the parse while the certificate stays the same.
class RootCache {
 public:
  absl::StatusOr<std::shared_ptr<const RootCA>> Get(const api::Cluster& cluster);

 private:
  std::mutex mu_;
  std::string cert_pem_;
  std::shared_ptr<const RootCA> root_;
};

class CAService final : public api::CA::Service {
 public:
  explicit CAService(store::MemoryStore& store) : store_(store) {}
  grpc::Status GetRootCACertificate(grpc::ServerContext*, const api::GetRootCACertificateRequest*,
                                    api::GetRootCACertificateResponse*) override;
  grpc::Status GetUnlockKey(grpc::ServerContext*, const api::GetUnlockKeyRequest*,
                            api::GetUnlockKeyResponse*) override;

 private:
  store::MemoryStore& store_;
};

class NodeCAService final : public api::NodeCA::Service {
 public:
  NodeCAService(store::MemoryStore& store, base::Clock& clock, base::Random& random)
      : store_(store), clock_(clock), random_(random) {}
  grpc::Status IssueNodeCertificate(grpc::ServerContext*, const api::IssueNodeCertificateRequest*,
                                    api::IssueNodeCertificateResponse*) override;
  grpc::Status NodeCertificateStatus(grpc::ServerContext*,
                                     const api::NodeCertificateStatusRequest*,
                                     api::NodeCertificateStatusResponse*) override;

 private:
  store::MemoryStore& store_;
  base::Clock& clock_;
  base::Random& random_;
  RootCache roots_;
};

}  // namespace shoal::manager::ca
