// The RoleManager over a real three-member Raft cluster (gRPC on loopback, storage in a temp
// dir): a demoted follower leaves the Raft membership; a demoted leader hands leadership over.
#include <unistd.h>

#include <filesystem>
#include <map>

#include "absl/time/clock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "manager/leader/role_manager.h"
#include "tests/unit/leader/fixture.h"

namespace shoal::manager::leader {
namespace {

namespace api = ::shoal::api::v1;

class NullMachine final : public raft::StateMachine {
 public:
  void Apply(uint64_t, absl::string_view) override {}
  absl::StatusOr<std::string> Snapshot() override { return std::string(); }
  absl::Status Restore(uint64_t, absl::string_view) override { return absl::OkStatus(); }
};

struct Member {
  NullMachine sm;
  std::unique_ptr<raft::RaftNode> node;
  std::unique_ptr<grpc::Server> server;
};

class RoleRaftTest : public fixtures::StoreFixture {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/shor-roles-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    const int base = 36000 + (::getpid() % 500) * 4;
    std::vector<api::RaftMember> members;
    for (uint64_t id = 1; id <= 3; ++id) {
      api::RaftMember m;
      m.set_raft_id(id);
      m.set_node_id(absl::StrCat("m", id));
      m.set_addr(absl::StrCat("127.0.0.1:", base + id));
      members.push_back(m);
    }
    for (const auto& m : members) {
      auto mem = std::make_unique<Member>();
      raft::NodeOptions o;
      o.id = m.raft_id();
      o.addr = m.addr();
      o.dir = absl::StrCat(dir_, "/", m.raft_id());
      o.tick = absl::Milliseconds(20);
      o.bootstrap = members;
      auto n = raft::RaftNode::Create(o, &mem->sm);
      ASSERT_TRUE(n.ok()) << n.status();
      mem->node = std::move(*n);
      grpc::ServerBuilder b;
      b.AddListeningPort(o.addr, grpc::InsecureServerCredentials());
      b.RegisterService(mem->node->service());
      mem->server = b.BuildAndStart();
      ASSERT_NE(mem->server, nullptr);
      mem->node->Start();
      nodes_[m.raft_id()] = std::move(mem);
      // The node objects of the same managers, as the store holds them.
      AddNode(m.node_id());
      EditNode(m.node_id(), [&](api::Node& n) {
        n.set_role(api::NODE_ROLE_MANAGER);
        n.mutable_spec()->set_desired_role(api::NODE_ROLE_MANAGER);
        n.mutable_manager_status()->set_raft_id(m.raft_id());
        n.mutable_manager_status()->set_reachability(api::ManagerStatus::REACHABILITY_REACHABLE);
      });
    }
  }
  void TearDown() override {
    for (auto& [id, m] : nodes_) {
      m->server->Shutdown(std::chrono::system_clock::now());
      m->node->Stop();
    }
    nodes_.clear();
    std::filesystem::remove_all(dir_);
  }
  uint64_t WaitLeader(uint64_t not_this = 0) {
    for (absl::Time end = absl::Now() + absl::Seconds(20); absl::Now() < end;) {
      for (auto& [id, m] : nodes_) {
        if (id != not_this && m->node->IsLeader()) return id;
      }
      absl::SleepFor(absl::Milliseconds(10));
    }
    return 0;
  }
  // Runs the role manager of the current leader until `done` (bounded by a deadline).
  bool RunRoles(uint64_t leader, const std::function<bool()>& done) {
    RaftNodeMembership membership(*nodes_[leader]->node);
    RoleManager roles(membership);
    LeaderLoop loop(store_, clock_, {&roles});
    for (absl::Time end = absl::Now() + absl::Seconds(20); absl::Now() < end;) {
      (void)loop.RunOnce(absl::ZeroDuration());
      if (done()) return true;
      absl::SleepFor(absl::Milliseconds(20));
    }
    return done();
  }
  bool IsMember(uint64_t of, uint64_t raft_id) {
    for (const auto& m : nodes_[of]->node->Status().members) {
      if (m.raft_id() == raft_id) return true;
    }
    return false;
  }
  // The membership a node reports is published after the change is applied: poll for it.
  bool LeavesMembership(uint64_t of, uint64_t raft_id) {
    for (absl::Time end = absl::Now() + absl::Seconds(20); absl::Now() < end;) {
      if (!IsMember(of, raft_id)) return true;
      absl::SleepFor(absl::Milliseconds(10));
    }
    return false;
  }
  api::NodeRole Role(const std::string& id) { return store_.View().Get<api::Node>(id)->role(); }

  std::string dir_;
  std::map<uint64_t, std::unique_ptr<Member>> nodes_;
};

TEST_F(RoleRaftTest, DemotedFollowerLeavesRaftAndDemotedLeaderHandsOver) {
  const uint64_t leader = WaitLeader();
  ASSERT_NE(leader, 0u);
  const uint64_t follower = leader == 1 ? 2 : 1;
  const std::string follower_node = absl::StrCat("m", follower);
  EditNode(follower_node,
           [](api::Node& n) { n.mutable_spec()->set_desired_role(api::NODE_ROLE_WORKER); });
  ASSERT_TRUE(RunRoles(leader, [&] { return Role(follower_node) == api::NODE_ROLE_WORKER; }));
  EXPECT_TRUE(LeavesMembership(leader, follower));

  // Now the leader itself is demoted: it hands leadership to the remaining manager first.
  EditNode(absl::StrCat("m", leader),
           [](api::Node& n) { n.mutable_spec()->set_desired_role(api::NODE_ROLE_WORKER); });
  ASSERT_TRUE(RunRoles(leader, [&] { return !nodes_[leader]->node->IsLeader(); }));
  const uint64_t next = WaitLeader(leader);
  EXPECT_EQ(next, 6 - leader - follower);
  EXPECT_EQ(Role(absl::StrCat("m", leader)), api::NODE_ROLE_MANAGER);  // finished by `next`
  // The new leader's role manager completes the demotion.
  ASSERT_TRUE(
      RunRoles(next, [&] { return Role(absl::StrCat("m", leader)) == api::NODE_ROLE_WORKER; }));
  EXPECT_TRUE(LeavesMembership(next, leader));
}

}  // namespace
}  // namespace shoal::manager::leader
