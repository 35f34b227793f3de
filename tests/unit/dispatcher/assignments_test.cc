// Assignments through the real gRPC service: COMPLETE then versioned INCREMENTAL messages,
// secrets and configs only where used, network state (endpoints, services), reconnects.
#include <algorithm>
#include <set>

#include "absl/strings/numbers.h"
#include "gmock/gmock.h"

#include "manager/dispatcher/assignments.h"
#include "tests/unit/dispatcher/fake_agent.h"

namespace shoal::manager::dispatcher::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::UnorderedElementsAre;

class AssignmentsTest : public DispatcherFixture {
 protected:
  // The next message after `n` already read, or fails the test.
  const api::AssignmentsMessage& Next(StreamReader<api::AssignmentsMessage>& s, size_t n) {
    const auto* m = s.Wait(n);
    if (m == nullptr) {
      ADD_FAILURE() << "no assignments message #" << n;
      static api::AssignmentsMessage empty;
      return empty;
    }
    return *m;
  }

  api::Network Overlay(const std::string& id, bool ingress = false) {
    api::Network n;
    n.set_id(id);
    n.mutable_spec()->mutable_annotations()->set_name("net-" + id);
    n.mutable_spec()->mutable_driver_config()->set_name("overlay");
    n.mutable_spec()->set_ingress(ingress);
    (*n.mutable_driver_state()->mutable_options())["vni"] = "4097";
    auto* c = n.mutable_ipam()->add_configs();
    c->set_subnet("10.0.1.0/24");
    c->set_gateway("10.0.1.1");
    return n;
  }
  static void Attach(api::Task& t, const std::string& network, const std::string& addr) {
    auto* a = t.add_networks();
    a->set_network_id(network);
    a->add_addresses(addr);
    a->add_aliases("web-alias");
  }
};

TEST_F(AssignmentsTest, CompleteThenIncrementalWithChainedVersions) {
  AddNode("node1");
  AddNode("node2");
  Create(MakeTask("task1", "node1"));
  Create(MakeTask("other", "node2"));
  Create(MakeTask("pending", "node1", api::TASK_STATE_PENDING));  // not sent before ASSIGNED
  auto agent = Agent("node1");
  auto session = agent.OpenSession();
  auto stream = agent.Assignments();
  const auto& full = Next(*stream, 0);
  EXPECT_EQ(full.type(), api::AssignmentsMessage::TYPE_COMPLETE);
  EXPECT_THAT(Changes(full), ElementsAre("UPDATE t/task1"));
  EXPECT_FALSE(full.results_in().empty());

  Create(MakeTask("task2", "node1"));
  const auto& inc = Next(*stream, 1);
  EXPECT_EQ(inc.type(), api::AssignmentsMessage::TYPE_INCREMENTAL);
  EXPECT_EQ(inc.applies_to(), full.results_in());
  EXPECT_THAT(Changes(inc), ElementsAre("UPDATE t/task2"));

  // The agent's own status report is not echoed back; the next real change is all that comes.
  ASSERT_TRUE(agent.Report("task1", api::TASK_STATE_RUNNING).ok());
  ASSERT_TRUE(dispatcher_->FlushStatus().ok());
  ASSERT_EQ(GetTask("task1")->status().state(), api::TASK_STATE_RUNNING);
  Modify<api::Task>("task2", [](api::Task& t) { t.set_desired_state(api::TASK_STATE_SHUTDOWN); });
  const auto& desired = Next(*stream, 2);
  EXPECT_EQ(desired.applies_to(), inc.results_in());
  EXPECT_THAT(Changes(desired), ElementsAre("UPDATE t/task2"));
  EXPECT_EQ(desired.changes(0).assignment().task().desired_state(), api::TASK_STATE_SHUTDOWN);

  Delete<api::Task>("task2");
  const auto& removed = Next(*stream, 3);
  EXPECT_EQ(removed.applies_to(), desired.results_in());
  EXPECT_THAT(Changes(removed), ElementsAre("REMOVE t/task2"));
  uint64_t a, b;
  ASSERT_TRUE(absl::SimpleAtoi(removed.results_in(), &a));
  ASSERT_TRUE(absl::SimpleAtoi(removed.applies_to(), &b));
  EXPECT_GT(a, b);
}

