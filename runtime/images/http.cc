#include "runtime/images/http.h"

#include <curl/curl.h>
#include <unistd.h>

#include <mutex>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "base/check.h"

namespace shoal::runtime::images {
namespace {

void GlobalInitOnce() {
  static std::once_flag once;
  std::call_once(once, [] { CHECK(curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK); });
}

struct Transfer {
  CURL* curl;
  const HttpRequest* req;
  HttpResponse* resp;
  int64_t upload_offset = 0;
};

size_t OnHeader(char* data, size_t size, size_t n, void* ud) {
  auto* t = static_cast<Transfer*>(ud);
  absl::string_view line(data, size * n);
  if (absl::StartsWith(line, "HTTP/")) {
    t->resp->headers.clear();  // a new response (redirect or 100-continue)
    return size * n;
  }
  size_t colon = line.find(':');
  if (colon != absl::string_view::npos) {
    std::string name = absl::AsciiStrToLower(line.substr(0, colon));
    t->resp->headers[name] = std::string(absl::StripAsciiWhitespace(line.substr(colon + 1)));
  }
  return size * n;
}

size_t OnBody(char* data, size_t size, size_t n, void* ud) {
  auto* t = static_cast<Transfer*>(ud);
  absl::string_view chunk(data, size * n);
  long code = 0;
  curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &code);
  if (t->req->sink && code >= 200 && code < 300) {
    if (!t->req->sink(chunk)) return 0;  // aborts the transfer
  } else {
    t->resp->body.append(chunk.data(), chunk.size());
  }
  return size * n;
}

size_t OnUpload(char* buf, size_t size, size_t n, void* ud) {
  auto* t = static_cast<Transfer*>(ud);
  ssize_t r = ::pread(t->req->body_fd, buf, size * n, t->upload_offset);
  if (r < 0) return CURL_READFUNC_ABORT;
  t->upload_offset += r;
  return static_cast<size_t>(r);
}

}  // namespace

struct HttpClient::Impl {
  HttpOptions options;
  CURL* curl = nullptr;
};

HttpClient::HttpClient(HttpOptions options) : impl_(std::make_unique<Impl>()) {
  GlobalInitOnce();
  impl_->options = std::move(options);
  impl_->curl = curl_easy_init();
  CHECK(impl_->curl != nullptr) << "curl_easy_init";
}

HttpClient::~HttpClient() { curl_easy_cleanup(impl_->curl); }

absl::StatusOr<HttpResponse> HttpClient::Do(const HttpRequest& req) {
  CURL* c = impl_->curl;
  curl_easy_reset(c);
  HttpResponse resp;
  Transfer t{c, &req, &resp};
  char errbuf[CURL_ERROR_SIZE] = {};
  curl_easy_setopt(c, CURLOPT_URL, req.url.c_str());
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_USERAGENT, "shoal/0.1");
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, impl_->options.connect_timeout_ms);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, impl_->options.low_speed_time_s);
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, req.follow_redirects ? 1L : 0L);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, OnHeader);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &t);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, OnBody);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
  if (!impl_->options.ca_file.empty()) {
    curl_easy_setopt(c, CURLOPT_CAINFO, impl_->options.ca_file.c_str());
  }
  if (impl_->options.insecure_skip_verify) {
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  struct curl_slist* headers = nullptr;
  for (const auto& h : req.headers) headers = curl_slist_append(headers, h.c_str());
  if (req.method == "HEAD") {
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  } else if (req.method == "PUT" || req.method == "POST" || req.method == "PATCH") {
    curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, req.method.c_str());
    if (req.body_fd >= 0) {
      curl_easy_setopt(c, CURLOPT_READFUNCTION, OnUpload);
      curl_easy_setopt(c, CURLOPT_READDATA, &t);
      curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(req.body_size));
    } else {
      curl_easy_setopt(c, CURLOPT_UPLOAD, 0L);
      curl_easy_setopt(c, CURLOPT_POSTFIELDS, req.body.data());
      curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(req.body.size()));
    }
    headers = curl_slist_append(headers, "Expect:");
  } else if (req.method != "GET") {
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, req.method.c_str());
  }
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  CURLcode rc = curl_easy_perform(c);
  curl_slist_free_all(headers);
  if (rc != CURLE_OK) {
    std::string what = errbuf[0] ? errbuf : curl_easy_strerror(rc);
    if (rc == CURLE_WRITE_ERROR && req.sink) {
      return absl::AbortedError(absl::StrCat(req.method, " ", req.url, ": transfer aborted"));
    }
    if (rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CACERT_BADFILE ||
        rc == CURLE_SSL_CONNECT_ERROR) {
      return absl::FailedPreconditionError(absl::StrCat(req.method, " ", req.url, ": TLS: ", what));
    }
    return absl::UnavailableError(absl::StrCat(req.method, " ", req.url, ": ", what));
  }
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp.status);
  return resp;
}

std::string ResolveUrl(const std::string& base, const std::string& location) {
  if (absl::StartsWith(location, "http://") || absl::StartsWith(location, "https://")) {
    return location;
  }
  size_t scheme = base.find("://");
  size_t path = base.find('/', scheme == std::string::npos ? 0 : scheme + 3);
  std::string origin = path == std::string::npos ? base : base.substr(0, path);
  if (absl::StartsWith(location, "/")) return origin + location;
  size_t last = base.rfind('/');
  return base.substr(0, last + 1) + location;
}

}  // namespace shoal::runtime::images
