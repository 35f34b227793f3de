// The cluster's mTLS, access policy and join flow over real gRPC servers on loopback TCP:
// a manager listener with the CA, NodeCA and Control services behind Authorizer.
#include <chrono>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "api/control.grpc.pb.h"
#include "api/dispatcher.grpc.pb.h"
#include "base/clock.h"
#include "base/random.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "manager/ca/authz.h"
#include "manager/ca/ca_service.h"
#include "manager/ca/join.h"
#include "manager/ca/join_token.h"
#include "manager/ca/tls.h"
#include "manager/controlapi/control_service.h"
#include "manager/store/fake_proposer.h"

namespace shoal::manager::ca {
namespace {

class MtlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    proposer_.Attach(&store_);
    auto boot = BootstrapCluster(store_, clock_, random_);
    ASSERT_TRUE(boot.ok()) << boot.status();
    manager_ = *boot;
    auto cluster = GetCluster(store_.View());
    ASSERT_TRUE(cluster.ok());
    cluster_ = **cluster;
    auto root = RootCA::FromPem(cluster_.root_ca().ca_cert(), "");
    ASSERT_TRUE(root.ok());

    Authorizer::Options options;
    options.root = std::make_shared<const RootCA>(*root);
    options.cluster_id = cluster_.id();
    options.clock = &clock_;
    options.is_removed = [this](const std::string& id) { return IsRemovedNode(store_.View(), id); };
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0",
                             ServerCredentials(manager_.tls, std::make_shared<Authorizer>(options)),
                             &port);
    builder.RegisterService(&ca_service_);
    builder.RegisterService(&node_ca_service_);
    builder.RegisterService(&control_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    address_ = absl::StrCat("127.0.0.1:", port);
  }
  void TearDown() override {
    if (server_) server_->Shutdown();
  }

  std::string WorkerToken() { return GetCluster(store_.View()).value()->root_ca().join_tokens().worker(); }
  std::string ManagerToken() {
    return GetCluster(store_.View()).value()->root_ca().join_tokens().manager();
  }

  // A Control call made with `tls` client material.
  grpc::Status ListNodes(const TlsMaterial& tls, api::ListNodesResponse* out = nullptr) {
    auto stub = api::Control::NewStub(DialManager(address_, ChannelCredentials(tls)));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    api::ListNodesResponse resp;
    auto s = stub->ListNodes(&ctx, {}, &resp);
    if (out != nullptr) *out = resp;
    return s;
  }

  store::FakeProposer proposer_;
  base::RealClock clock_;  // TLS checks validity against the real time
  base::SystemRandom random_;
  store::MemoryStore store_{&proposer_, &clock_, &random_};
  CAService ca_service_{store_};
  NodeCAService node_ca_service_{store_, clock_, random_};
  controlapi::ControlService control_{store_, random_};
  JoinResult manager_;
  api::Cluster cluster_;
  std::unique_ptr<grpc::Server> server_;
  std::string address_;
};

TEST_F(MtlsTest, ManagerCertificateCanCallTheControlApi) {
  api::ListNodesResponse resp;
  auto s = ListNodes(manager_.tls, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(resp.nodes_size(), 1);
  EXPECT_EQ(resp.nodes(0).id(), manager_.identity.node_id);
  EXPECT_EQ(resp.nodes(0).role(), api::NODE_ROLE_MANAGER);
}

TEST_F(MtlsTest, WorkerJoinsWithTheWorkerTokenAndCannotCallTheControlApi) {
  auto worker = Join(address_, WorkerToken(), clock_);
  ASSERT_TRUE(worker.ok()) << worker.status();
  EXPECT_EQ(worker->identity.role, Role::kWorker);
  EXPECT_EQ(worker->identity.cluster_id, cluster_.id());
  auto node = store_.View().Get<api::Node>(worker->identity.node_id);
  ASSERT_NE(node, nullptr);
  EXPECT_EQ(node->role(), api::NODE_ROLE_WORKER);
  EXPECT_EQ(node->spec().membership(), api::NodeSpec::MEMBERSHIP_ACCEPTED);

  auto s = ListNodes(worker->tls);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();
  EXPECT_NE(s.error_message().find("managers only"), std::string::npos) << s.error_message();
  EXPECT_NE(s.error_message().find(worker->identity.node_id), std::string::npos);
}

TEST_F(MtlsTest, WorkerCertificateMayCallTheDispatcher) {
  // The policy lets nodes through to the dispatcher; no dispatcher is registered here, so a
  // call that passed the authorizer reaches gRPC's UNIMPLEMENTED, one that did not is refused.
  auto worker = Join(address_, WorkerToken(), clock_);
  ASSERT_TRUE(worker.ok()) << worker.status();
  auto stub = api::Dispatcher::NewStub(DialManager(address_, ChannelCredentials(worker->tls)));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  api::HeartbeatResponse resp;
  EXPECT_EQ(stub->Heartbeat(&ctx, {}, &resp).error_code(), grpc::StatusCode::UNIMPLEMENTED);

  auto anon = api::Dispatcher::NewStub(
      DialManager(address_, ChannelCredentials({manager_.tls.root_pem, "", ""})));
  grpc::ClientContext ctx2;
  ctx2.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  auto s = anon->Heartbeat(&ctx2, {}, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED) << s.error_message();
}

TEST_F(MtlsTest, ManagerTokenGivesAManagerCertificate) {
  auto m = Join(address_, ManagerToken(), clock_);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->identity.role, Role::kManager);
  EXPECT_TRUE(ListNodes(m->tls).ok());
}

