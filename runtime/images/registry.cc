#include "runtime/images/registry.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/file.h"
#include "base/status.h"
#include "nlohmann/json.hpp"

namespace shoal::runtime::images {
namespace {

constexpr char kAcceptManifests[] =
    "Accept: application/vnd.oci.image.index.v1+json, "
    "application/vnd.oci.image.manifest.v1+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json, "
    "application/vnd.docker.distribution.manifest.v2+json";

std::string Short(const Digest& d) { return d.hex.substr(0, 12); }

// Registry error bodies: {"errors":[{"code":"MANIFEST_UNKNOWN","message":"..."}]}.
std::string ErrorText(const HttpResponse& r) {
  auto j = nlohmann::json::parse(r.body, nullptr, false);
  std::vector<std::string> parts;
  if (!j.is_discarded() && j.contains("errors") && j["errors"].is_array()) {
    for (const auto& e : j["errors"]) {
      parts.push_back(absl::StrCat(e.value("code", ""), ": ", e.value("message", "")));
    }
  }
  return absl::StrCat("HTTP ", r.status, parts.empty() ? "" : " ", absl::StrJoin(parts, "; "));
}

absl::Status StatusFromHttp(const HttpResponse& r, absl::string_view what) {
  std::string text = absl::StrCat(what, ": ", ErrorText(r));
  switch (r.status) {
    case 401:
      return absl::UnauthenticatedError(text);
    case 403:
      return absl::PermissionDeniedError(text);
    case 404:
      return absl::NotFoundError(text);
    case 429:
    case 500:
    case 502:
    case 503:
    case 504:
      return absl::UnavailableError(text);
    default:
      return absl::FailedPreconditionError(text);
  }
}

bool Retryable(const absl::Status& s) {
  return s.code() == absl::StatusCode::kUnavailable || s.code() == absl::StatusCode::kDataLoss;
}

}  // namespace

RegistryClient::RegistryClient(std::string host, std::string repository, RegistryOptions options)
    : host_(std::move(host)),
      repo_(std::move(repository)),
      options_(std::move(options)),
      http_(HttpOptions{options_.ca_file, options_.skip_verify}) {}

RegistryClient::~RegistryClient() = default;

std::string RegistryClient::Url(const std::string& path) const {
  return absl::StrCat(options_.plain_http ? "http://" : "https://", host_, path);
}

absl::Status RegistryClient::Authenticate(const HttpResponse& unauthorized,
                                          const std::string& scope) {
  std::string header = unauthorized.Header("www-authenticate");
  if (header.empty()) {
    return absl::UnauthenticatedError(
        absl::StrCat(host_, ": 401 without a WWW-Authenticate challenge"));
  }
  ASSIGN_OR_RETURN(Challenge ch, ParseChallenge(header));
  CredentialStore creds_store(options_.auth_file);
  ASSIGN_OR_RETURN(std::optional<Credentials> creds, creds_store.Get(host_));
  std::string basic =
      creds ? Base64Encode(absl::StrCat(creds->username, ":", creds->password)) : std::string();
  if (ch.scheme == "basic") {
    if (!creds) {
      return absl::UnauthenticatedError(absl::StrCat(
          host_, " requires a login (basic auth); run `shoal-image login ", host_, "`"));
    }
    authorization_ = "Authorization: Basic " + basic;
    return absl::OkStatus();
  }
  if (ch.scheme != "bearer") {
    return absl::UnimplementedError(absl::StrCat(host_, ": unsupported auth scheme ", ch.scheme));
  }
  std::string realm = ch.params["realm"];
  if (realm.empty()) return absl::UnauthenticatedError(host_ + ": bearer challenge without realm");
  HttpClient token_http(HttpOptions{options_.ca_file, options_.skip_verify});
  HttpRequest req;
  std::string url = realm;
  std::string sep = realm.find('?') == std::string::npos ? "?" : "&";
  if (!ch.params["service"].empty()) {
    absl::StrAppend(&url, sep, "service=", ch.params["service"]);
    sep = "&";
  }
  std::string want_scope = ch.params.count("scope") ? ch.params["scope"] : scope;
  if (!want_scope.empty()) absl::StrAppend(&url, sep, "scope=", want_scope);
  req.url = url;
  if (creds) req.headers.push_back("Authorization: Basic " + basic);
  ASSIGN_OR_RETURN(HttpResponse resp, token_http.Do(req));
  if (resp.status != 200) return StatusFromHttp(resp, absl::StrCat("token from ", realm));
  auto j = nlohmann::json::parse(resp.body, nullptr, false);
  std::string token;
  if (!j.is_discarded() && j.is_object()) {
    token = j.value("token", "");
    if (token.empty()) token = j.value("access_token", "");
  }
  if (token.empty()) return absl::UnauthenticatedError(absl::StrCat(realm, ": no token in reply"));
  authorization_ = "Authorization: Bearer " + token;
  return absl::OkStatus();
}

absl::StatusOr<HttpResponse> RegistryClient::Send(HttpRequest req, const std::string& scope) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    HttpRequest r = req;
    if (!authorization_.empty()) r.headers.push_back(authorization_);
    ASSIGN_OR_RETURN(HttpResponse resp, http_.Do(r));
    if (resp.status != 401 || attempt == 1) {
      if (resp.status == 401) {
        return absl::UnauthenticatedError(absl::StrCat(
            host_, ": authentication failed (wrong username or password?): ", ErrorText(resp)));
      }
      return resp;
    }
    RETURN_IF_ERROR(Authenticate(resp, scope));
  }
  return absl::InternalError("unreachable");
}

