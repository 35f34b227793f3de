// Registry authentication pieces: WWW-Authenticate challenges (RFC 7235, as sent by the
// distribution registry and Docker Hub's token service), base64, and the credential file
// written by `login` (Docker's config.json shape: {"auths":{"<host>":{"auth":"<b64 user:pass>"}}},
// mode 0600, replaced atomically).
// Thread safety: CredentialStore methods are safe across processes (atomic file replace) but a
// concurrent Put/Put may lose one update (last writer wins).
#pragma once

#include <map>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace shoal::runtime::images {

struct Challenge {
  std::string scheme;                         // lowercase: "bearer" or "basic"
  std::map<std::string, std::string> params;  // realm, service, scope, ...
};

// Parses `Bearer realm="https://a/token",service="reg",scope="repository:x:pull"`.
absl::StatusOr<Challenge> ParseChallenge(absl::string_view header);

std::string Base64Encode(absl::string_view data);
absl::StatusOr<std::string> Base64Decode(absl::string_view data);

struct Credentials {
  std::string username;
  std::string password;
};

class CredentialStore {
 public:
  // Default location: $SHOAL_AUTH_FILE, else $HOME/.config/shoal/auth.json.
  static std::string DefaultPath();
  explicit CredentialStore(std::string path) : path_(std::move(path)) {}

  absl::StatusOr<std::optional<Credentials>> Get(absl::string_view host) const;
  absl::Status Put(absl::string_view host, const Credentials& creds);
  absl::Status Erase(absl::string_view host);

 private:
  std::string path_;
};

}  // namespace shoal::runtime::images
