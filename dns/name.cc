#include "dns/name.h"

#include <cctype>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace shoal::dns {

absl::StatusOr<std::vector<std::string>> SplitName(absl::string_view name) {
  std::vector<std::string> labels;
  if (name.empty() || name == ".") return labels;
  std::string cur;
  size_t wire = 1;  // the root label
  bool any = false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    if (c == '\\') {
      if (i + 1 >= name.size()) return absl::InvalidArgumentError("name: trailing backslash");
      char n = name[i + 1];
      if (std::isdigit(static_cast<unsigned char>(n))) {
        if (i + 3 >= name.size() || !std::isdigit(static_cast<unsigned char>(name[i + 2])) ||
            !std::isdigit(static_cast<unsigned char>(name[i + 3]))) {
          return absl::InvalidArgumentError("name: bad \\DDD escape");
        }
        int v = (n - '0') * 100 + (name[i + 2] - '0') * 10 + (name[i + 3] - '0');
        if (v > 255) return absl::InvalidArgumentError("name: \\DDD escape above 255");
        cur.push_back(static_cast<char>(v));
        i += 3;
      } else {
        cur.push_back(n);
        i += 1;
      }
      any = true;
      continue;
    }
    if (c == '.') {
      if (cur.empty()) return absl::InvalidArgumentError("name: empty label");
      if (cur.size() > kMaxLabelLength) return absl::InvalidArgumentError("name: label over 63");
      wire += cur.size() + 1;
      labels.push_back(std::move(cur));
      cur.clear();
      any = false;
      if (i + 1 == name.size()) break;  // trailing dot
      continue;
    }
    cur.push_back(c);
    any = true;
  }
  if (any || !cur.empty()) {
    if (cur.empty()) return absl::InvalidArgumentError("name: empty label");
    if (cur.size() > kMaxLabelLength) return absl::InvalidArgumentError("name: label over 63");
    wire += cur.size() + 1;
    labels.push_back(std::move(cur));
  }
  if (wire > kMaxNameWireLength) return absl::InvalidArgumentError("name: longer than 255 bytes");
  return labels;
}

std::string JoinLabels(const std::vector<std::string>& labels) {
  std::string out;
  for (size_t i = 0; i < labels.size(); ++i) {
    if (i) out.push_back('.');
    for (unsigned char c : labels[i]) {
      if (c == '.' || c == '\\') {
        out.push_back('\\');
        out.push_back(static_cast<char>(c));
      } else if (c < 0x21 || c > 0x7e) {
        absl::StrAppend(&out, "\\", c / 100, (c / 10) % 10, c % 10);
      } else {
        out.push_back(static_cast<char>(c));
      }
    }
  }
  return out;
}

std::string CanonicalName(absl::string_view name) {
  std::string out = absl::AsciiStrToLower(name);
  if (!out.empty() && out.back() == '.' && (out.size() < 2 || out[out.size() - 2] != '\\')) {
    out.pop_back();
  }
  return out;
}

std::string ReverseName(absl::string_view addr) {
  std::string out;
  if (addr.size() == 4) {
    for (int i = 3; i >= 0; --i) {
      absl::StrAppend(&out, static_cast<unsigned char>(addr[i]), ".");
    }
    return out + "in-addr.arpa";
  }
  static constexpr char kHex[] = "0123456789abcdef";
  for (int i = static_cast<int>(addr.size()) - 1; i >= 0; --i) {
    unsigned char b = static_cast<unsigned char>(addr[i]);
    out.push_back(kHex[b & 0xf]);
    out.push_back('.');
    out.push_back(kHex[b >> 4]);
    out.push_back('.');
  }
  return out + "ip6.arpa";
}

absl::StatusOr<std::string> AddressFromReverseName(absl::string_view name) {
  std::string n = CanonicalName(name);
  std::vector<absl::string_view> parts = absl::StrSplit(n, '.');
  auto not_found = absl::NotFoundError(absl::StrCat("not a reverse name: ", n));
  if (absl::EndsWith(n, ".in-addr.arpa")) {
    if (parts.size() != 6) return not_found;
    std::string addr(4, '\0');
    for (int i = 0; i < 4; ++i) {
      absl::string_view p = parts[i];
      if (p.empty() || p.size() > 3) return not_found;
      int v = 0;
      for (char c : p) {
        if (!std::isdigit(static_cast<unsigned char>(c))) return not_found;
        v = v * 10 + (c - '0');
      }
      if (v > 255 || (p.size() > 1 && p[0] == '0')) return not_found;
      addr[3 - i] = static_cast<char>(v);
    }
    return addr;
  }
  if (absl::EndsWith(n, ".ip6.arpa")) {
    if (parts.size() != 34) return not_found;
    std::string addr(16, '\0');
    for (int i = 0; i < 32; ++i) {
      absl::string_view p = parts[i];
      if (p.size() != 1 || !std::isxdigit(static_cast<unsigned char>(p[0]))) return not_found;
      int v = std::isdigit(static_cast<unsigned char>(p[0])) ? p[0] - '0' : p[0] - 'a' + 10;
      int byte = 15 - i / 2;
      addr[byte] = static_cast<char>(addr[byte] | (i % 2 == 0 ? v : v << 4));
    }
    return addr;
  }
  return not_found;
}

}  // namespace shoal::dns
