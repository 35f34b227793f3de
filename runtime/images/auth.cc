#include "runtime/images/auth.h"

#include <openssl/evp.h>
#include <sys/stat.h>

#include <cstdlib>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "base/file.h"
#include "base/status.h"
#include "nlohmann/json.hpp"

namespace shoal::runtime::images {
namespace {

using nlohmann::json;

absl::StatusOr<json> Load(const std::string& path) {
  auto text = base::ReadFile(path);
  if (!text.ok()) {
    if (text.status().code() == absl::StatusCode::kNotFound) return json::object();
    return text.status();
  }
  json j = json::parse(*text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return absl::DataLossError(absl::StrCat(path, ": not a JSON object"));
  }
  return j;
}

absl::Status Save(const std::string& path, const json& j) {
  size_t slash = path.rfind('/');
  if (slash != std::string::npos && slash > 0) {
    std::string dir = path.substr(0, slash);
    std::string cur;
    for (size_t i = 1; i <= dir.size(); ++i) {
      if (i == dir.size() || dir[i] == '/') {
        cur = dir.substr(0, i);
        ::mkdir(cur.c_str(), 0700);
      }
    }
  }
  return base::WriteFileAtomic(path, j.dump(2), 0600);
}

}  // namespace

absl::StatusOr<Challenge> ParseChallenge(absl::string_view h) {
  h = absl::StripAsciiWhitespace(h);
  size_t sp = h.find(' ');
  Challenge c;
  c.scheme = absl::AsciiStrToLower(h.substr(0, sp));
  if (c.scheme.empty()) return absl::InvalidArgumentError("empty WWW-Authenticate challenge");
  if (sp == absl::string_view::npos) return c;
  absl::string_view rest = h.substr(sp + 1);
  size_t i = 0;
  while (i < rest.size()) {
    while (i < rest.size() && (rest[i] == ' ' || rest[i] == ',')) ++i;
    size_t eq = rest.find('=', i);
    if (eq == absl::string_view::npos) break;
    std::string key = absl::AsciiStrToLower(absl::StripAsciiWhitespace(rest.substr(i, eq - i)));
    i = eq + 1;
    std::string value;
    if (i < rest.size() && rest[i] == '"') {
      ++i;
      while (i < rest.size() && rest[i] != '"') {
        if (rest[i] == '\\' && i + 1 < rest.size()) ++i;
        value.push_back(rest[i++]);
      }
      if (i >= rest.size()) {
        return absl::InvalidArgumentError(
            absl::StrCat("WWW-Authenticate: unterminated quoted value for ", key));
      }
      ++i;
    } else {
      size_t end = rest.find(',', i);
      value = std::string(absl::StripAsciiWhitespace(rest.substr(i, end - i)));
      i = end == absl::string_view::npos ? rest.size() : end;
    }
    c.params[key] = value;
  }
  return c;
}

std::string Base64Encode(absl::string_view data) {
  std::string out(4 * ((data.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(data.data()),
                          static_cast<int>(data.size()));
  out.resize(n);
  return out;
}

absl::StatusOr<std::string> Base64Decode(absl::string_view data) {
  if (data.size() % 4 != 0) return absl::InvalidArgumentError("base64: length not a multiple of 4");
  std::string out(3 * data.size() / 4 + 1, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(data.data()),
                          static_cast<int>(data.size()));
  if (n < 0) return absl::InvalidArgumentError("base64: invalid input");
  size_t pad = 0;
  if (!data.empty() && data.back() == '=') ++pad;
  if (data.size() > 1 && data[data.size() - 2] == '=') ++pad;
  out.resize(n - pad);
  return out;
}

std::string CredentialStore::DefaultPath() {
  if (const char* p = std::getenv("SHOAL_AUTH_FILE"); p != nullptr && *p) return p;
  const char* home = std::getenv("HOME");
  return absl::StrCat(home ? home : "/root", "/.config/shoal/auth.json");
}

absl::StatusOr<std::optional<Credentials>> CredentialStore::Get(absl::string_view host) const {
  ASSIGN_OR_RETURN(json j, Load(path_));
  auto auths = j.find("auths");
  if (auths == j.end() || !auths->is_object()) return std::nullopt;
  auto e = auths->find(std::string(host));
  if (e == auths->end() || !e->is_object() || !e->contains("auth")) return std::nullopt;
  ASSIGN_OR_RETURN(std::string raw, Base64Decode((*e)["auth"].get<std::string>()));
  size_t colon = raw.find(':');
  if (colon == std::string::npos) {
    return absl::DataLossError(absl::StrCat(path_, ": auth for ", host, " is not user:password"));
  }
  return Credentials{raw.substr(0, colon), raw.substr(colon + 1)};
}

absl::Status CredentialStore::Put(absl::string_view host, const Credentials& creds) {
  ASSIGN_OR_RETURN(json j, Load(path_));
  j["auths"][std::string(host)] = {
      {"auth", Base64Encode(absl::StrCat(creds.username, ":", creds.password))}};
  return Save(path_, j);
}

absl::Status CredentialStore::Erase(absl::string_view host) {
  ASSIGN_OR_RETURN(json j, Load(path_));
  if (j.contains("auths") && j["auths"].is_object()) j["auths"].erase(std::string(host));
  return Save(path_, j);
}

}  // namespace shoal::runtime::images
