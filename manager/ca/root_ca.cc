#include "manager/ca/root_ca.h"

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include <array>

#include "absl/strings/str_cat.h"
#include "base/status.h"
#include "manager/ca/pki.h"

namespace shoal::manager::ca {
namespace {

constexpr char kRootCommonName[] = "shoal-ca";

struct StoreDeleter {
  void operator()(X509_STORE* s) const { X509_STORE_free(s); }
};
struct StoreCtxDeleter {
  void operator()(X509_STORE_CTX* c) const { X509_STORE_CTX_free(c); }
};

absl::Status SetRandomSerial(X509* cert, base::Random& random) {
  std::array<uint8_t, 16> bytes;
  random.Fill(bytes);
  bytes[0] &= 0x7f;  // positive
  BIGNUM* bn = BN_bin2bn(bytes.data(), bytes.size(), nullptr);
  bool ok = bn != nullptr && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert)) != nullptr;
  BN_free(bn);
  return ok ? absl::OkStatus() : OpenSslError("set serial number");
}

absl::Status SetValidity(X509* cert, absl::Time not_before, absl::Time not_after) {
  if (!ASN1_TIME_set(X509_getm_notBefore(cert), absl::ToTimeT(not_before)) ||
      !ASN1_TIME_set(X509_getm_notAfter(cert), absl::ToTimeT(not_after))) {
    return OpenSslError("set validity");
  }
  return absl::OkStatus();
}

absl::Status AddExtension(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  if (ext == nullptr) return OpenSslError(absl::StrCat("build extension ", OBJ_nid2sn(nid)));
  int ok = X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
  return ok ? absl::OkStatus() : OpenSslError("add extension");
}

absl::Status AddName(X509_NAME* name, const char* field, const std::string& value) {
  if (!X509_NAME_add_entry_by_txt(name, field, MBSTRING_UTF8,
                                  reinterpret_cast<const unsigned char*>(value.c_str()), -1, -1,
                                  0)) {
    return OpenSslError(absl::StrCat("set subject ", field));
  }
  return absl::OkStatus();
}

std::string NameField(X509_NAME* name, int nid) {
  int idx = X509_NAME_get_index_by_NID(name, nid, -1);
  if (idx < 0) return "";
  ASN1_STRING* s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx));
  return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                     static_cast<size_t>(ASN1_STRING_length(s)));
}

// Ids appear in certificate subjects and SANs: keep them to a safe alphabet.
absl::Status ValidateIdField(absl::string_view field, absl::string_view value) {
  if (value.empty() || value.size() > 64) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": must be 1 to 64 characters, got ", value.size()));
  }
  for (char c : value) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.';
    if (!ok) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, ": invalid character '", std::string(1, c), "' in '", value, "'"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

const char* RoleName(Role role) {
  return role == Role::kManager ? "shoal-manager" : "shoal-worker";
}

absl::StatusOr<Role> RoleFromName(absl::string_view name) {
  if (name == "shoal-manager") return Role::kManager;
  if (name == "shoal-worker") return Role::kWorker;
  return absl::InvalidArgumentError(
      absl::StrCat("role: unknown role '", name, "' (want shoal-manager or shoal-worker)"));
}

