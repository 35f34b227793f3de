// The cluster root CA and node certificates (DESIGN.md §6 Security).
//
// Root: ECDSA P-256, CN "shoal-ca", valid 20 years, stored in the replicated store so any
// manager can sign. Node certificates: subject CN = node id, OU = role ("shoal-manager" or
// "shoal-worker"), O = cluster id; SAN DNS names = role name and node id (servers are dialled
// by role name); default validity 90 days, minimum 1 hour; backdated 1 hour for clock skew.
// The CA takes only the public key from a CSR: the subject is always set by the CA.
//
// Thread safety: a RootCA is immutable after construction; all methods are const and safe to
// call concurrently (the Clock and Random passed in must be thread-safe themselves).
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "base/clock.h"
#include "base/random.h"

namespace shoal::manager::ca {

enum class Role { kWorker, kManager };

// "shoal-worker" / "shoal-manager": the OU of node certificates.
const char* RoleName(Role role);
absl::StatusOr<Role> RoleFromName(absl::string_view name);

inline constexpr absl::Duration kDefaultNodeCertValidity = absl::Hours(24 * 90);
inline constexpr absl::Duration kMinNodeCertValidity = absl::Hours(1);
// The CA's own floor: below kMinNodeCertValidity only for labs and tests, which set a short
// expiry at `swarm init` (ManagerOptions::node_cert_expiry) to watch renewals happen.
inline constexpr absl::Duration kMinTestNodeCertValidity = absl::Seconds(10);
inline constexpr absl::Duration kRootCertValidity = absl::Hours(24 * 365 * 20);
inline constexpr absl::Duration kCertBackdate = absl::Hours(1);

// Who a verified certificate says its holder is.
struct NodeIdentity {
  std::string node_id;
  Role role = Role::kWorker;
  std::string cluster_id;
  absl::Time not_before;
  absl::Time not_after;
};

class RootCA {
 public:
  // A new self-signed root.
  static absl::StatusOr<RootCA> Create(base::Clock& clock, base::Random& random);
  // Loads a root. `key_pem` may be empty: such a root verifies but cannot sign (workers).
  // The key must match the certificate.
  static absl::StatusOr<RootCA> FromPem(absl::string_view cert_pem, absl::string_view key_pem);

  const std::string& cert_pem() const { return cert_pem_; }
  const std::string& key_pem() const { return key_pem_; }
  bool can_sign() const { return !key_pem_.empty(); }
  // SHA-256 of the root certificate's DER encoding (32 raw bytes): pinned by join tokens.
  const std::string& digest() const { return digest_; }

  struct IssueOptions {
    std::string node_id;
    std::string cluster_id;
    Role role = Role::kWorker;
    absl::Duration validity = kDefaultNodeCertValidity;
    absl::Duration min_validity = kMinNodeCertValidity;  // refused below this
  };
  // Signs the public key of `csr_pem` (whose self-signature must verify). Errors:
  // InvalidArgument for a bad CSR, empty/invalid ids or validity below the minimum;
  // FailedPrecondition when this root has no key.
  absl::StatusOr<std::string> IssueNodeCertificate(absl::string_view csr_pem,
                                                   const IssueOptions& options,
                                                   base::Clock& clock,
                                                   base::Random& random) const;

  // Verifies `cert_pem` chains to this root and is valid at `now`; returns its identity.
  // PermissionDenied (with the reason) when it does not verify.
  absl::StatusOr<NodeIdentity> VerifyNodeCertificate(absl::string_view cert_pem,
                                                     absl::Time now) const;

 private:
  RootCA(std::string cert_pem, std::string key_pem, std::string digest)
      : cert_pem_(std::move(cert_pem)), key_pem_(std::move(key_pem)), digest_(std::move(digest)) {}
  std::string cert_pem_;
  std::string key_pem_;
  std::string digest_;
};

// When to renew a certificate valid over [not_before, not_after]: a uniformly random point in
// 50–80 % of its lifetime, so a fleet issued together does not renew together. Node
// certificates are backdated by kCertBackdate: pass IssuedAt() as not_before.
absl::Time RenewalTime(absl::Time not_before, absl::Time not_after, base::Random& random);
// When a node certificate was issued: its notBefore plus the backdate (notBefore itself when
// the certificate is shorter than the backdate, i.e. was not issued by this CA).
absl::Time IssuedAt(const NodeIdentity& identity);

}  // namespace shoal::manager::ca
