#include "manager/ca/join_token.h"

#include <openssl/crypto.h>

#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/status.h"

namespace shoal::manager::ca {
namespace {

constexpr char kDigits[] = "0123456789abcdefghijklmnopqrstuvwxyz";

int DigitValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'z') return c - 'a' + 10;
  return -1;
}

bool ConstantTimeEqual(absl::string_view a, absl::string_view b) {
  if (a.size() != b.size()) return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace

std::string EncodeBase36(absl::string_view bytes, size_t width) {
  std::vector<uint8_t> num(bytes.begin(), bytes.end());
  std::string out(width, '0');
  size_t pos = width;
  auto is_zero = [&] {
    for (uint8_t b : num) {
      if (b != 0) return false;
    }
    return true;
  };
  while (!is_zero() && pos > 0) {
    uint32_t rem = 0;
    for (uint8_t& b : num) {  // long division of the big-endian number by 36
      uint32_t cur = (rem << 8) | b;
      b = static_cast<uint8_t>(cur / 36);
      rem = cur % 36;
    }
    out[--pos] = kDigits[rem];
  }
  return out;
}

absl::StatusOr<std::string> DecodeBase36(absl::string_view digits, size_t byte_len) {
  std::vector<uint8_t> num(byte_len, 0);
  for (char c : digits) {
    int v = DigitValue(c);
    if (v < 0) return absl::InvalidArgumentError("not a base36 digit");
    uint32_t carry = static_cast<uint32_t>(v);
    for (size_t i = byte_len; i-- > 0;) {  // num = num * 36 + v
      uint32_t cur = num[i] * 36u + carry;
      num[i] = static_cast<uint8_t>(cur & 0xff);
      carry = cur >> 8;
    }
    if (carry != 0) return absl::InvalidArgumentError("value too large");
  }
  return std::string(num.begin(), num.end());
}

std::string FormatJoinToken(const JoinToken& token) {
  return absl::StrCat(kJoinTokenPrefix, "-", kJoinTokenVersion, "-",
                      EncodeBase36(token.root_digest, kDigestDigits), "-",
                      EncodeBase36(token.secret, kSecretDigits));
}

std::string GenerateJoinToken(absl::string_view root_digest, base::Random& random) {
  JoinToken token;
  token.root_digest = std::string(root_digest);
  token.secret.resize(16);
  random.Fill(std::span<uint8_t>(reinterpret_cast<uint8_t*>(token.secret.data()), 16));
  return FormatJoinToken(token);
}

absl::StatusOr<JoinToken> ParseJoinToken(absl::string_view text) {
  std::vector<absl::string_view> parts = absl::StrSplit(text, '-');
  if (parts.size() != 4 || parts[0] != kJoinTokenPrefix) {
    return absl::InvalidArgumentError(
        "join token: malformed (want SHLTKN-1-<50-digit root CA digest>-<25-digit secret>)");
  }
  if (parts[1] != absl::StrCat(kJoinTokenVersion)) {
    return absl::InvalidArgumentError(
        absl::StrCat("join token: unsupported version '", parts[1], "' (want 1)"));
  }
  if (parts[2].size() != kDigestDigits) {
    return absl::InvalidArgumentError(absl::StrCat("join token: root CA digest must be ",
                                                   kDigestDigits, " characters, got ",
                                                   parts[2].size()));
  }
  if (parts[3].size() != kSecretDigits) {
    return absl::InvalidArgumentError(absl::StrCat("join token: secret must be ", kSecretDigits,
                                                   " characters, got ", parts[3].size()));
  }
  JoinToken token;
  auto digest = DecodeBase36(parts[2], 32);
  if (!digest.ok()) return absl::InvalidArgumentError("join token: root CA digest is not base36");
  auto secret = DecodeBase36(parts[3], 16);
  if (!secret.ok()) return absl::InvalidArgumentError("join token: secret is not base36");
  token.root_digest = *std::move(digest);
  token.secret = *std::move(secret);
  return token;
}

absl::Status VerifyRootMatchesToken(const RootCA& fetched_root, const JoinToken& token) {
  if (!ConstantTimeEqual(fetched_root.digest(), token.root_digest)) {
    return absl::PermissionDeniedError(
        "join: the remote root CA does not match the digest in the join token (wrong cluster, "
        "or a man in the middle)");
  }
  return absl::OkStatus();
}

absl::StatusOr<Role> AuthorizeJoin(absl::string_view presented, absl::string_view worker_token,
                                   absl::string_view manager_token,
                                   absl::string_view root_digest) {
  ASSIGN_OR_RETURN(JoinToken token, ParseJoinToken(presented));
  if (!ConstantTimeEqual(token.root_digest, root_digest)) {
    return absl::PermissionDeniedError(
        "join: the token was issued for a different root CA (another cluster, or the CA rotated)");
  }
  // Compare against both so timing does not reveal which role a near-miss matched.
  bool is_manager = ConstantTimeEqual(presented, manager_token);
  bool is_worker = ConstantTimeEqual(presented, worker_token);
  if (is_manager) return Role::kManager;
  if (is_worker) return Role::kWorker;
  return absl::PermissionDeniedError("join: invalid join token (wrong or rotated)");
}

}  // namespace shoal::manager::ca
