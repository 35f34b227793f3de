#include "runtime/images/reference.h"

#include <cctype>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace shoal::runtime::images {
namespace {

constexpr size_t kMaxNameLength = 255;
constexpr size_t kMaxTagLength = 128;

bool IsLowerAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
bool IsAlnum(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }
bool IsWord(char c) { return IsAlnum(c) || c == '_'; }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsHex(char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; }

// component := [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*
bool ValidPathComponent(absl::string_view c) {
  size_t i = 0;
  auto alnum_run = [&]() {
    size_t start = i;
    while (i < c.size() && IsLowerAlnum(c[i])) ++i;
    return i > start;
  };
  if (!alnum_run()) return false;
  while (i < c.size()) {
    if (c[i] == '.') {
      ++i;
    } else if (c[i] == '_') {
      ++i;
      if (i < c.size() && c[i] == '_') ++i;
    } else if (c[i] == '-') {
      while (i < c.size() && c[i] == '-') ++i;
    } else {
      return false;
    }
    if (!alnum_run()) return false;
  }
  return true;
}

// domain-component := [a-zA-Z0-9] | [a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]
bool ValidDomainComponent(absl::string_view c) {
  if (c.empty() || !IsAlnum(c.front()) || !IsAlnum(c.back())) return false;
  for (char ch : c) {
    if (!IsAlnum(ch) && ch != '-') return false;
  }
  return true;
}

bool ValidIpv6(absl::string_view s) {
  // The grammar accepts "[" [a-fA-F0-9:]+ "]"; inet_pton semantics are not required.
  if (s.empty()) return false;
  for (char c : s) {
    if (!IsHex(c) && c != ':') return false;
  }
  return true;
}

bool ValidDomain(absl::string_view d) {
  absl::string_view host = d;
  if (!d.empty() && d.front() == '[') {
    size_t close = d.find(']');
    if (close == absl::string_view::npos || !ValidIpv6(d.substr(1, close - 1))) return false;
    host = d.substr(0, close + 1);
    absl::string_view rest = d.substr(close + 1);
    if (rest.empty()) return true;
    if (rest.front() != ':' || rest.size() == 1) return false;
    for (char c : rest.substr(1)) {
      if (!IsDigit(c)) return false;
    }
    return true;
  }
  size_t colon = d.find(':');
  if (colon != absl::string_view::npos) {
    host = d.substr(0, colon);
    absl::string_view port = d.substr(colon + 1);
    if (port.empty()) return false;
    for (char c : port) {
      if (!IsDigit(c)) return false;
    }
  }
  for (absl::string_view comp : absl::StrSplit(host, '.')) {
    if (!ValidDomainComponent(comp)) return false;
  }
  return true;
}

absl::Status Invalid(absl::string_view input, absl::string_view reason) {
  return absl::InvalidArgumentError(absl::StrCat("invalid reference \"", input, "\": ", reason));
}

bool IsAnchoredHex64(absl::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

}  // namespace

absl::Status ValidateTag(absl::string_view tag) {
  if (tag.empty()) return absl::InvalidArgumentError("invalid tag: empty");
  if (tag.size() > kMaxTagLength) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid tag \"", tag, "\": longer than ", kMaxTagLength, " characters"));
  }
  if (!IsWord(tag.front())) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid tag \"", tag, "\": must start with [A-Za-z0-9_]"));
  }
  for (char c : tag) {
    if (!IsWord(c) && c != '.' && c != '-') {
      return absl::InvalidArgumentError(
          absl::StrCat("invalid tag \"", tag, "\": only [A-Za-z0-9_.-] allowed"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<Reference> ParseReference(absl::string_view input) {
  if (input.empty()) return Invalid(input, "repository name must have at least one component");
  if (IsAnchoredHex64(input)) {
    return Invalid(input, "cannot specify 64-byte hexadecimal strings (that is an image ID)");
  }
  Reference ref;
  absl::string_view rest = input;

  // "@digest" (neither names nor tags may contain '@').
  if (size_t at = rest.find('@'); at != absl::string_view::npos) {
    auto digest = ParseDigest(rest.substr(at + 1));
    if (!digest.ok()) return Invalid(input, digest.status().message());
    ref.digest = *std::move(digest);
    rest = rest.substr(0, at);
  }

  // Docker's splitDockerDomain.
  absl::string_view domain = kDefaultDomain;
  absl::string_view remainder = rest;
  if (size_t slash = rest.find('/'); slash != absl::string_view::npos) {
    absl::string_view first = rest.substr(0, slash);
    bool looks_like_domain = first.find_first_of(".:") != absl::string_view::npos ||
                             first == "localhost" || absl::AsciiStrToLower(first) != first;
    if (looks_like_domain) {
      domain = first;
      remainder = rest.substr(slash + 1);
    }
  }
  if (domain == "index.docker.io") domain = kDefaultDomain;

  // ":tag" is a colon after the last '/' of the remainder.
  absl::string_view path = remainder;
  size_t last_slash = remainder.rfind('/');
  size_t colon = remainder.rfind(':');
  if (colon != absl::string_view::npos &&
      (last_slash == absl::string_view::npos || colon > last_slash)) {
    path = remainder.substr(0, colon);
    absl::string_view tag = remainder.substr(colon + 1);
    if (absl::Status s = ValidateTag(tag); !s.ok()) return Invalid(input, s.message());
    ref.tag = std::string(tag);
  }

  if (path.empty()) return Invalid(input, "repository name must have at least one component");
  if (absl::AsciiStrToLower(path) != path) {
    return Invalid(input, absl::StrCat("repository name \"", path, "\" must be lowercase"));
  }
  if (!ValidDomain(domain)) {
    return Invalid(input, absl::StrCat("invalid registry domain \"", domain, "\""));
  }
  for (absl::string_view comp : absl::StrSplit(path, '/')) {
    if (comp.empty()) return Invalid(input, "empty path component (\"//\" or trailing \"/\")");
    if (!ValidPathComponent(comp)) {
      return Invalid(input, absl::StrCat("invalid path component \"", comp,
                                         "\": use [a-z0-9] separated by '.', '_', '__' or '-'"));
    }
  }
  ref.domain = std::string(domain);
  ref.path = std::string(path);
  if (ref.domain == kDefaultDomain && ref.path.find('/') == std::string::npos) {
    ref.path = absl::StrCat("library/", ref.path);
  }
  if (ref.Repository().size() > kMaxNameLength) {
    return Invalid(input, absl::StrCat("repository name must not be more than ", kMaxNameLength,
                                       " characters"));
  }
  if (ref.tag.empty() && ref.digest.empty()) ref.tag = kDefaultTag;
  return ref;
}

std::string Reference::String() const {
  std::string s = Repository();
  if (!tag.empty()) absl::StrAppend(&s, ":", tag);
  if (!digest.empty()) absl::StrAppend(&s, "@", digest.String());
  return s;
}

std::string Reference::Familiar() const {
  std::string s;
  if (domain == kDefaultDomain) {
    absl::string_view p = path;
    if (absl::StartsWith(p, "library/") && p.find('/', 8) == absl::string_view::npos) {
      p.remove_prefix(8);
    }
    s = std::string(p);
  } else {
    s = Repository();
  }
  if (!tag.empty()) absl::StrAppend(&s, ":", tag);
  if (!digest.empty()) absl::StrAppend(&s, "@", digest.String());
  return s;
}

std::string Reference::RegistryHost() const {
  return domain == kDefaultDomain ? "registry-1.docker.io" : domain;
}

}  // namespace shoal::runtime::images
