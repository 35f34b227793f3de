// Registry client for the OCI distribution API (/v2/): pull (manifest or index with platform
// selection, Docker v2 schema 2 and OCI manifests, parallel verified blob downloads with retries,
// dedup against the store), push (blob upload with existence check, manifest PUT) and login.
//
// Auth: on 401 the WWW-Authenticate challenge decides: Bearer -> token from the realm (with the
// stored credentials as basic auth if any), cached per scope; Basic -> stored credentials.
// Transport: https with certificate verification by default; `plain_http` (insecure registry,
// explicit) uses http://; `ca_file` adds a CA; `skip_verify` disables verification (explicit).
//
// Failure contract: a pull records the image only after every blob is verified and every layer
// unpacked; on any error (tampered blob, wrong digest, missing tag, auth failure, registry gone)
// nothing is recorded and no partial blob is left (verified complete blobs may remain until the
// next prune). Errors name the registry, repository and the digest or tag involved.
// Thread safety: Pull/Push/Login are independent; a RegistryClient (one curl handle) must not
// be shared across threads: parallel transfers use one client per thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "runtime/images/auth.h"
#include "runtime/images/http.h"
#include "runtime/images/manifest.h"
#include "runtime/images/reference.h"
#include "runtime/images/store.h"

namespace shoal::runtime::images {

struct Progress {
  std::string id;    // short digest of the blob
  std::string what;  // "manifest", "config", "layer"
  uint64_t done = 0;
  uint64_t total = 0;
  std::string status;  // "downloading", "exists", "done", "retrying", "pushed"
};

struct RegistryOptions {
  bool plain_http = false;
  std::string ca_file;
  bool skip_verify = false;
  std::string auth_file = CredentialStore::DefaultPath();
  Platform platform = {"linux", "amd64", ""};
  int parallel = 4;
  int retries = 3;
  bool unpack = true;  // false: Pull stores blobs + record only (Store::Unpack later)
  std::function<void(const Progress&)> progress;  // may be called from several threads
};

struct FetchedManifest {
  std::string body;
  std::string media_type;
  Digest digest;
};

class RegistryClient {
 public:
  RegistryClient(std::string host, std::string repository, RegistryOptions options);
  ~RegistryClient();

  // GET /v2/<repo>/manifests/<tag|digest>, verified against the digest when given.
  absl::StatusOr<FetchedManifest> GetManifest(const std::string& reference);
  // Streams a blob into the store, verified (DATA_LOSS on mismatch; nothing stored).
  absl::Status FetchBlob(Store& store, const Descriptor& d);
  absl::StatusOr<bool> BlobExists(const Digest& d);
  absl::Status UploadBlob(const std::string& path, const Digest& d, int64_t size);
  absl::StatusOr<Digest> PutManifest(const std::string& reference, const std::string& body,
                                     const std::string& media_type);
  // GET /v2/ with authentication: OK when the credentials are accepted.
  absl::Status Ping();

  // Credentials obtained by one client, reused by the per-thread clients of a parallel pull.
  const std::string& authorization() const { return authorization_; }
  void set_authorization(std::string a) { authorization_ = std::move(a); }

 private:
  absl::StatusOr<HttpResponse> Send(HttpRequest req, const std::string& scope);
  absl::Status Authenticate(const HttpResponse& unauthorized, const std::string& scope);
  std::string Url(const std::string& path) const;

  std::string host_;
  std::string repo_;
  RegistryOptions options_;
  HttpClient http_;
  std::string authorization_;  // "Authorization: ..." header, once authenticated
  bool tried_auth_ = false;
};

absl::StatusOr<ImageRecord> Pull(Store& store, const Reference& ref,
                                 const RegistryOptions& options);
// Pushes the stored image `image` as `target` (tag or the image's own digest).
// Returns the manifest digest.
absl::StatusOr<Digest> Push(Store& store, absl::string_view image, const Reference& target,
                            const RegistryOptions& options);
// Verifies credentials against the registry and stores them in options.auth_file.
absl::Status Login(const std::string& host, const Credentials& creds,
                   const RegistryOptions& options);

}  // namespace shoal::runtime::images
