// The joining node's side of the join flow (DESIGN.md §6 Security):
//   1. parse the token (SHLTKN-1-<root digest>-<secret>);
//   2. fetch the root CA certificate from the manager over TLS WITHOUT verifying the server
//      (nothing is trusted yet) and check its SHA-256 against the token's digest — a man in the
//      middle cannot substitute its own root;
//   3. generate an ECDSA P-256 key locally (it never leaves the node), send a CSR with the
//      token, now verifying the manager against the fetched root;
//   4. read the issued certificate (NodeCertificateStatus) and check it chains to the root,
//      names this cluster and matches the local key.
// Renew() repeats 3–4 authenticated by the current certificate (no token).
//
// Errors: InvalidArgument (malformed token), PermissionDenied (root does not match the token;
// token refused by the manager), Unavailable/DeadlineExceeded (manager unreachable).
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "base/clock.h"
#include "base/random.h"
#include "manager/ca/root_ca.h"
#include "manager/ca/tls.h"

namespace shoal::manager::ca {

struct JoinResult {
  NodeIdentity identity;
  TlsMaterial tls;  // root, issued certificate and the locally generated key
};

absl::StatusOr<JoinResult> Join(const std::string& manager_address, const std::string& token,
                                base::Clock& clock, absl::Duration timeout = absl::Seconds(10));

absl::StatusOr<JoinResult> Renew(const std::string& manager_address, const TlsMaterial& current,
                                 base::Clock& clock, absl::Duration timeout = absl::Seconds(10));

}  // namespace shoal::manager::ca
