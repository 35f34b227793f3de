#include "manager/scheduler/constraint.h"

#include <arpa/inet.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace shoal::manager::scheduler {
namespace {

using api::v1::Node;

bool ValidKeyChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
}

std::string Lower(absl::string_view s) { return absl::AsciiStrToLower(s); }

const std::string& LabelOrEmpty(const google::protobuf::Map<std::string, std::string>& m,
                                const std::string& key) {
  static const std::string* const kEmpty = new std::string();
  auto it = m.find(key);
  return it == m.end() ? *kEmpty : it->second;
}

// Parses "a.b.c.d" or "a.b.c.d/len" (IPv4) and IPv6 equivalents into bytes + prefix length.
bool ParseAddr(absl::string_view text, unsigned char out[16], int* family, int* prefix) {
  std::string s(text);
  auto slash = s.find('/');
  std::string addr = s.substr(0, slash);
  if (inet_pton(AF_INET, addr.c_str(), out) == 1) {
    *family = AF_INET;
    *prefix = 32;
  } else if (inet_pton(AF_INET6, addr.c_str(), out) == 1) {
    *family = AF_INET6;
    *prefix = 128;
  } else {
    return false;
  }
  if (slash != std::string::npos) {
    int p;
    if (!absl::SimpleAtoi(s.substr(slash + 1), &p) || p < 0 || p > *prefix) return false;
    *prefix = p;
  }
  return true;
}

bool IpMatches(absl::string_view node_addr, absl::string_view want) {
  unsigned char a[16] = {}, w[16] = {};
  int fa, fw, pa, pw;
  if (!ParseAddr(node_addr, a, &fa, &pa) || !ParseAddr(want, w, &fw, &pw) || fa != fw) {
    return false;
  }
  int full = pw / 8, rest = pw % 8;
  for (int i = 0; i < full; ++i) {
    if (a[i] != w[i]) return false;
  }
  if (rest != 0) {
    unsigned char mask = static_cast<unsigned char>(0xff << (8 - rest));
    if ((a[full] & mask) != (w[full] & mask)) return false;
  }
  return true;
}

std::string NodeAttribute(const Constraint& c, const Node& node) {
  switch (c.key) {
    case Constraint::Key::kNodeId:
      return node.id();
    case Constraint::Key::kNodeHostname:
      return node.description().hostname();
    case Constraint::Key::kNodeIp:
      return node.status().addr();
    case Constraint::Key::kNodeRole:
      return node.role() == api::v1::NODE_ROLE_MANAGER ? "manager" : "worker";
    case Constraint::Key::kNodePlatformOs:
      return node.description().platform().os();
    case Constraint::Key::kNodePlatformArch:
      return node.description().platform().architecture();
    case Constraint::Key::kNodeLabel:
      return LabelOrEmpty(node.spec().annotations().labels(), c.label);
    case Constraint::Key::kEngineLabel:
      return LabelOrEmpty(node.description().engine_labels(), c.label);
  }
  return "";
}

}  // namespace