absl::Status RegistryClient::Ping() {
  HttpRequest req;
  req.url = Url("/v2/");
  ASSIGN_OR_RETURN(HttpResponse resp, Send(req, ""));
  if (resp.status != 200) return StatusFromHttp(resp, absl::StrCat("ping ", host_));
  return absl::OkStatus();
}

absl::StatusOr<FetchedManifest> RegistryClient::GetManifest(const std::string& reference) {
  HttpRequest req;
  req.url = Url(absl::StrCat("/v2/", repo_, "/manifests/", reference));
  req.headers.push_back(kAcceptManifests);
  ASSIGN_OR_RETURN(HttpResponse resp, Send(req, absl::StrCat("repository:", repo_, ":pull")));
  std::string what = absl::StrCat("manifest ", host_, "/", repo_, ":", reference);
  if (resp.status != 200) return StatusFromHttp(resp, what);
  FetchedManifest m;
  m.body = std::move(resp.body);
  m.digest = Sha256Of(m.body);
  if (absl::StartsWith(reference, "sha256:") && m.digest.String() != reference) {
    return absl::DataLossError(absl::StrCat(what, ": content is ", m.digest.String()));
  }
  std::string header_digest = resp.Header("docker-content-digest");
  if (!header_digest.empty() && header_digest != m.digest.String()) {
    return absl::DataLossError(absl::StrCat(what, ": registry says ", header_digest,
                                            " but the content is ", m.digest.String()));
  }
  std::string ct = resp.Header("content-type");
  ct = ct.substr(0, ct.find(';'));
  auto detected = DetectMediaType(m.body);
  if (!detected.ok()) return base::Annotate(detected.status(), what);
  m.media_type = IsIndexMediaType(ct) || IsManifestMediaType(ct) ? ct : *detected;
  return m;
}

absl::Status RegistryClient::FetchBlob(Store& store, const Descriptor& d) {
  ASSIGN_OR_RETURN(auto writer, store.NewBlobWriter());
  HttpRequest req;
  req.url = Url(absl::StrCat("/v2/", repo_, "/blobs/", d.digest.String()));
  absl::Status write_status;
  Progress p{Short(d.digest), "layer", 0, static_cast<uint64_t>(d.size), "downloading"};
  // The first chunk is reported at once, later ones at most every 200 ms.
  auto last = std::chrono::steady_clock::time_point{};
  req.sink = [&](absl::string_view chunk) {
    if (writer->written() + chunk.size() > static_cast<uint64_t>(d.size)) {
      write_status = absl::DataLossError(
          absl::StrCat("blob ", d.digest.String(), ": registry sent more than ", d.size, " bytes"));
      return false;
    }
    write_status = writer->Write(chunk);
    if (options_.progress) {
      auto now = std::chrono::steady_clock::now();
      if (now - last > std::chrono::milliseconds(200)) {
        last = now;
        p.done = writer->written();
        options_.progress(p);
      }
    }
    return write_status.ok();
  };
  auto resp = Send(req, absl::StrCat("repository:", repo_, ":pull"));
  if (!write_status.ok()) return write_status;
  if (!resp.ok()) return resp.status();
  if (resp->status != 200) {
    return StatusFromHttp(*resp, absl::StrCat("blob ", host_, "/", repo_, "@", d.digest.String()));
  }
  RETURN_IF_ERROR(writer->Commit(d.digest, d.size));
  if (options_.progress) {
    p.done = p.total;
    p.status = "done";
    options_.progress(p);
  }
  return absl::OkStatus();
}

