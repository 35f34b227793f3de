// Join tokens: SHLTKN-1-<root CA digest>-<secret>.
//
// The digest (SHA-256 of the root certificate, base36, 50 characters) lets a joining node fetch
// the root CA over an unauthenticated connection and verify it (no trust on first use); the
// secret (128 random bits, base36, 25 characters) authorizes the join as a worker or a manager.
// Rotating a token changes only the secret; existing nodes are unaffected.
//
// All functions are pure and thread-safe. Secrets are compared in constant time.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "base/random.h"
#include "manager/ca/root_ca.h"

namespace shoal::manager::ca {

inline constexpr char kJoinTokenPrefix[] = "SHLTKN";
inline constexpr int kJoinTokenVersion = 1;
inline constexpr size_t kDigestDigits = 50;
inline constexpr size_t kSecretDigits = 25;

struct JoinToken {
  std::string root_digest;  // 32 raw bytes
  std::string secret;       // 16 raw bytes
};

// A new token for the root with `root_digest` (32 raw bytes).
std::string GenerateJoinToken(absl::string_view root_digest, base::Random& random);
std::string FormatJoinToken(const JoinToken& token);

// Parses and validates the shape; InvalidArgument says what is wrong (never echoes the secret).
absl::StatusOr<JoinToken> ParseJoinToken(absl::string_view token);

// Joiner side: the fetched root must be the one the token pins. PermissionDenied otherwise.
absl::Status VerifyRootMatchesToken(const RootCA& fetched_root, const JoinToken& token);

// Manager side: which role `presented` grants, given the cluster's current tokens and root.
// PermissionDenied for a wrong, rotated or other-cluster token.
absl::StatusOr<Role> AuthorizeJoin(absl::string_view presented, absl::string_view worker_token,
                                   absl::string_view manager_token,
                                   absl::string_view root_digest);

// Fixed-width lowercase base36 of big-endian `bytes` (exposed for tests).
std::string EncodeBase36(absl::string_view bytes, size_t width);
absl::StatusOr<std::string> DecodeBase36(absl::string_view digits, size_t byte_len);

}  // namespace shoal::manager::ca
