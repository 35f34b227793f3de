// The leader pipeline end to end in one process: orchestrator -> allocator -> scheduler ->
// simulated agents, all through the replicated store, driven by the real LeaderLoop.
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/unit/leader/fixture.h"

namespace shoal::manager::leader {
namespace {

namespace api = ::shoal::api::v1;
using TaskPtr = std::shared_ptr<const api::Task>;

class LeaderTest : public fixtures::LeaderFixture {
 protected:
  std::string CreateService(const std::function<void(api::Service&)>& edit) {
    return MakeService(edit).id();
  }
};

TEST_F(LeaderTest, HundredReplicasReachRunningSpreadOverNodes) {
  for (int i = 0; i < 10; ++i) AddNode(absl::StrCat("n", i));
  std::string svc = CreateService(
      [](api::Service& s) { s.mutable_spec()->mutable_replicated()->set_replicas(100); });
  ASSERT_TRUE(RunUntil([&] { return Running(svc) == 100; }));
  auto per = RunningPerNode(svc);
  ASSERT_EQ(per.size(), 10u);
  for (auto& [node, n] : per) EXPECT_EQ(n, 10) << node;
}

TEST_F(LeaderTest, TasksOfADownNodeAreReplacedElsewhere) {
  for (int i = 0; i < 3; ++i) AddNode(absl::StrCat("n", i));
  std::string svc = CreateService(
      [](api::Service& s) { s.mutable_spec()->mutable_replicated()->set_replicas(6); });
  ASSERT_TRUE(RunUntil([&] { return Running(svc) == 6; }));
  agents_.dead.insert("n0");
  EditNode("n0", [](api::Node& n) { n.mutable_status()->set_state(api::NodeStatus::STATE_DOWN); });
  ASSERT_TRUE(RunUntil([&] {
    auto per = RunningPerNode(svc);
    return Running(svc) == 6 && per.count("n0") == 0;
  }));
  auto per = RunningPerNode(svc);
  EXPECT_EQ(per["n1"], 3);
  EXPECT_EQ(per["n2"], 3);
}

TEST_F(LeaderTest, DrainMovesTasksAndStopsTheOldOnes) {
  AddNode("a");
  AddNode("b");
  std::string svc = CreateService(
      [](api::Service& s) { s.mutable_spec()->mutable_replicated()->set_replicas(4); });
  ASSERT_TRUE(RunUntil([&] { return Running(svc) == 4; }));
  EditNode("a", [](api::Node& n) {
    n.mutable_spec()->set_availability(api::NodeSpec::AVAILABILITY_DRAIN);
  });
  ASSERT_TRUE(RunUntil([&] { return RunningPerNode(svc)["b"] == 4; }));
  for (const auto& t : store_.View().Find<api::Task>(store::ByNodeId("a"))) {
    EXPECT_EQ(t->status().state(), api::TASK_STATE_SHUTDOWN) << t->id();
  }
}

TEST_F(LeaderTest, GlobalServiceFollowsNodesJoiningAndLeaving) {
  AddNode("n1");
  std::string svc = CreateService([](api::Service& s) { s.mutable_spec()->mutable_global(); });
  ASSERT_TRUE(RunUntil([&] { return Running(svc) == 1; }));
  AddNode("n2");
  AddNode("n3");
  ASSERT_TRUE(RunUntil([&] { return Running(svc) == 3; }));
  EditNode("n2", [](api::Node& n) {
    n.mutable_spec()->set_availability(api::NodeSpec::AVAILABILITY_DRAIN);
  });
  ASSERT_TRUE(RunUntil([&] { return Running(svc) == 2 && RunningPerNode(svc).count("n2") == 0; }));
}

TEST_F(LeaderTest, UnplaceableTasksExplainWhy) {
  AddNode("n1");
  std::string svc = CreateService([](api::Service& s) {
    s.mutable_spec()->mutable_replicated()->set_replicas(2);
    s.mutable_spec()->mutable_task()->mutable_placement()->add_constraints("node.labels.ssd==true");
  });
  auto explained = [&] {
    auto tasks = store_.View().Find<api::Task>(store::ByServiceId(svc));
    if (tasks.size() != 2) return false;
    for (auto& t : tasks) {
      if (t->status().err() !=
          "no suitable node (scheduling constraints not satisfied on 1 node)") {
        return false;
      }
    }
    return true;
  };
  ASSERT_TRUE(RunUntil(explained));
  // Give the node the label: the tasks get placed.
  EditNode("n1", [](api::Node& n) {
    (*n.mutable_spec()->mutable_annotations()->mutable_labels())["ssd"] = "true";
  });
  ASSERT_TRUE(RunUntil([&] { return Running(svc) == 2; }));
}

TEST_F(LeaderTest, CrashingTaskIsRestartedAfterItsDelay) {
  AddNode("n1");
  std::string svc = CreateService(
      [](api::Service& s) { s.mutable_spec()->mutable_replicated()->set_replicas(1); });
  ASSERT_TRUE(RunUntil([&] { return Running(svc) == 1; }));
  auto first = store_.View().Find<api::Task>(store::ByServiceId(svc))[0];
  ASSERT_TRUE(store_
                  .Update([&](store::Tx& tx) {
                    api::Task copy = *tx.Get<api::Task>(first->id());
                    copy.mutable_status()->set_state(api::TASK_STATE_FAILED);
                    return tx.Update(copy);
                  })
                  .ok());
  absl::Time failed_at = clock_.Now();
  ASSERT_TRUE(RunUntil([&] { return Running(svc) == 1; }));
  EXPECT_GE(clock_.Now() - failed_at, orchestrator::kDefaultRestartDelay);
  EXPECT_EQ(store_.View().Get<api::Task>(first->id())->desired_state(), api::TASK_STATE_SHUTDOWN);
}

TEST_F(LeaderTest, ANewLeaderConvergesFromTheStoreAlone) {
  for (int i = 0; i < 4; ++i) AddNode(absl::StrCat("n", i));
  std::string svc = CreateService(
      [](api::Service& s) { s.mutable_spec()->mutable_replicated()->set_replicas(8); });
  ASSERT_TRUE(RunUntil([&] { return Running(svc) == 8; }));
  // A node dies while no leader runs; then a fresh set of components takes over.
  agents_.dead.insert("n3");
  EditNode("n3", [](api::Node& n) { n.mutable_status()->set_state(api::NodeStatus::STATE_DOWN); });
  NewLeader();
  bool done = RunUntil([&] { return Running(svc) == 8 && RunningPerNode(svc).count("n3") == 0; });
  EXPECT_TRUE(done);
}

TEST_F(LeaderTest, OverlayTasksGetAddressesAndExhaustionIsVisible) {
  AddNode("n1");
  api::Network net;
  net.set_id("net1");
  net.mutable_spec()->mutable_annotations()->set_name("backend");
  net.mutable_spec()->mutable_ipam()->add_configs()->set_subnet("10.99.0.0/29");
  ASSERT_TRUE(store_.Update([&](store::Tx& tx) { return tx.Create(net); }).ok());
  // /29: gateway + 5 addresses; the service VIP takes one, so 4 tasks fit.
  std::string svc = CreateService([](api::Service& s) {
    s.mutable_spec()->mutable_replicated()->set_replicas(6);
    s.mutable_spec()->mutable_task()->add_networks()->set_target("net1");
  });
  auto stuck = [&] {
    int n = 0;
    for (const auto& t : store_.View().Find<api::Task>(store::ByServiceId(svc))) {
      n += t->status().state() == api::TASK_STATE_NEW &&
           t->status().err().find("allocating addresses: network backend") != std::string::npos;
    }
    return n;
  };
  ASSERT_TRUE(RunUntil([&] { return Running(svc) == 4 && stuck() == 2; }));
  auto service = store_.View().Get<api::Service>(svc);
  ASSERT_EQ(service->endpoint().virtual_ips_size(), 1);
  EXPECT_EQ(service->endpoint().virtual_ips(0).addr(), "10.99.0.2/29");
  std::set<std::string> addrs;
  for (const auto& t : store_.View().Find<api::Task>(store::ByServiceId(svc))) {
    if (t->status().state() != api::TASK_STATE_RUNNING) continue;
    ASSERT_EQ(t->networks_size(), 1);
    addrs.insert(t->networks(0).addresses(0));
  }
  EXPECT_EQ(addrs, (std::set<std::string>{"10.99.0.3/29", "10.99.0.4/29", "10.99.0.5/29",
                                          "10.99.0.6/29"}));
  // Scaling down to 4 removes the stuck tasks; nothing is left waiting.
  ASSERT_TRUE(store_
                  .Update([&](store::Tx& tx) {
                    api::Service copy = *tx.Get<api::Service>(svc);
                    copy.mutable_spec()->mutable_replicated()->set_replicas(4);
                    return tx.Update(copy);
                  })
                  .ok());
  ASSERT_TRUE(RunUntil([&] { return Running(svc) == 4 && stuck() == 0; }));
}

TEST_F(LeaderTest, ConflictingPublishedPortIsReportedOnTheService) {
  AddNode("n1");
  std::string a = CreateService([](api::Service& s) {
    s.mutable_spec()->mutable_replicated()->set_replicas(1);
    auto* p = s.mutable_spec()->mutable_endpoint()->add_ports();
    p->set_target_port(80);
    p->set_published_port(8080);
  });
  ASSERT_TRUE(RunUntil([&] { return Running(a) == 1; }));
  std::string b = CreateService([](api::Service& s) {
    s.mutable_spec()->mutable_annotations()->set_name("other");
    s.mutable_spec()->mutable_replicated()->set_replicas(1);
    auto* p = s.mutable_spec()->mutable_endpoint()->add_ports();
    p->set_target_port(80);
    p->set_published_port(8080);
  });
  ASSERT_TRUE(RunUntil([&] {
    return store_.View().Get<api::Service>(b)->allocation_error().find(
               "published port 8080/tcp is already in use") != std::string::npos;
  }));
  EXPECT_EQ(Running(b), 0);
}

TEST_F(LeaderTest, EveryNodeGetsItsOwnIngressAddressAndTasksNeverShareIt) {
  AddNode("n1");
  AddNode("n2");
  api::Network ingress;
  ingress.set_id("ing");
  ingress.mutable_spec()->mutable_annotations()->set_name("ingress");
  ingress.mutable_spec()->set_ingress(true);
  ingress.mutable_spec()->mutable_ipam()->add_configs()->set_subnet("10.255.0.0/24");
  ASSERT_TRUE(store_.Update([&](store::Tx& tx) { return tx.Create(ingress); }).ok());
  auto address = [&](const std::string& node) -> std::string {
    auto n = store_.View().Get<api::Node>(node);
    if (n == nullptr) return "";
    for (const auto& a : n->attachments()) {
      if (a.network_id() == "ing" && a.addresses_size() == 1) return a.addresses(0);
    }
    return "";
  };
  ASSERT_TRUE(RunUntil([&] { return !address("n1").empty() && !address("n2").empty(); }));
  EXPECT_NE(address("n1"), address("n2"));
  AddNode("n3");  // a node joining later gets one too
  ASSERT_TRUE(RunUntil([&] { return !address("n3").empty(); }));
  std::set<std::string> nodes = {address("n1"), address("n2"), address("n3")};
  EXPECT_EQ(nodes.size(), 3u);
  // Tasks of an ingress-published service get other addresses on the ingress network.
  std::string svc = CreateService([](api::Service& s) {
    s.mutable_spec()->mutable_replicated()->set_replicas(3);
    auto* p = s.mutable_spec()->mutable_endpoint()->add_ports();
    p->set_target_port(80);
    p->set_published_port(8080);
  });
  ASSERT_TRUE(RunUntil([&] { return Running(svc) == 3; }));
  for (const auto& t : store_.View().Find<api::Task>(store::ByServiceId(svc))) {
    ASSERT_EQ(t->networks_size(), 1) << "an ingress attachment";
    for (const auto& att : t->networks()) {
      EXPECT_EQ(nodes.count(att.addresses(0)), 0u) << att.addresses(0);
    }
  }
}

}  // namespace
}  // namespace shoal::manager::leader
