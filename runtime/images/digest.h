// Content digests ("sha256:<64 hex>") and streaming SHA-256 (OCI image-spec descriptor.md).
//
// Only sha256 is accepted for content addressing: it is the only algorithm registries and
// Docker use for blobs. sha512 parses (it is valid in references) but the store refuses it with a
// clear error. Thread safety: Digest is a value; Sha256 is not thread-safe (one per stream).
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace shoal::runtime::images {

struct Digest {
  std::string algorithm;  // "sha256"
  std::string hex;        // lowercase hex, 64 chars for sha256

  bool empty() const { return hex.empty(); }
  std::string String() const { return empty() ? std::string() : algorithm + ":" + hex; }
  bool operator==(const Digest& o) const = default;
  bool operator<(const Digest& o) const { return String() < o.String(); }
};

// Parses "sha256:<64 lowercase hex>" (or "sha512:<128 hex>"). INVALID_ARGUMENT naming the
// reason otherwise ("unsupported digest algorithm", "invalid digest length", ...).
absl::StatusOr<Digest> ParseDigest(absl::string_view s);

// Incremental SHA-256 (OpenSSL EVP).
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void Update(const void* data, size_t len);
  void Update(absl::string_view data) { Update(data.data(), data.size()); }
  // Finishes the hash; the object must not be updated afterwards.
  Digest Finish();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

Digest Sha256Of(absl::string_view data);

// ChainID per image-spec config.md: ChainID(L0) = DiffID(L0);
// ChainID(L0..n) = sha256(ChainID(L0..n-1) + " " + DiffID(Ln)).
Digest ChainIdOf(const Digest& parent_chain, const Digest& diff_id);

}  // namespace shoal::runtime::images