absl::StatusOr<RootCA> RootCA::Create(base::Clock& clock, base::Random& random) {
  ASSIGN_OR_RETURN(PKeyPtr key, GenerateP256Key());
  X509Ptr cert(X509_new());
  if (!X509_set_version(cert.get(), 2)) return OpenSslError("set version");
  RETURN_IF_ERROR(SetRandomSerial(cert.get(), random));
  absl::Time now = clock.Now();
  RETURN_IF_ERROR(SetValidity(cert.get(), now - kCertBackdate, now + kRootCertValidity));
  X509_NAME* name = X509_get_subject_name(cert.get());
  RETURN_IF_ERROR(AddName(name, "CN", kRootCommonName));
  if (!X509_set_issuer_name(cert.get(), name) || !X509_set_pubkey(cert.get(), key.get())) {
    return OpenSslError("set root issuer/key");
  }
  RETURN_IF_ERROR(AddExtension(cert.get(), cert.get(), NID_basic_constraints, "critical,CA:TRUE"));
  RETURN_IF_ERROR(AddExtension(cert.get(), cert.get(), NID_key_usage,
                               "critical,keyCertSign,cRLSign,digitalSignature"));
  RETURN_IF_ERROR(AddExtension(cert.get(), cert.get(), NID_subject_key_identifier, "hash"));
  if (!X509_sign(cert.get(), key.get(), EVP_sha256())) return OpenSslError("sign root");
  ASSIGN_OR_RETURN(std::string cert_pem, CertToPem(cert.get()));
  ASSIGN_OR_RETURN(std::string key_pem, KeyToPem(key.get()));
  ASSIGN_OR_RETURN(std::string digest, CertDigest(cert.get()));
  return RootCA(std::move(cert_pem), std::move(key_pem), std::move(digest));
}

absl::StatusOr<RootCA> RootCA::FromPem(absl::string_view cert_pem, absl::string_view key_pem) {
  auto cert = CertFromPem(cert_pem);
  if (!cert.ok()) return base::Annotate(cert.status(), "root CA certificate");
  if (X509_check_ca(cert->get()) == 0) {
    return absl::InvalidArgumentError("root CA certificate: not a CA certificate");
  }
  if (!key_pem.empty()) {
    auto key = KeyFromPem(key_pem);
    if (!key.ok()) return base::Annotate(key.status(), "root CA key");
    if (X509_check_private_key(cert->get(), key->get()) != 1) {
      ERR_clear_error();
      return absl::InvalidArgumentError("root CA key: does not match the root certificate");
    }
  }
  ASSIGN_OR_RETURN(std::string digest, CertDigest(cert->get()));
  return RootCA(std::string(cert_pem), std::string(key_pem), std::move(digest));
}

absl::StatusOr<std::string> RootCA::IssueNodeCertificate(absl::string_view csr_pem,
                                                         const IssueOptions& options,
                                                         base::Clock& clock,
                                                         base::Random& random) const {
  if (!can_sign()) {
    return absl::FailedPreconditionError("issue certificate: this root CA has no signing key");
  }
  RETURN_IF_ERROR(ValidateIdField("node_id", options.node_id));
  RETURN_IF_ERROR(ValidateIdField("cluster_id", options.cluster_id));
  if (options.validity < options.min_validity) {
    return absl::InvalidArgumentError(
        absl::StrCat("validity: ", absl::FormatDuration(options.validity),
                     " is below the minimum of ", absl::FormatDuration(options.min_validity)));
  }
  auto csr = CsrFromPem(csr_pem);
  if (!csr.ok()) return base::Annotate(csr.status(), "csr");
  EVP_PKEY* pub = X509_REQ_get0_pubkey(csr->get());
  if (pub == nullptr || X509_REQ_verify(csr->get(), pub) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError("csr: signature does not verify");
  }
  if (EVP_PKEY_get_base_id(pub) != EVP_PKEY_EC) {
    return absl::InvalidArgumentError("csr: key must be ECDSA P-256");
  }
  ASSIGN_OR_RETURN(X509Ptr root, CertFromPem(cert_pem_));
  ASSIGN_OR_RETURN(PKeyPtr root_key, KeyFromPem(key_pem_));

  X509Ptr cert(X509_new());
  if (!X509_set_version(cert.get(), 2)) return OpenSslError("set version");
  RETURN_IF_ERROR(SetRandomSerial(cert.get(), random));
  absl::Time now = clock.Now();
  absl::Time not_after = now + options.validity;
  // Never outlive the root.
  not_after = std::min(not_after, Asn1TimeToAbsl(X509_get0_notAfter(root.get())));
  RETURN_IF_ERROR(SetValidity(cert.get(), now - kCertBackdate, not_after));
  X509_NAME* name = X509_get_subject_name(cert.get());
  RETURN_IF_ERROR(AddName(name, "O", options.cluster_id));
  RETURN_IF_ERROR(AddName(name, "OU", RoleName(options.role)));
  RETURN_IF_ERROR(AddName(name, "CN", options.node_id));
  if (!X509_set_issuer_name(cert.get(), X509_get_subject_name(root.get())) ||
      !X509_set_pubkey(cert.get(), pub)) {
    return OpenSslError("set issuer/key");
  }
  RETURN_IF_ERROR(AddExtension(cert.get(), root.get(), NID_basic_constraints, "critical,CA:FALSE"));
  RETURN_IF_ERROR(
      AddExtension(cert.get(), root.get(), NID_key_usage, "critical,digitalSignature,keyEncipherment"));
  RETURN_IF_ERROR(AddExtension(cert.get(), root.get(), NID_ext_key_usage, "serverAuth,clientAuth"));
  RETURN_IF_ERROR(AddExtension(
      cert.get(), root.get(), NID_subject_alt_name,
      absl::StrCat("DNS:", RoleName(options.role), ",DNS:", options.node_id).c_str()));
  RETURN_IF_ERROR(AddExtension(cert.get(), root.get(), NID_authority_key_identifier, "keyid"));
  if (!X509_sign(cert.get(), root_key.get(), EVP_sha256())) return OpenSslError("sign node cert");
  return CertToPem(cert.get());
}