TEST_F(AssignmentsTest, SecretsAndConfigsReachOnlyNodesRunningTasksThatUseThem) {
  AddNode("node1");
  AddNode("node2");
  api::Secret secret;
  secret.set_id("secret1");
  secret.mutable_spec()->mutable_annotations()->set_name("db-password");
  secret.mutable_spec()->set_data("hunter2");
  Create(secret);
  api::Secret unused = secret;
  unused.set_id("secret2");
  unused.mutable_spec()->mutable_annotations()->set_name("unused");
  Create(unused);
  api::Config config;
  config.set_id("config1");
  config.mutable_spec()->mutable_annotations()->set_name("nginx-conf");
  config.mutable_spec()->set_data("server {}");
  Create(config);
  api::Task t = MakeTask("task1", "node1");
  t.mutable_spec()->mutable_container()->add_secrets()->set_secret_id("secret1");
  t.mutable_spec()->mutable_container()->add_configs()->set_config_id("config1");
  Create(t);
  Create(MakeTask("task2", "node2"));

  auto a1 = Agent("node1");
  auto s1 = a1.OpenSession();
  auto st1 = a1.Assignments();
  auto a2 = Agent("node2");
  auto s2 = a2.OpenSession();
  auto st2 = a2.Assignments();
  const auto& full1 = Next(*st1, 0);
  EXPECT_THAT(Changes(full1),
              UnorderedElementsAre("UPDATE t/task1", "UPDATE s/secret1", "UPDATE c/config1"));
  for (const auto& c : full1.changes()) {
    if (c.assignment().has_secret()) {
      EXPECT_EQ(c.assignment().secret().spec().data(), "hunter2");
    }
  }
  EXPECT_THAT(Changes(Next(*st2, 0)), ElementsAre("UPDATE t/task2"));

  // node2 gets a task using the secret: now (and only now) node2 receives it.
  api::Task t3 = MakeTask("task3", "node2");
  t3.mutable_spec()->mutable_container()->add_secrets()->set_secret_id("secret1");
  Create(t3);
  EXPECT_THAT(Changes(Next(*st2, 1)), UnorderedElementsAre("UPDATE t/task3", "UPDATE s/secret1"));

  // When node1's task finishes, its secret and config are taken back; the task stays.
  ASSERT_TRUE(a1.Report("task1", api::TASK_STATE_COMPLETE).ok());
  ASSERT_TRUE(dispatcher_->FlushStatus().ok());
  EXPECT_THAT(Changes(Next(*st1, 1)), UnorderedElementsAre("REMOVE s/secret1", "REMOVE c/config1"));
  // node2 was not touched by any of that.
  EXPECT_EQ(st2->count(), 2u);
}

