#include "manager/ca/join.h"

#include <chrono>

#include "absl/strings/str_cat.h"
#include "api/ca.grpc.pb.h"
#include "base/status.h"
#include "manager/ca/join_token.h"
#include "manager/ca/pki.h"

namespace shoal::manager::ca {
namespace {

namespace api = ::shoal::api::v1;

absl::Status FromGrpc(const grpc::Status& s, absl::string_view what) {
  if (s.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()),
                      absl::StrCat(what, ": ", s.error_message()));
}

void SetDeadline(grpc::ClientContext& ctx, absl::Duration timeout) {
  ctx.set_deadline(std::chrono::system_clock::now() + absl::ToChronoMilliseconds(timeout));
}

// Steps 3–4 of the flow over a channel that verifies the server against `root`.
absl::StatusOr<JoinResult> RequestCertificate(const std::string& address, const RootCA& root,
                                              const TlsMaterial& client, const std::string& token,
                                              base::Clock& clock, absl::Duration timeout) {
  ASSIGN_OR_RETURN(PKeyPtr key, GenerateP256Key());
  ASSIGN_OR_RETURN(std::string key_pem, KeyToPem(key.get()));
  ASSIGN_OR_RETURN(std::string csr, CreateCsrPem(key.get(), "shoal-node"));

  TlsMaterial verify = client;
  verify.root_pem = root.cert_pem();
  auto stub = api::NodeCA::NewStub(DialManager(address, ChannelCredentials(verify)));
  api::IssueNodeCertificateRequest req;
  req.set_csr(csr);
  req.set_token(token);
  api::IssueNodeCertificateResponse resp;
  {
    grpc::ClientContext ctx;
    SetDeadline(ctx, timeout);
    RETURN_IF_ERROR(FromGrpc(stub->IssueNodeCertificate(&ctx, req, &resp),
                             absl::StrCat("requesting a certificate from ", address)));
  }
  api::NodeCertificateStatusRequest sreq;
  sreq.set_node_id(resp.node_id());
  api::NodeCertificateStatusResponse sresp;
  {
    grpc::ClientContext ctx;
    SetDeadline(ctx, timeout);
    RETURN_IF_ERROR(FromGrpc(stub->NodeCertificateStatus(&ctx, sreq, &sresp),
                             absl::StrCat("reading the issued certificate from ", address)));
  }
  if (sresp.certificate().state() != api::Certificate::ISSUANCE_ISSUED) {
    return absl::UnavailableError(absl::StrCat("certificate for node ", resp.node_id(),
                                               " not issued: ", sresp.certificate().err()));
  }
  const std::string& cert_pem = sresp.certificate().certificate();
  ASSIGN_OR_RETURN(NodeIdentity identity, root.VerifyNodeCertificate(cert_pem, clock.Now()));
  if (identity.node_id != resp.node_id()) {
    return absl::PermissionDeniedError(absl::StrCat("issued certificate names node ",
                                                    identity.node_id, ", expected ",
                                                    resp.node_id()));
  }
  ASSIGN_OR_RETURN(X509Ptr x509, CertFromPem(cert_pem));
  if (X509_check_private_key(x509.get(), key.get()) != 1) {
    return absl::PermissionDeniedError("issued certificate does not match the local key");
  }
  JoinResult result;
  result.identity = std::move(identity);
  result.tls.root_pem = root.cert_pem();
  result.tls.cert_pem = cert_pem;
  result.tls.key_pem = std::move(key_pem);
  return result;
}

}  // namespace

absl::StatusOr<JoinResult> Join(const std::string& manager_address, const std::string& token,
                                base::Clock& clock, absl::Duration timeout) {
  ASSIGN_OR_RETURN(JoinToken parsed, ParseJoinToken(token));
  auto ca = api::CA::NewStub(DialManager(manager_address, BootstrapCredentials()));
  api::GetRootCACertificateResponse root_resp;
  {
    grpc::ClientContext ctx;
    SetDeadline(ctx, timeout);
    RETURN_IF_ERROR(FromGrpc(ca->GetRootCACertificate(&ctx, {}, &root_resp),
                             absl::StrCat("fetching the root CA from ", manager_address)));
  }
  ASSIGN_OR_RETURN(RootCA root, RootCA::FromPem(root_resp.certificate(), ""));
  RETURN_IF_ERROR(VerifyRootMatchesToken(root, parsed));
  return RequestCertificate(manager_address, root, TlsMaterial{}, token, clock, timeout);
}

absl::StatusOr<JoinResult> Renew(const std::string& manager_address, const TlsMaterial& current,
                                 base::Clock& clock, absl::Duration timeout) {
  ASSIGN_OR_RETURN(RootCA root, RootCA::FromPem(current.root_pem, ""));
  return RequestCertificate(manager_address, root, current, "", clock, timeout);
}

}  // namespace shoal::manager::ca
