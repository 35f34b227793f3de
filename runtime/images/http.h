// A small blocking HTTP client over libcurl for the registry client. One HttpClient (one curl
// easy handle, connection reuse) per thread; not thread-safe itself.
//
// TLS: certificates are verified (system store or `ca_file`) unless `insecure_skip_verify`.
// Errors: UNAVAILABLE for transport failures (connection refused/reset, timeouts), so callers
// can retry; the HTTP status is returned in HttpResponse, not as an error.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace shoal::runtime::images {

struct HttpOptions {
  std::string ca_file;                // extra CA bundle for the registry's certificate
  bool insecure_skip_verify = false;  // HTTPS without verification (explicit opt-in only)
  long connect_timeout_ms = 10000;
  long low_speed_time_s = 30;  // abort when < 1 byte/s for this long
};

struct HttpRequest {
  std::string method = "GET";
  std::string url;
  std::vector<std::string> headers;  // "Name: value"
  std::string body;                  // for PUT/POST when body_fd < 0
  int body_fd = -1;                  // upload from this fd (from offset 0)
  int64_t body_size = 0;
  bool follow_redirects = true;
  // Streams the body here instead of HttpResponse::body (only for 2xx); return false to abort.
  std::function<bool(absl::string_view)> sink;
};

struct HttpResponse {
  long status = 0;
  std::map<std::string, std::string> headers;  // lowercase names; last value wins
  std::string body;
  std::string Header(const std::string& lower_name) const {
    auto it = headers.find(lower_name);
    return it == headers.end() ? "" : it->second;
  }
};

class HttpClient {
 public:
  explicit HttpClient(HttpOptions options);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  absl::StatusOr<HttpResponse> Do(const HttpRequest& req);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Resolves a Location header against the request URL ("/v2/..." or absolute).
std::string ResolveUrl(const std::string& base, const std::string& location);

}  // namespace shoal::runtime::images