absl::StatusOr<bool> RegistryClient::BlobExists(const Digest& d) {
  HttpRequest req;
  req.method = "HEAD";
  req.url = Url(absl::StrCat("/v2/", repo_, "/blobs/", d.String()));
  ASSIGN_OR_RETURN(HttpResponse resp, Send(req, absl::StrCat("repository:", repo_, ":pull,push")));
  if (resp.status == 200) return true;
  if (resp.status == 404) return false;
  return StatusFromHttp(resp, absl::StrCat("HEAD blob ", d.String()));
}

absl::Status RegistryClient::UploadBlob(const std::string& path, const Digest& d, int64_t size) {
  std::string scope = absl::StrCat("repository:", repo_, ":pull,push");
  HttpRequest start;
  start.method = "POST";
  start.url = Url(absl::StrCat("/v2/", repo_, "/blobs/uploads/"));
  ASSIGN_OR_RETURN(HttpResponse r1, Send(start, scope));
  if (r1.status != 202) return StatusFromHttp(r1, absl::StrCat("start upload of ", d.String()));
  std::string location = r1.Header("location");
  if (location.empty()) return absl::FailedPreconditionError("upload: no Location header");
  std::string url = ResolveUrl(start.url, location);
  absl::StrAppend(&url, url.find('?') == std::string::npos ? "?" : "&", "digest=", d.String());
  ASSIGN_OR_RETURN(base::UniqueFd fd, base::Open(path, O_RDONLY));
  HttpRequest put;
  put.method = "PUT";
  put.url = url;
  put.body_fd = fd.get();
  put.body_size = size;
  put.headers.push_back("Content-Type: application/octet-stream");
  ASSIGN_OR_RETURN(HttpResponse r2, Send(put, scope));
  if (r2.status != 201) return StatusFromHttp(r2, absl::StrCat("upload ", d.String()));
  return absl::OkStatus();
}

absl::StatusOr<Digest> RegistryClient::PutManifest(const std::string& reference,
                                                   const std::string& body,
                                                   const std::string& media_type) {
  HttpRequest req;
  req.method = "PUT";
  req.url = Url(absl::StrCat("/v2/", repo_, "/manifests/", reference));
  req.body = body;
  req.headers.push_back("Content-Type: " + media_type);
  ASSIGN_OR_RETURN(HttpResponse resp, Send(req, absl::StrCat("repository:", repo_, ":pull,push")));
  if (resp.status != 201) return StatusFromHttp(resp, absl::StrCat("put manifest ", reference));
  return Sha256Of(body);
}

namespace {

// Runs fn(i) for i in [0, n) on up to `parallel` threads; returns the first error.
absl::Status ParallelFor(size_t n, int parallel, const std::function<absl::Status(size_t)>& fn) {
  std::atomic<size_t> next{0};
  std::mutex mu;
  absl::Status first;
  std::atomic<bool> failed{false};
  auto worker = [&] {
    for (size_t i; !failed && (i = next++) < n;) {
      absl::Status s = fn(i);
      if (!s.ok()) {
        std::lock_guard<std::mutex> lock(mu);
        if (first.ok()) first = s;
        failed = true;
      }
    }
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < std::max(1, std::min<int>(parallel, static_cast<int>(n))); ++t) {
    threads.emplace_back(worker);
  }
  for (auto& t : threads) t.join();
  return first;
}

absl::Status FetchWithRetries(RegistryClient& client, Store& store, const Descriptor& d,
                              const RegistryOptions& options) {
  absl::Status s;
  for (int attempt = 0; attempt <= options.retries; ++attempt) {
    if (store.HasBlob(d.digest)) return absl::OkStatus();
    s = client.FetchBlob(store, d);
    if (s.ok() || !Retryable(s)) return s;
    if (options.progress) {
      options.progress({Short(d.digest), "layer", 0, static_cast<uint64_t>(d.size), "retrying"});
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200 << attempt));
  }
  return s;
}

}  // namespace

