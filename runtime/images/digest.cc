#include "runtime/images/digest.h"

#include <openssl/evp.h>

#include "absl/strings/str_cat.h"
#include "base/check.h"

namespace shoal::runtime::images {
namespace {

bool IsLowerHex(absl::string_view s) {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

}  // namespace

absl::StatusOr<Digest> ParseDigest(absl::string_view s) {
  size_t colon = s.find(':');
  if (colon == absl::string_view::npos || colon == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid digest \"", s, "\": expected <algorithm>:<hex>"));
  }
  absl::string_view alg = s.substr(0, colon);
  absl::string_view hex = s.substr(colon + 1);
  size_t want = 0;
  if (alg == "sha256") {
    want = 64;
  } else if (alg == "sha512") {
    want = 128;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid digest \"", s, "\": unsupported digest algorithm \"", alg, "\""));
  }
  if (hex.size() != want) {
    return absl::InvalidArgumentError(absl::StrCat("invalid digest \"", s, "\": ", alg, " needs ",
                                                   want, " hex characters, got ", hex.size()));
  }
  if (!IsLowerHex(hex)) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid digest \"", s, "\": hex part must be lowercase [0-9a-f]"));
  }
  return Digest{std::string(alg), std::string(hex)};
}

struct Sha256::Impl {
  EVP_MD_CTX* ctx = nullptr;
};

Sha256::Sha256() : impl_(std::make_unique<Impl>()) {
  impl_->ctx = EVP_MD_CTX_new();
  CHECK(impl_->ctx != nullptr) << "EVP_MD_CTX_new";
  CHECK(EVP_DigestInit_ex(impl_->ctx, EVP_sha256(), nullptr) == 1) << "EVP_DigestInit_ex";
}

Sha256::~Sha256() { EVP_MD_CTX_free(impl_->ctx); }

void Sha256::Update(const void* data, size_t len) {
  CHECK(EVP_DigestUpdate(impl_->ctx, data, len) == 1) << "EVP_DigestUpdate";
}

Digest Sha256::Finish() {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  CHECK(EVP_DigestFinal_ex(impl_->ctx, md, &n) == 1) << "EVP_DigestFinal_ex";
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(n * 2);
  for (unsigned int i = 0; i < n; ++i) {
    hex.push_back(kHex[md[i] >> 4]);
    hex.push_back(kHex[md[i] & 15]);
  }
  return Digest{"sha256", std::move(hex)};
}

Digest Sha256Of(absl::string_view data) {
  Sha256 h;
  h.Update(data);
  return h.Finish();
}

Digest ChainIdOf(const Digest& parent_chain, const Digest& diff_id) {
  if (parent_chain.empty()) return diff_id;
  return Sha256Of(absl::StrCat(parent_chain.String(), " ", diff_id.String()));
}

}  // namespace shoal::runtime::images
