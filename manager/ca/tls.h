// gRPC credentials for the cluster's mTLS (DESIGN.md §6 Security).
//
// Servers present their node certificate (SAN "shoal-manager") and verify a client certificate
// when one is presented (GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY): joining nodes have no
// certificate yet and may reach only the public CA methods — Authorizer (authz.h) enforces the
// per-method policy for everything else. Clients verify the server against the cluster root and
// dial managers by role name, whatever address they use.
// BootstrapCredentials() does NOT verify the server: it exists only to fetch the root CA
// certificate before the joiner trusts anything, and the caller must check that certificate
// against the join token's digest (join.h) before using it.
#pragma once

#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "manager/ca/authz.h"

namespace shoal::manager::ca {

// The name servers are dialled by (a DNS SAN of every manager certificate).
inline constexpr char kManagerServerName[] = "shoal-manager";

struct TlsMaterial {
  std::string root_pem;  // cluster root certificate
  std::string cert_pem;  // this node's certificate (empty for a client without one)
  std::string key_pem;   // its private key
};

// Server credentials for a manager listener; `authorizer` runs for every call.
std::shared_ptr<grpc::ServerCredentials> ServerCredentials(const TlsMaterial& material,
                                                           std::shared_ptr<Authorizer> authorizer);

// Client credentials: verify the server against root_pem; present cert/key when given.
std::shared_ptr<grpc::ChannelCredentials> ChannelCredentials(const TlsMaterial& material);

// Channel to a manager at `address` ("host:port") with the server name pinned to the role name.
std::shared_ptr<grpc::Channel> DialManager(const std::string& address,
                                           std::shared_ptr<grpc::ChannelCredentials> creds);

// TLS without server verification, for fetching the root CA only (see above).
std::shared_ptr<grpc::ChannelCredentials> BootstrapCredentials();

}  // namespace shoal::manager::ca