absl::StatusOr<ImageRecord> Pull(Store& store, const Reference& ref,
                                 const RegistryOptions& options) {
  ASSIGN_OR_RETURN(Store::GcLease lease, store.AcquireGcLease());
  std::string host = ref.RegistryHost();
  RegistryClient client(host, ref.path, options);
  auto fail = [&](const absl::Status& s) {
    return base::Annotate(s, absl::StrCat("pull ", ref.Familiar()));
  };
  auto top = client.GetManifest(ref.ManifestReference());
  if (!top.ok()) return fail(top.status());
  FetchedManifest m = *std::move(top);
  if (IsIndexMediaType(m.media_type)) {
    auto index = ParseIndex(m.body);
    if (!index.ok()) return fail(index.status());
    auto picked = SelectPlatform(*index, options.platform);
    if (!picked.ok()) return fail(picked.status());
    auto inner = client.GetManifest(picked->digest.String());
    if (!inner.ok()) return fail(inner.status());
    m = *std::move(inner);
  }
  auto manifest = ParseManifest(m.body);
  if (!manifest.ok()) return fail(manifest.status());
  if (!store.HasBlob(m.digest)) {
    if (absl::Status s = store.PutBlob(m.body, m.digest); !s.ok()) return fail(s);
  }
  std::vector<Descriptor> blobs = {manifest->config};
  blobs.insert(blobs.end(), manifest->layers.begin(), manifest->layers.end());
  absl::Status s = ParallelFor(blobs.size(), options.parallel, [&](size_t i) {
    if (store.HasBlob(blobs[i].digest)) {
      if (options.progress) {
        options.progress({Short(blobs[i].digest), i == 0 ? "config" : "layer",
                          static_cast<uint64_t>(blobs[i].size),
                          static_cast<uint64_t>(blobs[i].size), "exists"});
      }
      return absl::OkStatus();
    }
    RegistryClient worker(host, ref.path, options);
    worker.set_authorization(client.authorization());
    return FetchWithRetries(worker, store, blobs[i], options);
  });
  if (!s.ok()) return fail(s);
  std::vector<Reference> tags;
  if (!ref.tag.empty()) {
    Reference t = ref;
    t.digest = Digest{};
    tags.push_back(t);
  }
  auto rec = store.CommitImage(
      m.digest, tags, absl::StrCat(ref.Repository(), "@", m.digest.String()), options.unpack);
  if (!rec.ok()) return fail(rec.status());
  return rec;
}

absl::StatusOr<Digest> Push(Store& store, absl::string_view image, const Reference& target,
                            const RegistryOptions& options) {
  ASSIGN_OR_RETURN(ImageRecord rec, store.Resolve(image));
  ASSIGN_OR_RETURN(std::string manifest, store.ReadBlob(rec.manifest_digest));
  RegistryClient client(target.RegistryHost(), target.path, options);
  std::vector<Descriptor> blobs;
  for (const auto& l : rec.layers) blobs.push_back(l.blob);
  ASSIGN_OR_RETURN(Manifest m, ParseManifest(manifest));
  blobs.push_back(m.config);
  for (const auto& d : blobs) {
    absl::Status s;
    for (int attempt = 0; attempt <= options.retries; ++attempt) {
      auto exists = client.BlobExists(d.digest);
      s = exists.status();
      if (exists.ok() && *exists) {
        if (options.progress) options.progress({Short(d.digest), "blob", 0, 0, "exists"});
        break;
      }
      if (exists.ok()) s = client.UploadBlob(store.BlobPath(d.digest), d.digest, d.size);
      if (s.ok()) {
        if (options.progress) {
          options.progress({Short(d.digest), "blob", static_cast<uint64_t>(d.size),
                            static_cast<uint64_t>(d.size), "pushed"});
        }
        break;
      }
      if (!Retryable(s)) break;
    }
    if (!s.ok()) return base::Annotate(s, absl::StrCat("push ", target.Familiar()));
  }
  std::string reference = target.tag.empty() ? rec.manifest_digest.String() : target.tag;
  auto d = client.PutManifest(reference, manifest, rec.manifest_media_type);
  if (!d.ok()) return base::Annotate(d.status(), absl::StrCat("push ", target.Familiar()));
  return d;
}

absl::Status Login(const std::string& host, const Credentials& creds,
                   const RegistryOptions& options) {
  // Verify against a scratch credential file first, so a wrong password is never stored.
  RegistryOptions probe = options;
  probe.auth_file = options.auth_file + ".probe";
  CredentialStore scratch(probe.auth_file);
  RETURN_IF_ERROR(scratch.Put(host, creds));
  RegistryClient client(host, "", probe);
  absl::Status s = client.Ping();
  ::unlink(probe.auth_file.c_str());
  if (!s.ok()) return base::Annotate(s, absl::StrCat("login ", host));
  return CredentialStore(options.auth_file).Put(host, creds);
}

}  // namespace shoal::runtime::images
