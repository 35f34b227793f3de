// Sessions and heartbeats through the real gRPC service: registration, node state in the store,
// DOWN after missed heartbeats (FakeClock), leader-change grace, bad requests.
#include "tests/unit/dispatcher/fake_agent.h"

namespace shoal::manager::dispatcher::testing {
namespace {

using grpc::StatusCode;

class SessionTest : public DispatcherFixture {};

TEST_F(SessionTest, RegistrationMarksTheNodeReadyAndStreamsItsSession) {
  AddNode("node1");
  auto agent = Agent("node1");
  auto session = agent.OpenSession("192.168.50.7");
  ASSERT_FALSE(agent.session_id.empty());
  const auto* first = session->Wait(0);
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(first->node().id(), "node1");
  auto node = GetNode("node1");
  EXPECT_EQ(node->status().state(), api::NodeStatus::STATE_READY);
  EXPECT_EQ(node->description().hostname(), "host-node1");
  EXPECT_EQ(node->vtep_addr(), "192.168.50.7");
  EXPECT_FALSE(node->status().addr().empty());

  // A change of the node (a label) reaches the session stream.
  Modify<api::Node>("node1", [](api::Node& n) {
    (*n.mutable_spec()->mutable_annotations()->mutable_labels())["zone"] = "a";
  });
  ASSERT_TRUE(Eventually([&] {
    for (size_t i = 0; i < session->count(); ++i) {
      if (session->Wait(i)->node().spec().annotations().labels().contains("zone")) return true;
    }
    return false;
  }));
}

TEST_F(SessionTest, HeartbeatReturnsAJitteredPeriod) {
  AddNode("node1");
  auto agent = Agent("node1");
  auto session = agent.OpenSession();
  for (int i = 0; i < 5; ++i) {
    absl::Duration p;
    ASSERT_TRUE(agent.Heartbeat(&p).ok());
    EXPECT_GE(p, absl::Milliseconds(4500));
    EXPECT_LE(p, absl::Milliseconds(5500));
  }
}

TEST_F(SessionTest, ClusterHeartbeatPeriodIsUsed) {
  api::Cluster c;
  c.set_id("cluster1");
  c.mutable_spec()->mutable_annotations()->set_name("default");
  c.mutable_spec()->mutable_dispatcher()->mutable_heartbeat_period()->set_seconds(20);
  Create(c);
  AddNode("node1");
  auto agent = Agent("node1");
  auto session = agent.OpenSession();
  absl::Duration p;
  ASSERT_TRUE(agent.Heartbeat(&p).ok());
  EXPECT_GE(p, absl::Seconds(18));
  EXPECT_LE(p, absl::Seconds(22));
}

TEST_F(SessionTest, NodeGoesDownAfterThreeMissedHeartbeats) {
  AddNode("node1");
  auto agent = Agent("node1");
  auto session = agent.OpenSession();
  absl::Duration p;
  ASSERT_TRUE(agent.Heartbeat(&p).ok());
  clock_.Advance(p * 3 - absl::Milliseconds(1));
  dispatcher_->Tick();
  EXPECT_EQ(GetNode("node1")->status().state(), api::NodeStatus::STATE_READY);
  // A heartbeat in time pushes the deadline out again.
  ASSERT_TRUE(agent.Heartbeat(&p).ok());
  clock_.Advance(p * 2);
  dispatcher_->Tick();
  EXPECT_EQ(GetNode("node1")->status().state(), api::NodeStatus::STATE_READY);
  clock_.Advance(p + absl::Milliseconds(1));
  // A heartbeat past the deadline is too late even before the timer ran.
  auto too_late = agent.Heartbeat();
  EXPECT_EQ(too_late.error_code(), StatusCode::NOT_FOUND);
  EXPECT_NE(too_late.error_message().find("expired"), std::string::npos);
  dispatcher_->Tick();
  auto node = GetNode("node1");
  EXPECT_EQ(node->status().state(), api::NodeStatus::STATE_DOWN);
  EXPECT_EQ(node->status().message(), "heartbeat failure");
  auto end = session->Finished();
  ASSERT_TRUE(end.has_value());
  EXPECT_EQ(end->error_code(), StatusCode::UNAVAILABLE);
  EXPECT_NE(end->error_message().find("missed 3 heartbeats"), std::string::npos);
  auto late = agent.Heartbeat();
  EXPECT_EQ(late.error_code(), StatusCode::NOT_FOUND);
  EXPECT_NE(late.error_message().find("has no session"), std::string::npos);
}

TEST_F(SessionTest, TasksOfANodeDownForADayAreOrphaned) {
  AddNode("node1");
  Create(MakeTask("running", "node1", api::TASK_STATE_RUNNING));
  Create(MakeTask("done", "node1", api::TASK_STATE_COMPLETE));
  auto agent = Agent("node1");
  auto session = agent.OpenSession();
  absl::Duration p;
  ASSERT_TRUE(agent.Heartbeat(&p).ok());
  clock_.Advance(p * 3);
  dispatcher_->Tick();
  ASSERT_EQ(GetNode("node1")->status().state(), api::NodeStatus::STATE_DOWN);
  clock_.Advance(absl::Hours(24) - absl::Seconds(1));
  dispatcher_->Tick();
  EXPECT_EQ(GetTask("running")->status().state(), api::TASK_STATE_RUNNING);
  clock_.Advance(absl::Seconds(1));
  dispatcher_->Tick();
  auto orphaned = GetTask("running");
  EXPECT_EQ(orphaned->status().state(), api::TASK_STATE_ORPHANED);
  EXPECT_NE(orphaned->status().message().find("node node1 has been down for 24h"),
            std::string::npos)
      << orphaned->status().message();
  EXPECT_EQ(GetTask("done")->status().state(), api::TASK_STATE_COMPLETE);
}

TEST_F(SessionTest, ANodeBackWithinTheDayKeepsItsTasks) {
  AddNode("node1");
  Create(MakeTask("running", "node1", api::TASK_STATE_RUNNING));
  auto agent = Agent("node1");
  auto session = agent.OpenSession();
  clock_.Advance(absl::Seconds(20));
  dispatcher_->Tick();
  ASSERT_EQ(GetNode("node1")->status().state(), api::NodeStatus::STATE_DOWN);
  clock_.Advance(absl::Hours(1));
  auto back = agent.OpenSession();
  // Past the first outage's 24 h; the session has expired again meanwhile (DOWN anew, a new
  // outage clock), but the first outage no longer counts.
  clock_.Advance(absl::Hours(23) + absl::Seconds(1));
  dispatcher_->Tick();
  EXPECT_EQ(GetNode("node1")->status().state(), api::NodeStatus::STATE_DOWN);
  EXPECT_EQ(GetTask("running")->status().state(), api::TASK_STATE_RUNNING);
}

TEST_F(SessionTest, LeaderChangeGivesNodesAGracePeriod) {
  dispatcher_->Stop();
  AddNode("node1");
  AddNode("node2");
  for (const char* id : {"node1", "node2"}) {
    Modify<api::Node>(
        id, [](api::Node& n) { n.mutable_status()->set_state(api::NodeStatus::STATE_READY); });
  }
  ASSERT_TRUE(dispatcher_->Start().ok());  // a new leader
  // node2 reconnects to the new leader; node1 never does.
  auto agent2 = Agent("node2");
  auto session2 = agent2.OpenSession();
  // 3 periods (when a connected node would be down) are within the 6-period grace.
  for (int i = 0; i < 5; ++i) {
    clock_.Advance(absl::Seconds(5));
    ASSERT_TRUE(agent2.Heartbeat().ok());
    dispatcher_->Tick();
  }
  EXPECT_EQ(GetNode("node1")->status().state(), api::NodeStatus::STATE_READY);
  clock_.Advance(absl::Seconds(5) + absl::Milliseconds(1));
  ASSERT_TRUE(agent2.Heartbeat().ok());
  dispatcher_->Tick();
  EXPECT_EQ(GetNode("node1")->status().state(), api::NodeStatus::STATE_DOWN);
  EXPECT_NE(GetNode("node1")->status().message().find("leader changed"), std::string::npos);
  EXPECT_EQ(GetNode("node2")->status().state(), api::NodeStatus::STATE_READY);
}

TEST_F(SessionTest, NewSessionSupersedesTheOldOne) {
  AddNode("node1");
  auto agent = Agent("node1");
  auto first = agent.OpenSession();
  std::string old_id = agent.session_id;
  auto second = agent.OpenSession();
  ASSERT_NE(agent.session_id, old_id);
  auto end = first->Finished();
  ASSERT_TRUE(end.has_value());
  EXPECT_EQ(end->error_code(), StatusCode::ABORTED);
  auto stale = agent.Heartbeat(nullptr, old_id);
  EXPECT_EQ(stale.error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(stale.error_message().find("not the current session of node node1"), std::string::npos);
  EXPECT_TRUE(agent.Heartbeat().ok());
}

TEST_F(SessionTest, DroppedSessionStreamMarksTheNodeDisconnected) {
  AddNode("node1");
  auto agent = Agent("node1");
  auto session = agent.OpenSession();
  session->Cancel();
  ASSERT_TRUE(Eventually(
      [&] { return GetNode("node1")->status().state() == api::NodeStatus::STATE_DISCONNECTED; }));
  // Reconnecting makes it READY again.
  auto again = agent.OpenSession();
  EXPECT_EQ(GetNode("node1")->status().state(), api::NodeStatus::STATE_READY);
}

TEST_F(SessionTest, BadRequestsAreRejectedWithClearErrors) {
  AddNode("node1");
  auto stranger = Agent("nosuchnode");
  auto session = stranger.OpenSession();
  auto end = session->Finished();
  ASSERT_TRUE(end.has_value());
  EXPECT_EQ(end->error_code(), StatusCode::NOT_FOUND);
  EXPECT_NE(end->error_message().find("node nosuchnode is not a member of this cluster"),
            std::string::npos);

  auto anonymous = Agent("");
  auto s2 = anonymous.OpenSession();
  ASSERT_TRUE(s2->Finished().has_value());
  EXPECT_EQ(s2->Finished()->error_code(), StatusCode::UNAUTHENTICATED);

  auto agent = Agent("node1");
  auto no_session = agent.Heartbeat(nullptr, "whatever");
  EXPECT_EQ(no_session.error_code(), StatusCode::NOT_FOUND);
  auto opened = agent.OpenSession();
  auto empty = agent.Heartbeat(nullptr, "");
  EXPECT_EQ(empty.error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(empty.error_message().find("session_id is required"), std::string::npos);
  auto assignments = agent.Assignments("wrong");
  ASSERT_TRUE(assignments->Finished().has_value());
  EXPECT_EQ(assignments->Finished()->error_code(), StatusCode::INVALID_ARGUMENT);

  dispatcher_->Stop();
  auto stopped = agent.Heartbeat();
  EXPECT_EQ(stopped.error_code(), StatusCode::UNAVAILABLE);
  EXPECT_NE(stopped.error_message().find("not the leader"), std::string::npos);
  ASSERT_TRUE(opened->Finished().has_value());
  EXPECT_EQ(opened->Finished()->error_code(), StatusCode::UNAVAILABLE);
}

TEST_F(SessionTest, RegistrationsAreRateLimited) {
  AddNode("node1");
  auto agent = Agent("node1");
  std::vector<std::unique_ptr<StreamReader<api::SessionMessage>>> sessions;
  for (int i = 0; i < 3; ++i) {
    sessions.push_back(agent.OpenSession());
    ASSERT_NE(sessions.back()->Wait(0), nullptr);
  }
  auto fourth = agent.OpenSession();
  ASSERT_TRUE(fourth->Finished().has_value());
  EXPECT_EQ(fourth->Finished()->error_code(), StatusCode::UNAVAILABLE);
  EXPECT_NE(fourth->Finished()->error_message().find("rate limit"), std::string::npos);
  clock_.Advance(absl::Seconds(8));
  auto later = agent.OpenSession();
  EXPECT_NE(later->Wait(0), nullptr);
}

}  // namespace
}  // namespace shoal::manager::dispatcher::testing