TEST_F(AssignmentsTest, NetworkStateCarriesEndpointsAndServicesOfTheNodesNetworks) {
  AddNode("node1", "192.168.50.1");
  AddNode("node2", "192.168.50.2");
  AddNode("node3", "192.168.50.3");
  Create(Overlay("netA"));
  api::Network other = Overlay("netB");
  other.mutable_spec()->mutable_annotations()->set_name("net-netB");
  Create(other);
  api::Service svc;
  svc.set_id("svc1");
  svc.mutable_spec()->mutable_annotations()->set_name("web");
  svc.mutable_spec()->mutable_task()->add_networks()->set_target("netA");
  svc.mutable_spec()->mutable_task()->mutable_container()->add_env("PASSWORD=not-for-others");
  auto* vip = svc.mutable_endpoint()->add_virtual_ips();
  vip->set_network_id("netA");
  vip->set_addr("10.0.1.2/24");
  auto* port = svc.mutable_endpoint()->add_ports();
  port->set_target_port(80);
  port->set_published_port(30080);
  Create(svc);
  api::Task t1 = MakeTask("task1", "node1", api::TASK_STATE_RUNNING);
  Attach(t1, "netA", "10.0.1.3/24");
  Create(t1);
  api::Task t2 = MakeTask("task2", "node2", api::TASK_STATE_RUNNING);
  Attach(t2, "netA", "10.0.1.4/24");
  Create(t2);
  api::Task t3 = MakeTask("task3", "node3", api::TASK_STATE_RUNNING);
  Attach(t3, "netB", "10.0.1.5/24");
  Create(t3);

  auto agent = Agent("node1");
  auto session = agent.OpenSession();
  auto stream = agent.Assignments();
  const auto& full = Next(*stream, 0);
  EXPECT_THAT(Changes(full),
              UnorderedElementsAre("UPDATE t/task1", "UPDATE n/netA", "UPDATE e/task1/netA",
                                   "UPDATE e/task2/netA", "UPDATE v/svc1"));
  std::string task1_mac;
  for (const auto& c : full.changes()) {
    const auto& a = c.assignment();
    if (a.has_task()) task1_mac = a.task().networks(0).mac_address();
    if (a.has_network()) {
      EXPECT_EQ(a.network().network().driver_state().options().at("vni"), "4097");
    }
    if (a.has_service()) {
      EXPECT_EQ(a.service().spec().annotations().name(), "web");
      ASSERT_EQ(a.service().endpoint().virtual_ips_size(), 1);
      EXPECT_EQ(a.service().endpoint().virtual_ips(0).addr(), "10.0.1.2/24");
      EXPECT_EQ(a.service().endpoint().ports(0).published_port(), 30080u);
      EXPECT_FALSE(a.service().spec().task().has_container());  // no env for other nodes
    }
  }
  ASSERT_FALSE(task1_mac.empty());
  for (const auto& c : full.changes()) {
    const auto& a = c.assignment();
    if (!a.has_endpoint()) continue;
    const auto& e = a.endpoint();
    EXPECT_EQ(e.service_name(), "web");
    EXPECT_TRUE(e.running());
    EXPECT_THAT(e.aliases(), ElementsAre("web-alias"));
    if (e.task_id() == "task1") {
      EXPECT_EQ(e.ip(), "10.0.1.3/24");
      EXPECT_EQ(e.mac(), task1_mac);  // what the agent programs is what peers are told
      EXPECT_EQ(e.node_vtep(), "192.168.50.1");
    } else {
      EXPECT_EQ(e.ip(), "10.0.1.4/24");
      EXPECT_EQ(e.node_vtep(), "192.168.50.2");
      EXPECT_EQ(e.node_id(), "node2");
      EXPECT_EQ(e.mac(), EndpointMac("task2", "netA"));
    }
  }

  // A task stopping on another node leaves the network state; its VTEP change moves records.
  Modify<api::Task>("task2",
                    [](api::Task& t) { t.mutable_status()->set_state(api::TASK_STATE_FAILED); });
  EXPECT_THAT(Changes(Next(*stream, 1)), ElementsAre("REMOVE e/task2/netA"));
  api::Task t4 = MakeTask("task4", "node2", api::TASK_STATE_STARTING);
  Attach(t4, "netA", "10.0.1.6/24");
  Create(t4);
  const auto& added = Next(*stream, 2);
  ASSERT_THAT(Changes(added), ElementsAre("UPDATE e/task4/netA"));
  EXPECT_FALSE(added.changes(0).assignment().endpoint().running());
  Modify<api::Node>("node2", [](api::Node& n) { n.set_vtep_addr("192.168.50.22"); });
  const auto& moved = Next(*stream, 3);
  ASSERT_THAT(Changes(moved), ElementsAre("UPDATE e/task4/netA"));
  EXPECT_EQ(moved.changes(0).assignment().endpoint().node_vtep(), "192.168.50.22");

  // node1's task ends: the whole network leaves its set.
  ASSERT_TRUE(agent.Report("task1", api::TASK_STATE_SHUTDOWN).ok());
  ASSERT_TRUE(dispatcher_->FlushStatus().ok());
  EXPECT_THAT(Changes(Next(*stream, 4)),
              UnorderedElementsAre("REMOVE n/netA", "REMOVE e/task1/netA", "REMOVE e/task4/netA",
                                   "REMOVE v/svc1"));
}

TEST_F(AssignmentsTest, IngressNetworkGoesToEveryNode) {
  AddNode("node1");
  AddNode("node2");
  Create(Overlay("ingress", /*ingress=*/true));
  api::Task t = MakeTask("task1", "node2", api::TASK_STATE_RUNNING);
  Attach(t, "ingress", "10.0.1.9/24");
  Create(t);
  auto agent = Agent("node1");  // no task at all
  auto session = agent.OpenSession();
  auto stream = agent.Assignments();
  EXPECT_THAT(Changes(Next(*stream, 0)),
              UnorderedElementsAre("UPDATE n/ingress", "UPDATE e/task1/ingress"));
}