TEST_F(MtlsTest, NoClientCertificateIsRefusedForControlButMayFetchTheRoot) {
  auto s = ListNodes({manager_.tls.root_pem, "", ""});
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED) << s.error_message();
  EXPECT_NE(s.error_message().find("none was presented"), std::string::npos);

  auto ca = api::CA::NewStub(DialManager(address_, BootstrapCredentials()));
  grpc::ClientContext ctx;
  api::GetRootCACertificateResponse resp;
  ASSERT_TRUE(ca->GetRootCACertificate(&ctx, {}, &resp).ok());
  EXPECT_EQ(resp.certificate(), cluster_.root_ca().ca_cert());
}

TEST_F(MtlsTest, WrongTokenIsRefused) {
  // Right root digest, wrong secret.
  auto parsed = ParseJoinToken(WorkerToken());
  ASSERT_TRUE(parsed.ok());
  parsed->secret[0] ^= 1;
  auto r = Join(address_, FormatJoinToken(*parsed), clock_);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kPermissionDenied) << r.status();
  EXPECT_EQ(r.status().message().find(FormatJoinToken(*parsed)), std::string::npos)
      << "the error must not echo the token";
  // No node was created for the refused join.
  EXPECT_EQ(store_.View().Count<api::Node>(), 1u);
}

TEST_F(MtlsTest, TokenForAnotherRootIsRefusedBeforeSendingAnything) {
  auto parsed = ParseJoinToken(WorkerToken());
  ASSERT_TRUE(parsed.ok());
  parsed->root_digest[0] ^= 1;
  auto r = Join(address_, FormatJoinToken(*parsed), clock_);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kPermissionDenied) << r.status();
  EXPECT_EQ(store_.View().Count<api::Node>(), 1u);
}

TEST_F(MtlsTest, RotatedTokenIsRefusedAndTheNewOneWorks) {
  std::string old_token = WorkerToken();
  api::Cluster cluster = *GetCluster(store_.View()).value();
  {
    auto stub = api::Control::NewStub(DialManager(address_, ChannelCredentials(manager_.tls)));
    grpc::ClientContext ctx;
    api::UpdateClusterRequest req;
    req.mutable_cluster_version()->set_index(cluster.meta().version().index());
    *req.mutable_spec() = cluster.spec();
    req.set_rotate_worker_token(true);
    api::UpdateClusterResponse resp;
    auto s = stub->UpdateCluster(&ctx, req, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_TRUE(resp.cluster().root_ca().ca_key().empty()) << "the CA key must never leave";
  }
  ASSERT_NE(WorkerToken(), old_token);
  auto r = Join(address_, old_token, clock_);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kPermissionDenied) << r.status();
  auto ok = Join(address_, WorkerToken(), clock_);
  EXPECT_TRUE(ok.ok()) << ok.status();
}

TEST_F(MtlsTest, RemovedNodeIsRefusedEvenWithAValidCertificate) {
  auto m = Join(address_, ManagerToken(), clock_);
  ASSERT_TRUE(m.ok()) << m.status();
  ASSERT_TRUE(ListNodes(m->tls).ok());
  // Demote is not needed for a blacklist entry; write it as RemoveNode does.
  ASSERT_TRUE(store_
                  .Update([&](store::Tx& tx) -> absl::Status {
                    api::Cluster c = *GetCluster(tx).value();
                    (*c.mutable_blacklisted_certificates())[m->identity.node_id];
                    return tx.Update(c);
                  })
                  .ok());
  auto s = ListNodes(m->tls);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();
  EXPECT_NE(s.error_message().find("was removed"), std::string::npos) << s.error_message();
}

TEST_F(MtlsTest, RenewalKeepsTheIdAndFollowsTheNodeRole) {
  auto w = Join(address_, WorkerToken(), clock_);
  ASSERT_TRUE(w.ok()) << w.status();
  // A desired role alone changes nothing: the role manager has not accepted it yet.
  ASSERT_TRUE(store_
                  .Update([&](store::Tx& tx) -> absl::Status {
                    api::Node n = *tx.Get<api::Node>(w->identity.node_id);
                    n.mutable_spec()->set_desired_role(api::NODE_ROLE_MANAGER);
                    return tx.Update(n);
                  })
                  .ok());
  auto same = Renew(address_, w->tls, clock_);
  ASSERT_TRUE(same.ok()) << same.status();
  EXPECT_EQ(same->identity.role, Role::kWorker);
  // Promote (as the role manager does: Node.role) and renew with the current certificate.
  ASSERT_TRUE(store_
                  .Update([&](store::Tx& tx) -> absl::Status {
                    api::Node n = *tx.Get<api::Node>(w->identity.node_id);
                    n.set_role(api::NODE_ROLE_MANAGER);
                    return tx.Update(n);
                  })
                  .ok());
  auto renewed = Renew(address_, w->tls, clock_);
  ASSERT_TRUE(renewed.ok()) << renewed.status();
  EXPECT_EQ(renewed->identity.node_id, w->identity.node_id);
  EXPECT_EQ(renewed->identity.role, Role::kManager);
  EXPECT_NE(renewed->tls.key_pem, w->tls.key_pem) << "renewal rotates the key";
  EXPECT_TRUE(ListNodes(renewed->tls).ok());
}

TEST_F(MtlsTest, CertificateFromAnotherClusterFailsTheHandshakeCheck) {
  store::FakeProposer other_proposer;
  store::MemoryStore other{&other_proposer, &clock_, &random_};
  other_proposer.Attach(&other);
  auto foreign = BootstrapCluster(other, clock_, random_);
  ASSERT_TRUE(foreign.ok());
  TlsMaterial tls = foreign->tls;
  tls.root_pem = manager_.tls.root_pem;  // trusts our server, presents a foreign client cert
  auto s = ListNodes(tls);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.error_code(), grpc::StatusCode::OK);
}

}  // namespace
}  // namespace shoal::manager::ca
