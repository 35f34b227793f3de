// Promote / demote through the RoleManager with quorum safety.
#include <vector>

#include "gtest/gtest.h"
#include "manager/leader/role_manager.h"
#include "tests/unit/leader/fixture.h"

namespace shoal::manager::leader {
namespace {

namespace api = ::shoal::api::v1;

class FakeMembership final : public RaftMembership {
 public:
  uint64_t self() const override { return 1; }
  absl::Status RemoveMember(uint64_t raft_id) override {
    removed.push_back(raft_id);
    return absl::OkStatus();
  }
  absl::Status TransferLeadership() override {
    ++transfers;
    return absl::OkStatus();
  }
  std::vector<uint64_t> removed;
  int transfers = 0;
};

class RolesTest : public fixtures::StoreFixture {
 protected:
  void AddManager(const std::string& id, uint64_t raft_id, bool reachable) {
    AddNode(id);
    EditNode(id, [&](api::Node& n) {
      n.set_role(api::NODE_ROLE_MANAGER);
      n.mutable_spec()->set_desired_role(api::NODE_ROLE_MANAGER);
      n.mutable_manager_status()->set_raft_id(raft_id);
      n.mutable_manager_status()->set_reachability(
          reachable ? api::ManagerStatus::REACHABILITY_REACHABLE
                    : api::ManagerStatus::REACHABILITY_UNREACHABLE);
    });
  }
  void SetDesiredRole(const std::string& id, api::NodeRole role) {
    EditNode(id, [&](api::Node& n) { n.mutable_spec()->set_desired_role(role); });
  }
  void Rounds(int n = 5) {
    for (int i = 0; i < n; ++i) (void)loop_.RunOnce(absl::ZeroDuration());
  }
  std::shared_ptr<const api::Node> Node(const std::string& id) {
    return store_.View().Get<api::Node>(id);
  }

  FakeMembership raft_;
  RoleManager roles_{raft_};
  LeaderLoop loop_{store_, clock_, {&roles_}};
};

TEST_F(RolesTest, PromoteMakesAWorkerAManager) {
  AddManager("m1", 1, true);
  AddNode("w1");
  SetDesiredRole("w1", api::NODE_ROLE_MANAGER);
  Rounds();
  EXPECT_EQ(Node("w1")->role(), api::NODE_ROLE_MANAGER);
}

TEST_F(RolesTest, DemotionThatWouldLoseQuorumIsRefusedUntilReachable) {
  AddManager("m1", 1, true);
  AddManager("m2", 2, true);
  AddManager("m3", 3, false);
  // Removing m2 leaves m1 + m3 with only m1 reachable: a 2-member quorum needs both.
  SetDesiredRole("m2", api::NODE_ROLE_WORKER);
  Rounds();
  EXPECT_EQ(Node("m2")->role(), api::NODE_ROLE_MANAGER);
  // The rule and its words are Control's (controlapi::CheckDemotion).
  EXPECT_EQ(Node("m2")->role_message(),
            "can't remove member from the raft: this would result in a loss of quorum (demoting "
            "node m2 leaves 2 managers, 1 of them reachable; 2 are needed)");
  EXPECT_TRUE(raft_.removed.empty());
  // m3 comes back: the demotion goes through, Raft member first.
  EditNode("m3", [](api::Node& n) {
    n.mutable_manager_status()->set_reachability(api::ManagerStatus::REACHABILITY_REACHABLE);
  });
  Rounds();
  EXPECT_EQ(Node("m2")->role(), api::NODE_ROLE_WORKER);
  EXPECT_EQ(Node("m2")->role_message(), "");
  EXPECT_EQ(raft_.removed, std::vector<uint64_t>{2});
}

TEST_F(RolesTest, UnreachableManagerCanBeDemotedAndTheLastOneCannot) {
  AddManager("m1", 1, true);
  AddManager("m2", 2, false);
  SetDesiredRole("m2", api::NODE_ROLE_WORKER);
  Rounds();
  EXPECT_EQ(Node("m2")->role(), api::NODE_ROLE_WORKER);
  SetDesiredRole("m1", api::NODE_ROLE_WORKER);
  Rounds();
  EXPECT_EQ(Node("m1")->role(), api::NODE_ROLE_MANAGER);
  EXPECT_EQ(Node("m1")->role_message(),
            "attempting to demote the last manager of the swarm (node m1)");
}

TEST_F(RolesTest, TheLeaderHandsOverBeforeItsOwnDemotion) {
  AddManager("m1", 1, true);  // raft id 1 is the fake's self (the leader)
  AddManager("m2", 2, true);
  AddManager("m3", 3, true);
  SetDesiredRole("m1", api::NODE_ROLE_WORKER);
  Rounds(1);
  EXPECT_GE(raft_.transfers, 1);
  EXPECT_TRUE(raft_.removed.empty());
  EXPECT_EQ(Node("m1")->role(), api::NODE_ROLE_MANAGER);  // the next leader finishes it
}

}  // namespace
}  // namespace shoal::manager::leader
