// Small OpenSSL toolkit for the cluster CA: ECDSA P-256 keys, CSRs, PEM encoding, SHA-256.
//
// All functions are thread-safe (OpenSSL 3 objects are not shared between calls). Errors carry
// OpenSSL's own reason text, collected from its error queue in one place (OpenSslError).
#pragma once

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace shoal::manager::ca {

struct EvpPkeyDeleter {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct X509Deleter {
  void operator()(X509* p) const { X509_free(p); }
};
struct X509ReqDeleter {
  void operator()(X509_REQ* p) const { X509_REQ_free(p); }
};
using PKeyPtr = std::unique_ptr<EVP_PKEY, EvpPkeyDeleter>;
using X509Ptr = std::unique_ptr<X509, X509Deleter>;
using X509ReqPtr = std::unique_ptr<X509_REQ, X509ReqDeleter>;

// Status with `what` and the drained OpenSSL error queue.
absl::Status OpenSslError(absl::string_view what);

absl::StatusOr<PKeyPtr> GenerateP256Key();
absl::StatusOr<std::string> KeyToPem(EVP_PKEY* key);
absl::StatusOr<PKeyPtr> KeyFromPem(absl::string_view pem);
absl::StatusOr<std::string> CertToPem(X509* cert);
absl::StatusOr<X509Ptr> CertFromPem(absl::string_view pem);
absl::StatusOr<X509ReqPtr> CsrFromPem(absl::string_view pem);

// A CSR signed by `key`. The CA ignores the requested subject (it sets CN/OU/O itself), so the
// CN is informational only.
absl::StatusOr<std::string> CreateCsrPem(EVP_PKEY* key, absl::string_view common_name);

// SHA-256 of `data`, raw 32 bytes.
std::string Sha256(absl::string_view data);
// SHA-256 of the DER encoding of `cert`.
absl::StatusOr<std::string> CertDigest(X509* cert);

absl::Time Asn1TimeToAbsl(const ASN1_TIME* t);

}  // namespace shoal::manager::ca