absl::StatusOr<Constraint> ParseConstraint(absl::string_view expr) {
  Constraint c;
  c.text = std::string(expr);
  size_t pos = expr.find("==");
  size_t op_len = 2;
  c.equal = true;
  size_t ne = expr.find("!=");
  if (ne != absl::string_view::npos && (pos == absl::string_view::npos || ne < pos)) {
    pos = ne;
    c.equal = false;
  }
  if (pos == absl::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("constraint '", expr, "': no operator (want <key>==<value> or <key>!=<value>)"));
  }
  absl::string_view key = absl::StripAsciiWhitespace(expr.substr(0, pos));
  absl::string_view value = absl::StripAsciiWhitespace(expr.substr(pos + op_len));
  if (key.empty() || !absl::ascii_isalpha(static_cast<unsigned char>(key[0])) ||
      !std::all_of(key.begin(), key.end(), ValidKeyChar)) {
    return absl::InvalidArgumentError(absl::StrCat("constraint '", expr, "': invalid key '", key, "'"));
  }
  if (value.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("constraint '", expr, "': empty value"));
  }
  if (value.find("==") != absl::string_view::npos || value.find("!=") != absl::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat("constraint '", expr, "': more than one operator"));
  }
  c.value = std::string(value);
  std::string lkey = Lower(key);
  if (lkey == "node.id") {
    c.key = Constraint::Key::kNodeId;
  } else if (lkey == "node.hostname") {
    c.key = Constraint::Key::kNodeHostname;
  } else if (lkey == "node.ip") {
    c.key = Constraint::Key::kNodeIp;
    unsigned char buf[16];
    int f, p;
    if (!ParseAddr(value, buf, &f, &p)) {
      return absl::InvalidArgumentError(
          absl::StrCat("constraint '", expr, "': node.ip wants an IP address or CIDR, got '", value, "'"));
    }
  } else if (lkey == "node.role") {
    c.key = Constraint::Key::kNodeRole;
    std::string v = Lower(value);
    if (v != "manager" && v != "worker") {
      return absl::InvalidArgumentError(
          absl::StrCat("constraint '", expr, "': node.role must be manager or worker"));
    }
  } else if (lkey == "node.platform.os") {
    c.key = Constraint::Key::kNodePlatformOs;
  } else if (lkey == "node.platform.arch") {
    c.key = Constraint::Key::kNodePlatformArch;
  } else if (absl::StartsWith(lkey, "node.labels.") && key.size() > 12) {
    c.key = Constraint::Key::kNodeLabel;
    c.label = std::string(key.substr(12));
  } else if (absl::StartsWith(lkey, "engine.labels.") && key.size() > 14) {
    c.key = Constraint::Key::kEngineLabel;
    c.label = std::string(key.substr(14));
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        "constraint '", expr, "': unknown key '", key,
        "' (want node.id, node.hostname, node.ip, node.role, node.platform.os, "
        "node.platform.arch, node.labels.<key> or engine.labels.<key>)"));
  }
  return c;
}

absl::StatusOr<std::vector<Constraint>> ParseConstraints(const std::vector<std::string>& exprs) {
  std::vector<Constraint> out;
  out.reserve(exprs.size());
  for (size_t i = 0; i < exprs.size(); ++i) {
    auto c = ParseConstraint(exprs[i]);
    if (!c.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("constraints[", i, "]: ", c.status().message()));
    }
    out.push_back(*std::move(c));
  }
  return out;
}

bool NodeMatches(const Constraint& c, const Node& node) {
  std::string attr = NodeAttribute(c, node);
  bool eq;
  if (c.key == Constraint::Key::kNodeIp) {
    eq = !attr.empty() && IpMatches(attr, c.value);
  } else {
    eq = absl::EqualsIgnoreCase(attr, c.value);
  }
  return c.equal ? eq : !eq;
}

bool NodeMatchesAll(const std::vector<Constraint>& cs, const Node& node) {
  for (const auto& c : cs) {
    if (!NodeMatches(c, node)) return false;
  }
  return true;
}

absl::Status ValidateSpreadDescriptor(absl::string_view d) {
  std::string l = Lower(d);
  if ((absl::StartsWith(l, "node.labels.") && d.size() > 12) ||
      (absl::StartsWith(l, "engine.labels.") && d.size() > 14)) {
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "placement preference: spread descriptor '", d,
      "' must be node.labels.<key> or engine.labels.<key>"));
}

std::string SpreadValue(absl::string_view d, const Node& node) {
  std::string l = Lower(d);
  if (absl::StartsWith(l, "node.labels.")) {
    return LabelOrEmpty(node.spec().annotations().labels(), std::string(d.substr(12)));
  }
  if (absl::StartsWith(l, "engine.labels.")) {
    return LabelOrEmpty(node.description().engine_labels(), std::string(d.substr(14)));
  }
  return "";
}

}  // namespace shoal::manager::scheduler
