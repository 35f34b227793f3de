// The Control service's cluster object, node removal/demotion, task removal and Watch, through
// a real gRPC server on a unix socket (the local admin socket) over a store.
#include <stdlib.h>

#include <chrono>
#include <filesystem>

#include "base/clock.h"
#include "base/random.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "manager/ca/ca_service.h"
#include "manager/controlapi/control_service.h"
#include "manager/store/fake_proposer.h"

namespace shoal::manager::controlapi {
namespace {

class ClusterApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    proposer_.Attach(&store_);
    ASSERT_TRUE(ca::InitCluster(store_, clock_, random_).ok());
    char tmpl[] = "/tmp/shoal-clusterapi-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    std::string addr = "unix:" + dir_ + "/control.sock";
    grpc::ServerBuilder builder;
    builder.AddListeningPort(addr, grpc::InsecureServerCredentials());
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    stub_ = api::Control::NewStub(grpc::CreateChannel(addr, grpc::InsecureChannelCredentials()));
  }
  void TearDown() override {
    server_->Shutdown();
    std::filesystem::remove_all(dir_);
  }

  api::Cluster GetCluster() {
    grpc::ClientContext ctx;
    api::GetClusterResponse resp;
    EXPECT_TRUE(stub_->GetCluster(&ctx, {}, &resp).ok());
    return resp.cluster();
  }
  grpc::Status UpdateCluster(const api::ClusterSpec& spec, uint64_t version, bool rotate = false) {
    grpc::ClientContext ctx;
    api::UpdateClusterRequest req;
    *req.mutable_spec() = spec;
    req.mutable_cluster_version()->set_index(version);
    req.set_rotate_worker_token(rotate);
    api::UpdateClusterResponse resp;
    return stub_->UpdateCluster(&ctx, req, &resp);
  }
  // A node as the CA/dispatcher would have stored it.
  void AddNode(const std::string& id, api::NodeRole role, bool reachable,
               api::NodeStatus::State state = api::NodeStatus::STATE_READY) {
    api::Node n;
    n.set_id(id);
    n.mutable_spec()->set_desired_role(role);
    n.set_role(role);
    n.mutable_status()->set_state(state);
    if (role == api::NODE_ROLE_MANAGER) {
      n.mutable_manager_status()->set_reachability(
          reachable ? api::ManagerStatus::REACHABILITY_REACHABLE
                    : api::ManagerStatus::REACHABILITY_UNREACHABLE);
    }
    ASSERT_TRUE(store_.Update([&](store::Tx& tx) { return tx.Create(n); }).ok());
  }
  grpc::Status SetRole(const std::string& id, api::NodeRole role) {
    auto node = store_.View().Get<api::Node>(id);
    grpc::ClientContext ctx;
    api::UpdateNodeRequest req;
    req.set_node_id(id);
    req.mutable_node_version()->set_index(node->meta().version().index());
    *req.mutable_spec() = node->spec();
    req.mutable_spec()->set_desired_role(role);
    api::UpdateNodeResponse resp;
    return stub_->UpdateNode(&ctx, req, &resp);
  }
  grpc::Status Remove(const std::string& id, bool force) {
    grpc::ClientContext ctx;
    api::RemoveNodeRequest req;
    req.set_node_id(id);
    req.set_force(force);
    api::RemoveNodeResponse resp;
    return stub_->RemoveNode(&ctx, req, &resp);
  }

  store::FakeProposer proposer_;
  base::RealClock clock_;
  base::SystemRandom random_;
  store::MemoryStore store_{&proposer_, &clock_, &random_};
  ControlService service_{store_, random_, &clock_};
  std::string dir_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<api::Control::Stub> stub_;
};

TEST_F(ClusterApiTest, GetClusterNeverReturnsTheCaKey) {
  api::Cluster c = GetCluster();
  EXPECT_EQ(c.spec().annotations().name(), "default");
  EXPECT_FALSE(c.root_ca().ca_cert().empty());
  EXPECT_TRUE(c.root_ca().ca_key().empty());
  EXPECT_FALSE(c.root_ca().join_tokens().worker().empty());
  EXPECT_FALSE(store_.View().Find<api::Cluster>(store::All()).front()->root_ca().ca_key().empty());
}