absl::StatusOr<NodeIdentity> RootCA::VerifyNodeCertificate(absl::string_view cert_pem,
                                                           absl::Time now) const {
  auto cert = CertFromPem(cert_pem);
  if (!cert.ok()) return absl::PermissionDeniedError(std::string(cert.status().message()));
  ASSIGN_OR_RETURN(X509Ptr root, CertFromPem(cert_pem_));
  std::unique_ptr<X509_STORE, StoreDeleter> store(X509_STORE_new());
  std::unique_ptr<X509_STORE_CTX, StoreCtxDeleter> ctx(X509_STORE_CTX_new());
  if (!X509_STORE_add_cert(store.get(), root.get()) ||
      !X509_STORE_CTX_init(ctx.get(), store.get(), cert->get(), nullptr)) {
    return OpenSslError("set up verification");
  }
  X509_STORE_CTX_set_time(ctx.get(), 0, absl::ToTimeT(now));
  if (X509_verify_cert(ctx.get()) != 1) {
    int err = X509_STORE_CTX_get_error(ctx.get());
    ERR_clear_error();
    return absl::PermissionDeniedError(absl::StrCat("certificate does not verify against the root CA: ",
                                                    X509_verify_cert_error_string(err)));
  }
  X509_NAME* subject = X509_get_subject_name(cert->get());
  NodeIdentity id;
  id.node_id = NameField(subject, NID_commonName);
  id.cluster_id = NameField(subject, NID_organizationName);
  auto role = RoleFromName(NameField(subject, NID_organizationalUnitName));
  if (!role.ok()) return absl::PermissionDeniedError(std::string(role.status().message()));
  id.role = *role;
  id.not_before = Asn1TimeToAbsl(X509_get0_notBefore(cert->get()));
  id.not_after = Asn1TimeToAbsl(X509_get0_notAfter(cert->get()));
  if (id.node_id.empty() || id.cluster_id.empty()) {
    return absl::PermissionDeniedError("certificate subject lacks CN (node id) or O (cluster id)");
  }
  return id;
}

absl::Time RenewalTime(absl::Time not_before, absl::Time not_after, base::Random& random) {
  absl::Duration lifetime = not_after - not_before;
  if (lifetime <= absl::ZeroDuration()) return not_before;
  // Uniform fraction in [0.5, 0.8] with 1e-6 resolution.
  double fraction = 0.5 + 0.3 * static_cast<double>(random.Uniform(1'000'001)) / 1e6;
  return not_before + lifetime * fraction;
}

absl::Time IssuedAt(const NodeIdentity& identity) {
  absl::Time issued = identity.not_before + kCertBackdate;
  return issued < identity.not_after ? issued : identity.not_before;
}

}  // namespace shoal::manager::ca
