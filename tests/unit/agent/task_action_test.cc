#include "agent/task_manager.h"

#include "gtest/gtest.h"

namespace shoal::agent {
namespace {

TEST(NextAction, FollowsTheSwarmTaskLifecycle) {
  auto R = api::TASK_STATE_RUNNING;
  EXPECT_EQ(NextAction(api::TASK_STATE_ASSIGNED, R, false), TaskAction::kAccept);
  EXPECT_EQ(NextAction(api::TASK_STATE_ACCEPTED, R, false), TaskAction::kPrepare);
  EXPECT_EQ(NextAction(api::TASK_STATE_PREPARING, R, false), TaskAction::kPrepare);
  EXPECT_EQ(NextAction(api::TASK_STATE_READY, R, true), TaskAction::kStart);
  EXPECT_EQ(NextAction(api::TASK_STATE_STARTING, R, true), TaskAction::kStart);
  EXPECT_EQ(NextAction(api::TASK_STATE_RUNNING, R, true), TaskAction::kWatch);
  // Jobs run to completion with desired COMPLETE.
  EXPECT_EQ(NextAction(api::TASK_STATE_READY, api::TASK_STATE_COMPLETE, true), TaskAction::kStart);
}

TEST(NextAction, DesiredReadyPreparesButDoesNotStart) {
  EXPECT_EQ(NextAction(api::TASK_STATE_ACCEPTED, api::TASK_STATE_READY, false),
            TaskAction::kPrepare);
  EXPECT_EQ(NextAction(api::TASK_STATE_READY, api::TASK_STATE_READY, true), TaskAction::kNone);
}

TEST(NextAction, ShutdownWinsUntilTerminalAndTerminalIsFinal) {
  for (auto d : {api::TASK_STATE_SHUTDOWN, api::TASK_STATE_REMOVE}) {
    EXPECT_EQ(NextAction(api::TASK_STATE_ASSIGNED, d, false), TaskAction::kShutdown);
    EXPECT_EQ(NextAction(api::TASK_STATE_RUNNING, d, true), TaskAction::kShutdown);
  }
  for (auto s : {api::TASK_STATE_COMPLETE, api::TASK_STATE_SHUTDOWN, api::TASK_STATE_FAILED,
                 api::TASK_STATE_REJECTED}) {
    EXPECT_EQ(NextAction(s, api::TASK_STATE_RUNNING, true), TaskAction::kNone);
    EXPECT_EQ(NextAction(s, api::TASK_STATE_REMOVE, true), TaskAction::kNone);
  }
}

TEST(NextAction, ContainerLostAfterStartFailsAndBeforeStartIsPreparedAgain) {
  EXPECT_EQ(NextAction(api::TASK_STATE_RUNNING, api::TASK_STATE_RUNNING, false), TaskAction::kLost);
  EXPECT_EQ(NextAction(api::TASK_STATE_STARTING, api::TASK_STATE_RUNNING, false),
            TaskAction::kLost);
  EXPECT_EQ(NextAction(api::TASK_STATE_READY, api::TASK_STATE_RUNNING, false),
            TaskAction::kPrepare);
}

}  // namespace
}  // namespace shoal::agent
