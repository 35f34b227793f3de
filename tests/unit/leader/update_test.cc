// Rolling updates and rollbacks through the full leader loop with simulated agents: what a
// user observes is which tasks run which image, in which order tasks start and stop, and the
// service's update_status.
#include <map>
#include <set>

#include "gtest/gtest.h"
#include "tests/unit/leader/fixture.h"

namespace shoal::manager::leader {
namespace {

namespace api = ::shoal::api::v1;
using fixtures::TaskPtr;
using State = api::UpdateStatus;

class UpdateTest : public fixtures::LeaderFixture {
 protected:
  void SetUp() override {
    // Tasks of image "app:bad" crash on start; everything else runs.
    agents_.outcome = [](const api::Task& t) {
      return t.spec().container().image() == "app:bad" ? FakeAgents::Outcome::kFail
                                                       : FakeAgents::Outcome::kRun;
    };
  }
  // `n` replicas of app:1 on three nodes, all running.
  std::string Deploy(uint64_t n, const std::function<void(api::ServiceSpec&)>& edit = nullptr) {
    for (const char* node : {"n1", "n2", "n3"}) AddNode(node);
    auto s = MakeService([&](api::Service& s) {
      s.mutable_spec()->mutable_replicated()->set_replicas(n);
      s.mutable_spec()->mutable_task()->mutable_restart()->mutable_delay()->set_seconds(1);
      if (edit) edit(*s.mutable_spec());
    });
    EXPECT_TRUE(RunUntil([&] { return Running(s.id()) == static_cast<int>(n); }));
    return s.id();
  }
  void SetImage(const std::string& id, const std::string& image) {
    UpdateSpec(id, [&](api::ServiceSpec& spec) {
      spec.mutable_task()->mutable_container()->set_image(image);
    });
  }
  State::State UpdateState(const std::string& id) { return Service(id)->update_status().state(); }
  // Tasks with `image` ever created for the service.
  int Created(const std::string& id, const std::string& image) {
    int n = 0;
    for (const auto& t : Tasks(id)) n += t->spec().container().image() == image;
    return n;
  }
  // Index in the agents' log of the first transition of `task_id` to `state`; -1 if none.
  int LogIndex(const std::string& task_id, api::TaskState state) {
    for (size_t i = 0; i < agents_.log.size(); ++i) {
      if (agents_.log[i].task_id == task_id && agents_.log[i].state == state) return i;
    }
    return -1;
  }
  // Per slot: (old app:1 task, new app:2 task).
  std::map<uint64_t, std::pair<TaskPtr, TaskPtr>> SlotPairs(const std::string& id) {
    std::map<uint64_t, std::pair<TaskPtr, TaskPtr>> out;
    for (const auto& t : Tasks(id)) {
      auto& p = out[t->slot()];
      (t->spec().container().image() == "app:1" ? p.first : p.second) = t;
    }
    return out;
  }
};

TEST_F(UpdateTest, StopFirstStopsTheOldTaskBeforeStartingTheNewOne) {
  std::string svc = Deploy(4);
  SetImage(svc, "app:2");
  ASSERT_TRUE(RunUntil([&] { return UpdateState(svc) == State::STATE_COMPLETED; }));
  EXPECT_EQ(Running(svc, "app:2"), 4);
  EXPECT_EQ(Created(svc, "app:2"), 4);  // each slot updated exactly once
  auto pairs = SlotPairs(svc);
  ASSERT_EQ(pairs.size(), 4u);
  for (auto& [slot, p] : pairs) {
    ASSERT_TRUE(p.first && p.second) << slot;
    int stopped = LogIndex(p.first->id(), api::TASK_STATE_SHUTDOWN);
    int started = LogIndex(p.second->id(), api::TASK_STATE_RUNNING);
    ASSERT_GE(stopped, 0);
    ASSERT_GE(started, 0);
    EXPECT_LT(stopped, started) << "slot " << slot;
  }
  EXPECT_EQ(Service(svc)->update_status().message(), "update completed");
  EXPECT_EQ(Service(svc)->update_status().updated(), 4u);
}

TEST_F(UpdateTest, StartFirstStartsTheNewTaskBeforeStoppingTheOldOne) {
  std::string svc = Deploy(4, [](api::ServiceSpec& spec) {
    spec.mutable_update()->set_parallelism(2);
    spec.mutable_update()->set_order(api::UpdateConfig::ORDER_START_FIRST);
  });
  SetImage(svc, "app:2");
  int most_running = 0;
  ASSERT_TRUE(RunUntil([&] { return UpdateState(svc) == State::STATE_COMPLETED; }, 1000,
                       [&] { most_running = std::max(most_running, Running(svc)); }));
  EXPECT_EQ(Running(svc, "app:2"), 4);
  for (auto& [slot, p] : SlotPairs(svc)) {
    ASSERT_TRUE(p.first && p.second) << slot;
    int started = LogIndex(p.second->id(), api::TASK_STATE_RUNNING);
    int stopped = LogIndex(p.first->id(), api::TASK_STATE_SHUTDOWN);
    ASSERT_GE(started, 0);
    ASSERT_GE(stopped, 0);
    EXPECT_LT(started, stopped) << "slot " << slot;
  }
  // Start-first with parallelism 2 runs up to two extra tasks, never more.
  EXPECT_GT(most_running, 4);
  EXPECT_LE(most_running, 6);
}

TEST_F(UpdateTest, FailingUpdateRollsBack) {
  std::string svc = Deploy(3, [](api::ServiceSpec& spec) {
    spec.mutable_update()->set_failure_action(api::UpdateConfig::FAILURE_ACTION_ROLLBACK);
    spec.mutable_update()->set_parallelism(1);
  });
  SetImage(svc, "app:bad");
  ASSERT_TRUE(RunUntil([&] { return UpdateState(svc) == State::STATE_ROLLBACK_COMPLETED; }));
  auto s = Service(svc);
  EXPECT_EQ(s->spec().task().container().image(), "app:1");
  EXPECT_NE(s->update_status().message().find("update rolled back due to failure or early "
                                              "termination of task"),
            std::string::npos)
      << s->update_status().message();
  ASSERT_TRUE(RunUntil([&] { return Running(svc, "app:1") == 3; }));
  EXPECT_EQ(Running(svc), 3);
  // Parallelism 1 and ratio 0: the first failure stops the update; only one slot was touched
  // (its failed task and the restart of it ran app:bad).
  std::set<uint64_t> bad_slots;
  for (const auto& t : Tasks(svc)) {
    if (t->spec().container().image() == "app:bad") bad_slots.insert(t->slot());
  }
  EXPECT_EQ(bad_slots.size(), 1u);
  EXPECT_EQ(s->update_status().message().rfind("rollback completed (update rolled back", 0), 0u);
}

TEST_F(UpdateTest, MaxFailureRatioPausesTheUpdate) {
  std::string svc = Deploy(4, [](api::ServiceSpec& spec) {
    spec.mutable_update()->set_parallelism(1);
    spec.mutable_update()->set_max_failure_ratio(0.3f);  // one failure in four is tolerated
    spec.mutable_update()->set_failure_action(api::UpdateConfig::FAILURE_ACTION_PAUSE);
  });
  SetImage(svc, "app:bad");
  ASSERT_TRUE(RunUntil([&] { return UpdateState(svc) == State::STATE_PAUSED; }));
  auto status = Service(svc)->update_status();
  EXPECT_EQ(status.failures(), 2u);
  EXPECT_EQ(status.total(), 4u);
  EXPECT_NE(status.message().find("update paused due to failure"), std::string::npos);
  // Paused: the two slots not yet reached keep running the old image, for good.
  for (int i = 0; i < 100; ++i) {
    (void)leader_->loop.RunOnce(absl::ZeroDuration());
    clock_.Advance(absl::Milliseconds(100));
  }
  EXPECT_EQ(UpdateState(svc), State::STATE_PAUSED);
  EXPECT_EQ(Running(svc, "app:1"), 2);
  // A new spec resumes with a new update.
  SetImage(svc, "app:2");
  ASSERT_TRUE(RunUntil([&] { return UpdateState(svc) == State::STATE_COMPLETED; }));
  ASSERT_TRUE(RunUntil([&] { return Running(svc, "app:2") == 4; }));
}

TEST_F(UpdateTest, ContinueKeepsGoingPastFailures) {
  std::string svc = Deploy(2, [](api::ServiceSpec& spec) {
    spec.mutable_update()->set_failure_action(api::UpdateConfig::FAILURE_ACTION_CONTINUE);
    spec.mutable_task()->mutable_restart()->set_condition(api::RestartPolicy::CONDITION_NONE);
  });
  SetImage(svc, "app:bad");
  ASSERT_TRUE(RunUntil([&] { return UpdateState(svc) == State::STATE_COMPLETED; }));
  EXPECT_EQ(Service(svc)->update_status().failures(), 2u);
  EXPECT_EQ(Running(svc), 0);
}

TEST_F(UpdateTest, ANewLeaderResumesAnUpdateMidWay) {
  std::string svc = Deploy(6, [](api::ServiceSpec& spec) {
    spec.mutable_update()->set_parallelism(1);
    spec.mutable_update()->mutable_delay()->set_seconds(2);
  });
  SetImage(svc, "app:2");
  ASSERT_TRUE(RunUntil(
      [&] { return Running(svc, "app:2") == 3 && UpdateState(svc) == State::STATE_UPDATING; }));
  std::set<std::string> before;
  for (const auto& t : Tasks(svc)) {
    if (t->spec().container().image() == "app:2") before.insert(t->id());
  }
  // Failover: a new leader with no memory of the update takes over.
  NewLeader();
  ASSERT_TRUE(RunUntil([&] { return UpdateState(svc) == State::STATE_COMPLETED; }));
  EXPECT_EQ(Running(svc, "app:2"), 6);
  // Resumed, not restarted: the slots done before the failover kept their tasks and no slot
  // was updated twice.
  EXPECT_EQ(Created(svc, "app:2"), 6);
  for (const auto& id : before) {
    auto t = store_.View().Get<api::Task>(id);
    ASSERT_NE(t, nullptr);
    EXPECT_EQ(t->status().state(), api::TASK_STATE_RUNNING) << id;
  }
  EXPECT_EQ(Service(svc)->update_status().total(), 6u);
}

TEST_F(UpdateTest, ScaleChangeIsNotAnUpdate) {
  auto id = Deploy(2);
  auto s = *Service(id);
  SetReplicas(s, 4);
  ASSERT_TRUE(RunUntil([&] { return Running(id) == 4; }));
  EXPECT_EQ(UpdateState(id), State::STATE_UNKNOWN);
  EXPECT_EQ(Created(id, "app:1"), 4);
}

TEST_F(UpdateTest, GlobalServiceUpdatesNodeByNode) {
  for (const char* node : {"n1", "n2", "n3"}) AddNode(node);
  auto svc = MakeService([](api::Service& s) { s.mutable_spec()->mutable_global(); }).id();
  ASSERT_TRUE(RunUntil([&] { return Running(svc) == 3; }));
  SetImage(svc, "app:2");
  int most_missing = 0;
  ASSERT_TRUE(RunUntil([&] { return UpdateState(svc) == State::STATE_COMPLETED; }, 1000,
                       [&] { most_missing = std::max(most_missing, 3 - Running(svc)); }));
  EXPECT_EQ(Running(svc, "app:2"), 3);
  EXPECT_EQ(RunningPerNode(svc).size(), 3u);
  EXPECT_LE(most_missing, 1);  // parallelism 1: one node at a time
}

TEST_F(UpdateTest, ManualRollbackUsesTheRollbackConfig) {
  std::string svc = Deploy(3, [](api::ServiceSpec& spec) {
    // Updates stop first; rollbacks start first.
    spec.mutable_rollback()->set_order(api::UpdateConfig::ORDER_START_FIRST);
    spec.mutable_rollback()->set_parallelism(1);
  });
  SetImage(svc, "app:2");
  ASSERT_TRUE(RunUntil([&] { return UpdateState(svc) == State::STATE_COMPLETED; }));
  std::set<std::string> v2;
  for (const auto& t : RunnableTasks(svc)) v2.insert(t->id());
  // What the control API writes for `service update --rollback`.
  ASSERT_TRUE(store_
                  .Update([&](store::Tx& tx) {
                    api::Service s = *tx.Get<api::Service>(svc);
                    std::swap(*s.mutable_spec(), *s.mutable_previous_spec());
                    s.set_previous_spec_version(s.spec_version());
                    s.set_spec_version(s.spec_version() + 1);
                    api::UpdateStatus st;
                    st.set_state(State::STATE_ROLLBACK_STARTED);
                    st.set_spec_version(s.spec_version());
                    st.set_message("manually requested rollback");
                    *s.mutable_update_status() = st;
                    return tx.Update(s);
                  })
                  .ok());
  ASSERT_TRUE(RunUntil([&] { return UpdateState(svc) == State::STATE_ROLLBACK_COMPLETED; }));
  EXPECT_EQ(Service(svc)->update_status().message(), "rollback completed");
  ASSERT_TRUE(RunUntil([&] { return Running(svc, "app:1") == 3 && Running(svc) == 3; }));
  // Start-first: every app:1 task of the rollback ran before its slot's app:2 task stopped.
  for (const auto& t : RunnableTasks(svc)) {
    ASSERT_EQ(t->spec().container().image(), "app:1");
    for (const auto& old : v2) {
      auto o = store_.View().Get<api::Task>(old);
      if (o->slot() != t->slot()) continue;
      EXPECT_LT(LogIndex(t->id(), api::TASK_STATE_RUNNING),
                LogIndex(old, api::TASK_STATE_SHUTDOWN));
    }
  }
}

TEST_F(UpdateTest, StopFirstStartsTheNewTaskWhenTheOldOneNeverReportsStopping) {
  std::string svc = Deploy(1);
  const std::string node = RunnableTasks(svc)[0]->node_id();
  // The old task's agent is hung (the node still looks READY); no new task may go there.
  agents_.dead.insert(node);
  EditNode(node, [](api::Node& n) {
    n.mutable_spec()->set_availability(api::NodeSpec::AVAILABILITY_PAUSE);
  });
  SetImage(svc, "app:2");
  const absl::Time updated_at = clock_.Now();
  ASSERT_TRUE(RunUntil([&] { return Running(svc, "app:2") == 1; }));
  EXPECT_GE(clock_.Now() - updated_at, absl::Minutes(1));
  ASSERT_TRUE(RunUntil([&] { return UpdateState(svc) == State::STATE_COMPLETED; }));
}

TEST_F(UpdateTest, ScalingDownMidUpdateStillCompletes) {
  std::string svc = Deploy(6, [](api::ServiceSpec& spec) {
    spec.mutable_update()->set_parallelism(1);
    spec.mutable_update()->set_order(api::UpdateConfig::ORDER_START_FIRST);
    spec.mutable_update()->mutable_delay()->set_seconds(1);
  });
  SetImage(svc, "app:2");
  ASSERT_TRUE(RunUntil([&] { return Running(svc, "app:2") == 2; }))
      << Service(svc)->update_status().DebugString() << [&] {
           std::string out;
           for (const auto& t : Tasks(svc)) {
             out += absl::StrCat(t->slot(), " ", t->spec().container().image(), " ",
                                 t->desired_state(), " ", t->status().state(), " ", t->node_id(),
                                 "\n");
           }
           return out;
         }();
  UpdateSpec(svc, [](api::ServiceSpec& spec) { spec.mutable_replicated()->set_replicas(3); });
  ASSERT_TRUE(RunUntil([&] { return UpdateState(svc) == State::STATE_COMPLETED; }));
  ASSERT_TRUE(RunUntil([&] { return Running(svc) == 3; }));
  EXPECT_EQ(Running(svc, "app:2"), 3);
  EXPECT_EQ(RunnableTasks(svc).size(), 3u);
}

}  // namespace
}  // namespace shoal::manager::leader
