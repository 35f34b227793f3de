#include "agent/reporter.h"

#include "gtest/gtest.h"

namespace shoal::agent {
namespace {

api::TaskStatus Status(api::TaskState s, const std::string& msg = "") {
  api::TaskStatus st;
  st.set_state(s);
  st.set_message(msg);
  return st;
}

TEST(StatusReporter, KeepsOnlyTheNewestStatePerTaskAndNeverGoesBackwards) {
  StatusReporter r;
  int notified = 0;
  r.SetNotify([&] { ++notified; });
  EXPECT_TRUE(r.Report("t1", Status(api::TASK_STATE_ACCEPTED)));
  EXPECT_TRUE(r.Report("t1", Status(api::TASK_STATE_RUNNING)));
  EXPECT_FALSE(r.Report("t1", Status(api::TASK_STATE_PREPARING)));
  EXPECT_TRUE(r.Report("t2", Status(api::TASK_STATE_FAILED)));
  EXPECT_EQ(notified, 3);
  auto batch = r.TakePending();
  ASSERT_EQ(batch.size(), 2u);
  EXPECT_EQ(batch[0].task_id(), "t1");
  EXPECT_EQ(batch[0].status().state(), api::TASK_STATE_RUNNING);
  EXPECT_EQ(batch[1].status().state(), api::TASK_STATE_FAILED);
  EXPECT_FALSE(r.HasPending());
  // Still refused after it was sent.
  EXPECT_FALSE(r.Report("t1", Status(api::TASK_STATE_STARTING)));
  // The same state with a new message replaces it.
  EXPECT_TRUE(r.Report("t1", Status(api::TASK_STATE_RUNNING, "again")));
  EXPECT_EQ(r.Last("t1")->message(), "again");
}

TEST(StatusReporter, FailedSendIsRetriedUnlessSuperseded) {
  StatusReporter r;
  r.Report("a", Status(api::TASK_STATE_STARTING));
  r.Report("b", Status(api::TASK_STATE_RUNNING));
  auto batch = r.TakePending();
  ASSERT_EQ(batch.size(), 2u);
  r.Report("a", Status(api::TASK_STATE_RUNNING));  // newer while in flight
  r.Sent(batch, false);
  auto retry = r.TakePending();
  ASSERT_EQ(retry.size(), 2u);
  EXPECT_EQ(retry[0].status().state(), api::TASK_STATE_RUNNING);  // the newer one for "a"
  EXPECT_EQ(retry[1].task_id(), "b");
  r.Sent(retry, true);
  EXPECT_FALSE(r.HasPending());
}

TEST(StatusReporter, ResendAllAfterReconnectAndForget) {
  StatusReporter r;
  r.Report("a", Status(api::TASK_STATE_RUNNING));
  r.Sent(r.TakePending(), true);
  r.ResendAll();
  EXPECT_EQ(r.TakePending().size(), 1u);
  r.Forget("a");
  r.ResendAll();
  EXPECT_TRUE(r.TakePending().empty());
  EXPECT_FALSE(r.Last("a").has_value());
  // A forgotten task starts over (a new assignment of the same id is a new task manager).
  EXPECT_TRUE(r.Report("a", Status(api::TASK_STATE_ACCEPTED)));
}

}  // namespace
}  // namespace shoal::agent