TEST_F(AssignmentsTest, EachNodesIngressAddressIsAnEndpointOfTheIngressNetwork) {
  AddNode("node1", "192.0.2.1");
  AddNode("node2", "192.0.2.2");
  Create(Overlay("ingress", /*ingress=*/true));
  Modify<api::Node>("node2", [](api::Node& n) {
    auto* a = n.add_attachments();
    a->set_network_id("ingress");
    a->add_addresses("10.0.1.3/24");
  });
  auto agent = Agent("node1");
  auto session = agent.OpenSession();
  auto stream = agent.Assignments();
  const auto& first = Next(*stream, 0);
  EXPECT_THAT(Changes(first),
              UnorderedElementsAre("UPDATE n/ingress", "UPDATE e/ingress-sbox-node2/ingress"));
  for (const auto& c : first.changes()) {
    if (!c.assignment().has_endpoint()) continue;
    const auto& e = c.assignment().endpoint();
    EXPECT_EQ(e.ip(), "10.0.1.3/24");
    EXPECT_EQ(e.node_vtep(), "192.0.2.2");
    EXPECT_EQ(e.node_id(), "node2");
    EXPECT_EQ(e.mac(), EndpointMac("ingress-sbox-node2", "ingress"));
  }
  // The allocator gives node1 its address: node1 hears of its own sandbox's record.
  Modify<api::Node>("node1", [](api::Node& n) {
    auto* a = n.add_attachments();
    a->set_network_id("ingress");
    a->add_addresses("10.0.1.2/24");
  });
  EXPECT_THAT(Changes(Next(*stream, 1)), ElementsAre("UPDATE e/ingress-sbox-node1/ingress"));
}

TEST_F(AssignmentsTest, ReconnectingAgentGetsAFreshCompleteSet) {
  AddNode("node1");
  Create(MakeTask("task1", "node1"));
  auto agent = Agent("node1");
  auto session = agent.OpenSession();
  std::string old_session = agent.session_id;
  {
    auto stream = agent.Assignments();
    EXPECT_EQ(Next(*stream, 0).type(), api::AssignmentsMessage::TYPE_COMPLETE);
  }
  Create(MakeTask("task2", "node1"));  // while disconnected
  auto again = agent.OpenSession();
  auto stream = agent.Assignments();
  const auto& full = Next(*stream, 0);
  EXPECT_EQ(full.type(), api::AssignmentsMessage::TYPE_COMPLETE);
  EXPECT_TRUE(full.applies_to().empty());
  EXPECT_THAT(Changes(full), ElementsAre("UPDATE t/task1", "UPDATE t/task2"));
  auto stale = agent.Assignments(old_session);
  ASSERT_TRUE(stale->Finished().has_value());
  EXPECT_EQ(stale->Finished()->error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

class SplitAssignmentsTest : public AssignmentsTest {
 protected:
  DispatcherOptions Options() override {
    DispatcherOptions o = AssignmentsTest::Options();
    o.max_message_bytes = 2000;
    return o;
  }
};

TEST_F(SplitAssignmentsTest, LargeSetsTravelInBoundedParts) {
  AddNode("node1");
  for (int i = 0; i < 40; ++i) {
    api::Task t = MakeTask(absl::StrCat("task", i), "node1");
    t.mutable_spec()->mutable_container()->add_env("PAD=" + std::string(200, 'x'));
    Create(t);
  }
  auto agent = Agent("node1");
  auto session = agent.OpenSession();
  auto stream = agent.Assignments();
  std::set<std::string> got;
  size_t i = 0;
  std::string version;
  for (;; ++i) {
    const auto& part = Next(*stream, i);
    EXPECT_EQ(part.type(), api::AssignmentsMessage::TYPE_COMPLETE);
    EXPECT_LE(part.ByteSizeLong(), 2000u + 400u);
    if (i == 0) version = part.results_in();
    EXPECT_EQ(part.results_in(), version);
    for (const auto& c : Changes(part)) got.insert(c);
    if (!part.more()) break;
    if (i > 100) break;
  }
  EXPECT_GT(i, 2u);
  EXPECT_EQ(got.size(), 40u);
  // The diff after it chains on the whole set.
  Create(MakeTask("late", "node1"));
  const auto& inc = Next(*stream, i + 1);
  EXPECT_EQ(inc.applies_to(), version);
  EXPECT_FALSE(inc.more());
  EXPECT_THAT(Changes(inc), ElementsAre("UPDATE t/late"));
}

}  // namespace
}  // namespace shoal::manager::dispatcher::testing
