#include "manager/ca/tls.h"

#include <grpcpp/security/tls_certificate_verifier.h>
#include <grpcpp/security/tls_credentials_options.h>

#include <utility>

namespace shoal::manager::ca {

std::shared_ptr<grpc::ServerCredentials> ServerCredentials(const TlsMaterial& material,
                                                           std::shared_ptr<Authorizer> authorizer) {
  grpc::SslServerCredentialsOptions options(GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY);
  options.pem_root_certs = material.root_pem;
  options.pem_key_cert_pairs.push_back({material.key_pem, material.cert_pem});
  auto creds = grpc::SslServerCredentials(options);
  creds->SetAuthMetadataProcessor(std::move(authorizer));
  return creds;
}

std::shared_ptr<grpc::ChannelCredentials> ChannelCredentials(const TlsMaterial& material) {
  grpc::SslCredentialsOptions options;
  options.pem_root_certs = material.root_pem;
  options.pem_private_key = material.key_pem;
  options.pem_cert_chain = material.cert_pem;
  return grpc::SslCredentials(options);
}

std::shared_ptr<grpc::Channel> DialManager(const std::string& address,
                                           std::shared_ptr<grpc::ChannelCredentials> creds) {
  grpc::ChannelArguments args;
  args.SetSslTargetNameOverride(kManagerServerName);
  return grpc::CreateCustomChannel(address, std::move(creds), args);
}

std::shared_ptr<grpc::ChannelCredentials> BootstrapCredentials() {
  grpc::experimental::TlsChannelCredentialsOptions options;
  options.set_verify_server_certs(false);
  options.set_check_call_host(false);
  options.set_certificate_verifier(
      std::make_shared<grpc::experimental::NoOpCertificateVerifier>());
  return grpc::experimental::TlsCredentials(options);
}

}  // namespace shoal::manager::ca
