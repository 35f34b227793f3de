// Task status ingestion through the real gRPC service: batching (time and size), monotonic
// states, ownership and validation errors.
#include "tests/unit/dispatcher/fake_agent.h"

namespace shoal::manager::dispatcher::testing {
namespace {

using grpc::StatusCode;

class StatusTest : public DispatcherFixture {
 protected:
  DispatcherOptions Options() override {
    DispatcherOptions o = DispatcherFixture::Options();
    o.status_batch_items = 4;
    return o;
  }
  void SetUp() override {
    DispatcherFixture::SetUp();
    AddNode("node1");
    AddNode("node2");
    for (const char* id : {"t1", "t2", "t3", "t4"}) Create(MakeTask(id, "node1"));
    Create(MakeTask("theirs", "node2"));
    agent_ = std::make_unique<FakeAgent>(Agent("node1"));
    session_ = agent_->OpenSession();
  }
  std::unique_ptr<FakeAgent> agent_;
  std::unique_ptr<StreamReader<api::SessionMessage>> session_;
};

TEST_F(StatusTest, UpdatesAreWrittenInOneBatchAfterTheInterval) {
  int before = proposer_.proposals();
  ASSERT_TRUE(agent_->Report("t1", api::TASK_STATE_ACCEPTED).ok());
  ASSERT_TRUE(agent_->Report("t2", api::TASK_STATE_PREPARING).ok());
  ASSERT_TRUE(agent_->Report("t3", api::TASK_STATE_RUNNING, "started").ok());
  EXPECT_EQ(dispatcher_->queued_statuses(), 3u);
  dispatcher_->Tick();  // the interval has not passed on the clock
  EXPECT_EQ(proposer_.proposals(), before);
  EXPECT_EQ(GetTask("t1")->status().state(), api::TASK_STATE_ASSIGNED);

  clock_.Advance(absl::Milliseconds(100));
  dispatcher_->Tick();
  EXPECT_EQ(proposer_.proposals(), before + 1);  // one raft entry for all three
  EXPECT_EQ(dispatcher_->queued_statuses(), 0u);
  EXPECT_EQ(GetTask("t1")->status().state(), api::TASK_STATE_ACCEPTED);
  EXPECT_EQ(GetTask("t2")->status().state(), api::TASK_STATE_PREPARING);
  auto t3 = GetTask("t3");
  EXPECT_EQ(t3->status().state(), api::TASK_STATE_RUNNING);
  EXPECT_EQ(t3->status().message(), "started");
  EXPECT_EQ(t3->status().applied_by(), "manager1");
}

TEST_F(StatusTest, AFullQueueIsWrittenAtOnce) {
  int before = proposer_.proposals();
  api::UpdateTaskStatusRequest req;
  req.set_session_id(agent_->session_id);
  for (const char* id : {"t1", "t2", "t3", "t4"}) {
    auto* u = req.add_updates();
    u->set_task_id(id);
    u->mutable_status()->set_state(api::TASK_STATE_RUNNING);
  }
  ASSERT_TRUE(agent_->Report(req).ok());
  EXPECT_EQ(proposer_.proposals(), before + 1);
  EXPECT_EQ(GetTask("t4")->status().state(), api::TASK_STATE_RUNNING);
}

TEST_F(StatusTest, ATaskNeverMovesBackwards) {
  // Within one batch: the furthest state wins whatever the order.
  ASSERT_TRUE(agent_->Report("t1", api::TASK_STATE_RUNNING).ok());
  ASSERT_TRUE(agent_->Report("t1", api::TASK_STATE_STARTING).ok());
  ASSERT_TRUE(dispatcher_->FlushStatus().ok());
  EXPECT_EQ(GetTask("t1")->status().state(), api::TASK_STATE_RUNNING);
  // Across batches: a late, older report is dropped at write time.
  ASSERT_TRUE(agent_->Report("t1", api::TASK_STATE_PREPARING).ok());
  ASSERT_TRUE(dispatcher_->FlushStatus().ok());
  EXPECT_EQ(GetTask("t1")->status().state(), api::TASK_STATE_RUNNING);
  // Forward still works, and the same state may update its message.
  ASSERT_TRUE(agent_->Report("t1", api::TASK_STATE_FAILED, "exit 1").ok());
  ASSERT_TRUE(dispatcher_->FlushStatus().ok());
  EXPECT_EQ(GetTask("t1")->status().state(), api::TASK_STATE_FAILED);
  EXPECT_EQ(GetTask("t1")->status().message(), "exit 1");
}

TEST_F(StatusTest, StatusForAnotherNodesTaskIsRejected) {
  api::UpdateTaskStatusRequest req;
  req.set_session_id(agent_->session_id);
  auto* ok = req.add_updates();
  ok->set_task_id("t1");
  ok->mutable_status()->set_state(api::TASK_STATE_RUNNING);
  auto* bad = req.add_updates();
  bad->set_task_id("theirs");
  bad->mutable_status()->set_state(api::TASK_STATE_FAILED);
  auto s = agent_->Report(req);
  EXPECT_EQ(s.error_code(), StatusCode::PERMISSION_DENIED);
  EXPECT_NE(s.error_message().find("updates[1]: task theirs is not assigned to node node1"),
            std::string::npos)
      << s.error_message();
  // Nothing of the rejected request was queued.
  EXPECT_EQ(dispatcher_->queued_statuses(), 0u);
  EXPECT_EQ(GetTask("theirs")->status().state(), api::TASK_STATE_ASSIGNED);
}

TEST_F(StatusTest, InvalidUpdatesNameTheField) {
  auto s = agent_->Report("t1", api::TASK_STATE_NEW);
  EXPECT_EQ(s.error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("updates[0].status.state"), std::string::npos);
  auto orphan = agent_->Report("t1", api::TASK_STATE_ORPHANED);
  EXPECT_EQ(orphan.error_code(), StatusCode::INVALID_ARGUMENT);
  auto empty = agent_->Report("", api::TASK_STATE_RUNNING);
  EXPECT_EQ(empty.error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(empty.error_message().find("updates[0].task_id is required"), std::string::npos);
  // Unknown tasks (deleted meanwhile) are ignored, not an error.
  EXPECT_TRUE(agent_->Report("gone", api::TASK_STATE_RUNNING).ok());
  EXPECT_EQ(dispatcher_->queued_statuses(), 0u);
  // Another node without a session cannot report at all.
  auto stranger = Agent("node2");
  stranger.session_id = agent_->session_id;
  auto no_session = stranger.Report("theirs", api::TASK_STATE_RUNNING);
  EXPECT_EQ(no_session.error_code(), StatusCode::NOT_FOUND);
}

}  // namespace
}  // namespace shoal::manager::dispatcher::testing