TEST_F(ClusterApiTest, UpdateClusterValidatesChecksVersionAndRotates) {
  api::Cluster c = GetCluster();
  api::ClusterSpec spec = c.spec();
  spec.mutable_ca_config()->mutable_node_cert_expiry()->set_seconds(60);
  auto bad = UpdateCluster(spec, c.meta().version().index());
  EXPECT_EQ(bad.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(bad.error_message().find("spec.ca_config.node_cert_expiry"), std::string::npos);

  spec = c.spec();
  spec.mutable_raft()->set_election_tick(1);
  spec.mutable_raft()->set_heartbeat_tick(1);
  EXPECT_NE(UpdateCluster(spec, c.meta().version().index()).error_message().find(
                "spec.raft.election_tick"),
            std::string::npos);

  spec = c.spec();
  spec.mutable_orchestration()->set_task_history_retention_limit(2);
  auto stale = UpdateCluster(spec, c.meta().version().index() - 1);
  EXPECT_EQ(stale.error_code(), grpc::StatusCode::ABORTED);
  ASSERT_TRUE(UpdateCluster(spec, c.meta().version().index(), /*rotate=*/true).ok());
  api::Cluster after = GetCluster();
  EXPECT_EQ(after.spec().orchestration().task_history_retention_limit(), 2);
  EXPECT_NE(after.root_ca().join_tokens().worker(), c.root_ca().join_tokens().worker());
  EXPECT_EQ(after.root_ca().join_tokens().manager(), c.root_ca().join_tokens().manager());
}

TEST_F(ClusterApiTest, DemotionThatLosesQuorumIsRefused) {
  AddNode("m1", api::NODE_ROLE_MANAGER, true);
  AddNode("m2", api::NODE_ROLE_MANAGER, true);
  AddNode("m3", api::NODE_ROLE_MANAGER, false);
  // Demoting m1 leaves m2 (reachable) and m3 (not): 1 of 2 reachable, quorum of 2 needs 2.
  auto s = SetRole("m1", api::NODE_ROLE_WORKER);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(s.error_message().find("loss of quorum"), std::string::npos) << s.error_message();
  // Demoting the unreachable m3 leaves m1, m2 both reachable.
  ASSERT_TRUE(SetRole("m3", api::NODE_ROLE_WORKER).ok());
  auto m3 = store_.View().Get<api::Node>("m3");
  EXPECT_EQ(m3->certificate().state(), api::Certificate::ISSUANCE_RENEW);
}

// SwarmKit's rule on the live raft view (controlapi/node.go + raft.go CanRemoveMember): the
// members left after the removal must have a quorum of reachable ones, the serving manager
// counting as reachable.
TEST_F(ClusterApiTest, DemotionJudgedOnTheLiveRaftView) {
  for (const char* id : {"m1", "m2", "m3", "m4", "m5"}) {
    AddNode(id, api::NODE_ROLE_MANAGER, true);  // the store says reachable: the live view wins
  }
  AddNode("m6", api::NODE_ROLE_WORKER, false);
  std::vector<RaftMemberView> members = {
      {1, "m1", true, true}, {2, "m2", false, true}, {3, "m3", false, false}};
  service_.SetRaftMembers([&] { return members; });
  // Three members, m3 down: demoting m2 leaves m1 (self) and m3 (down): 1 < quorum 2.
  auto s = SetRole("m2", api::NODE_ROLE_WORKER);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(s.error_message().find("loss of quorum"), std::string::npos) << s.error_message();
  EXPECT_EQ(SetRole("m1", api::NODE_ROLE_WORKER).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);  // m2 alone is 1 of 2
  EXPECT_TRUE(SetRole("m3", api::NODE_ROLE_WORKER).ok());  // m1 + m2: 2 >= 2

  // Five members, two down: demoting a down one leaves 3 of 4 reachable (quorum 3); demoting a
  // reachable one leaves 2 (refused).
  members = {{1, "m1", true, true},
             {2, "m2", false, true},
             {3, "m3", false, true},
             {4, "m4", false, false},
             {5, "m5", false, false}};
  EXPECT_EQ(SetRole("m2", api::NODE_ROLE_WORKER).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_TRUE(SetRole("m4", api::NODE_ROLE_WORKER).ok());

  // A node promoted but not (yet) a raft member has no vote at stake: the promotion can be
  // taken back.
  ASSERT_TRUE(SetRole("m6", api::NODE_ROLE_MANAGER).ok());
  EXPECT_TRUE(SetRole("m6", api::NODE_ROLE_WORKER).ok());
}

TEST_F(ClusterApiTest, LastManagerCannotBeDemoted) {
  AddNode("m1", api::NODE_ROLE_MANAGER, true);
  auto s = SetRole("m1", api::NODE_ROLE_WORKER);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(s.error_message().find("last manager"), std::string::npos);
}

TEST_F(ClusterApiTest, RemoveNodeRules) {
  AddNode("m1", api::NODE_ROLE_MANAGER, true);
  AddNode("w1", api::NODE_ROLE_WORKER, false);
  AddNode("w2", api::NODE_ROLE_WORKER, false, api::NodeStatus::STATE_DOWN);
  EXPECT_NE(Remove("m1", true).error_message().find("demote"), std::string::npos);
  auto ready = Remove("w1", false);
  EXPECT_EQ(ready.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(ready.error_message().find("force"), std::string::npos);
  ASSERT_TRUE(Remove("w1", true).ok());
  ASSERT_TRUE(Remove("w2", false).ok());
  EXPECT_EQ(store_.View().Get<api::Node>("w1"), nullptr);
  EXPECT_TRUE(ca::IsRemovedNode(store_.View(), "w1"));
  EXPECT_TRUE(ca::IsRemovedNode(store_.View(), "w2"));
  EXPECT_FALSE(ca::IsRemovedNode(store_.View(), "m1"));
  EXPECT_EQ(Remove("nope", true).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(ClusterApiTest, WatchStreamsEventsInOrderWithoutSecrets) {
  grpc::ClientContext ctx;
  api::WatchRequest req;
  req.add_kinds(api::WatchRequest::KIND_NODE);
  req.add_kinds(api::WatchRequest::KIND_SECRET);
  req.mutable_resume_from()->set_index(store_.version());
  auto reader = stub_->Watch(&ctx, req);
  AddNode("w1", api::NODE_ROLE_WORKER, false);
  api::Secret secret;
  secret.set_id("s1");
  secret.mutable_spec()->mutable_annotations()->set_name("pw");
  secret.mutable_spec()->set_data("hunter2");
  ASSERT_TRUE(store_.Update([&](store::Tx& tx) { return tx.Create(secret); }).ok());
  ASSERT_TRUE(store_.Update([&](store::Tx& tx) { return tx.Delete<api::Node>("w1"); }).ok());

  api::WatchEvent e;
  ASSERT_TRUE(reader->Read(&e));
  EXPECT_EQ(e.action(), api::WatchEvent::ACTION_CREATE);
  EXPECT_EQ(e.node().id(), "w1");
  ASSERT_TRUE(reader->Read(&e));
  EXPECT_EQ(e.secret().id(), "s1");
  EXPECT_TRUE(e.secret().spec().data().empty()) << "secret data must never be streamed";
  ASSERT_TRUE(reader->Read(&e));
  EXPECT_EQ(e.action(), api::WatchEvent::ACTION_REMOVE);
  EXPECT_EQ(e.node().id(), "w1");
  ctx.TryCancel();
}

TEST_F(ClusterApiTest, WatchRejectsUnknownKinds) {
  grpc::ClientContext ctx;
  api::WatchRequest req;
  req.add_kinds(static_cast<api::WatchRequest::Kind>(42));
  auto reader = stub_->Watch(&ctx, req);
  api::WatchEvent e;
  EXPECT_FALSE(reader->Read(&e));
  auto s = reader->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("kinds"), std::string::npos);
}

}  // namespace
}  // namespace shoal::manager::controlapi
