#include <map>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "manager/orchestrator/reconcile.h"
#include "manager/orchestrator/update.h"
#include "tests/unit/leader/fixture.h"

namespace shoal::manager::orchestrator {
namespace {

using TaskPtr = std::shared_ptr<const api::Task>;

class OrchestratorTest : public fixtures::StoreFixture {
 protected:
  void Reconcile(const api::Service& s) {
    Env env{clock_, random_};
    auto r = store_.Update([&](store::Tx& tx) {
      auto current = tx.Get<api::Service>(s.id());
      return IsGlobal(*current) ? ReconcileGlobal(tx, *current, env)
                                : ReconcileReplicated(tx, *current, env);
    });
    ASSERT_TRUE(r.ok()) << r.status();
  }
  void Run(const TaskPtr& t, const std::string& node,
           api::TaskState state = api::TASK_STATE_RUNNING) {
    SetTask(t, node, state);
  }
};

TEST_F(OrchestratorTest, CreatesOneTaskPerSlotAndIsIdempotent) {
  auto s = Replicated(3);
  Reconcile(s);
  auto tasks = Tasks(s.id());
  ASSERT_EQ(tasks.size(), 3u);
  std::set<uint64_t> slots;
  for (auto& t : tasks) {
    slots.insert(t->slot());
    EXPECT_EQ(t->desired_state(), api::TASK_STATE_RUNNING);
    EXPECT_EQ(t->status().state(), api::TASK_STATE_NEW);
    EXPECT_EQ(t->spec_version(), 1u);
    EXPECT_EQ(t->annotations().name(), absl::StrCat("web1.", t->slot()));
  }
  EXPECT_EQ(slots, (std::set<uint64_t>{1, 2, 3}));
  Reconcile(s);
  EXPECT_EQ(Tasks(s.id()).size(), 3u);
}

TEST_F(OrchestratorTest, ScaleUpFillsLowestFreeSlotsAndScaleDownPrefersNonRunning) {
  AddNode("n1");
  auto s = Replicated(3);
  Reconcile(s);
  auto tasks = Tasks(s.id());
  Run(tasks[0], "n1");
  Run(tasks[2], "n1");  // one of the three is not running yet
  SetReplicas(s, 5);
  Reconcile(s);
  std::set<uint64_t> slots;
  for (auto& t : RunnableTasks(s.id())) slots.insert(t->slot());
  EXPECT_EQ(slots, (std::set<uint64_t>{1, 2, 3, 4, 5}));

  SetReplicas(s, 2);
  Reconcile(s);
  auto left = RunnableTasks(s.id());
  ASSERT_EQ(left.size(), 2u);
  for (auto& t : left) EXPECT_EQ(t->status().state(), api::TASK_STATE_RUNNING) << t->slot();
  int removed = 0;
  for (auto& t : Tasks(s.id())) removed += t->desired_state() == api::TASK_STATE_REMOVE;
  EXPECT_EQ(removed, 3);
}

TEST_F(OrchestratorTest, ScaleDownKeepsTheSpreadOverPreferences) {
  // Rack a: four nodes with one task each; rack b: one node with two tasks. Balancing nodes
  // alone would take from b1 first; balancing racks takes both from rack a.
  for (int i = 1; i <= 4; ++i) AddNode(absl::StrCat("a", i), {{"rack", "a"}});
  AddNode("b1", {{"rack", "b"}});
  auto s = MakeService([](api::Service& s) {
    s.mutable_spec()->mutable_replicated()->set_replicas(6);
    s.mutable_spec()->mutable_task()->mutable_placement()->add_preferences()->set_spread_descriptor(
        "node.labels.rack");
  });
  Reconcile(s);
  auto tasks = Tasks(s.id());
  const char* nodes[] = {"a1", "a2", "a3", "a4", "b1", "b1"};
  for (size_t i = 0; i < tasks.size(); ++i) Run(tasks[i], nodes[i]);
  SetReplicas(s, 4);
  Reconcile(s);
  std::map<std::string, int> per_rack;
  for (auto& t : RunnableTasks(s.id())) per_rack[t->node_id().substr(0, 1)]++;
  EXPECT_EQ(per_rack["a"], 2);
  EXPECT_EQ(per_rack["b"], 2);
}

TEST_F(OrchestratorTest, TasksOnDownOrDrainedNodesAreReplacedAtOnce) {
  AddNode("n1");
  AddNode("n2");
  auto s = Replicated(2);
  Reconcile(s);
  auto tasks = Tasks(s.id());
  Run(tasks[0], "n1");
  Run(tasks[1], "n2");
  EditNode("n1", [](api::Node& n) { n.mutable_status()->set_state(api::NodeStatus::STATE_DOWN); });
  EditNode("n2", [](api::Node& n) {
    n.mutable_spec()->set_availability(api::NodeSpec::AVAILABILITY_DRAIN);
  });
  Reconcile(s);
  auto old0 = store_.View().Get<api::Task>(tasks[0]->id());
  EXPECT_EQ(old0->desired_state(), api::TASK_STATE_SHUTDOWN);
  auto runnable = RunnableTasks(s.id());
  ASSERT_EQ(runnable.size(), 2u);
  for (auto& t : runnable) {
    EXPECT_TRUE(t->node_id().empty());
    EXPECT_EQ(t->desired_state(), api::TASK_STATE_RUNNING);  // no restart delay for lost nodes
  }
  std::set<uint64_t> slots{runnable[0]->slot(), runnable[1]->slot()};
  EXPECT_EQ(slots, (std::set<uint64_t>{tasks[0]->slot(), tasks[1]->slot()}));
}

TEST_F(OrchestratorTest, FailedTaskRestartsAfterTheDelayStoredInTheTask) {
  AddNode("n1");
  auto s = Replicated(1);
  Reconcile(s);
  Run(Tasks(s.id())[0], "n1", api::TASK_STATE_FAILED);
  Reconcile(s);
  auto runnable = RunnableTasks(s.id());
  ASSERT_EQ(runnable.size(), 1u);
  EXPECT_EQ(runnable[0]->desired_state(), api::TASK_STATE_READY);
  EXPECT_NE(runnable[0]->status().message().find("restart delayed until"), std::string::npos);
  auto start = [&] {
    ASSERT_TRUE(
        store_.Update([&](store::Tx& tx) { return StartDelayedTasks(tx, clock_.Now()); }).ok());
  };
  clock_.Advance(absl::Seconds(4));
  start();
  EXPECT_EQ(store_.View().Get<api::Task>(runnable[0]->id())->desired_state(),
            api::TASK_STATE_READY);
  clock_.Advance(absl::Seconds(1));
  start();
  EXPECT_EQ(store_.View().Get<api::Task>(runnable[0]->id())->desired_state(),
            api::TASK_STATE_RUNNING);
  // A second reconcile does not restart again.
  Reconcile(s);
  EXPECT_EQ(Tasks(s.id()).size(), 2u);
}

TEST_F(OrchestratorTest, RestartConditions) {
  AddNode("n1");
  auto none = MakeService([](api::Service& s) {
    s.mutable_spec()->mutable_replicated()->set_replicas(1);
    s.mutable_spec()->mutable_task()->mutable_restart()->set_condition(
        api::RestartPolicy::CONDITION_NONE);
  });
  Reconcile(none);
  Run(Tasks(none.id())[0], "n1", api::TASK_STATE_FAILED);
  Reconcile(none);
  EXPECT_EQ(Tasks(none.id()).size(), 1u) << "condition none must not replace the task";

  auto on_failure = MakeService([](api::Service& s) {
    s.mutable_spec()->mutable_replicated()->set_replicas(2);
    s.mutable_spec()->mutable_task()->mutable_restart()->set_condition(
        api::RestartPolicy::CONDITION_ON_FAILURE);
  });
  Reconcile(on_failure);
  auto t = Tasks(on_failure.id());
  Run(t[0], "n1", api::TASK_STATE_COMPLETE);
  Run(t[1], "n1", api::TASK_STATE_FAILED);
  Reconcile(on_failure);
  auto all = Tasks(on_failure.id());
  EXPECT_EQ(all.size(), 3u);  // only the failed one is replaced
  EXPECT_EQ(store_.View().Get<api::Task>(t[0]->id())->desired_state(), api::TASK_STATE_RUNNING);
}

TEST_F(OrchestratorTest, MaxAttemptsStopsRestarts) {
  AddNode("n1");
  auto s = MakeService([](api::Service& s) {
    s.mutable_spec()->mutable_replicated()->set_replicas(1);
    auto* r = s.mutable_spec()->mutable_task()->mutable_restart();
    r->set_max_attempts(2);
    r->mutable_delay()->set_seconds(0);
  });
  Reconcile(s);
  for (int round = 0; round < 4; ++round) {
    auto runnable = RunnableTasks(s.id());
    ASSERT_EQ(runnable.size(), 1u);
    if (runnable[0]->status().state() == api::TASK_STATE_FAILED) break;
    Run(runnable[0], "n1", api::TASK_STATE_FAILED);
    Reconcile(s);
  }
  // The original plus two restarts, then no more.
  EXPECT_EQ(Tasks(s.id()).size(), 3u);
}

TEST_F(OrchestratorTest, GlobalServiceFollowsNodes) {
  AddNode("n1");
  AddNode("n2", {{"gpu", "yes"}});
  AddNode("n3");
  EditNode("n3", [](api::Node& n) {
    n.mutable_spec()->set_availability(api::NodeSpec::AVAILABILITY_PAUSE);
  });
  auto s = MakeService([](api::Service& s) { s.mutable_spec()->mutable_global(); });
  Reconcile(s);
  std::set<std::string> nodes;
  for (auto& t : RunnableTasks(s.id())) {
    nodes.insert(t->node_id());
    EXPECT_EQ(t->slot(), 0u);
  }
  EXPECT_EQ(nodes, (std::set<std::string>{"n1", "n2"}));  // paused n3 gets none

  AddNode("n4");
  Reconcile(s);
  EXPECT_EQ(RunnableTasks(s.id()).size(), 3u);

  EditNode("n1", [](api::Node& n) {
    n.mutable_spec()->set_availability(api::NodeSpec::AVAILABILITY_DRAIN);
  });
  Reconcile(s);
  nodes.clear();
  for (auto& t : RunnableTasks(s.id())) nodes.insert(t->node_id());
  EXPECT_EQ(nodes, (std::set<std::string>{"n2", "n4"}));
}

TEST_F(OrchestratorTest, GlobalServiceHonoursConstraints) {
  AddNode("n1");
  AddNode("n2", {{"gpu", "yes"}});
  auto s = MakeService([](api::Service& s) {
    s.mutable_spec()->mutable_global();
    s.mutable_spec()->mutable_task()->mutable_placement()->add_constraints("node.labels.gpu==yes");
  });
  Reconcile(s);
  auto tasks = RunnableTasks(s.id());
  ASSERT_EQ(tasks.size(), 1u);
  EXPECT_EQ(tasks[0]->node_id(), "n2");
  // The label goes away: the task is shut down.
  EditNode("n2", [](api::Node& n) {
    n.mutable_spec()->mutable_annotations()->mutable_labels()->clear();
  });
  Reconcile(s);
  EXPECT_TRUE(RunnableTasks(s.id()).empty());
}

TEST_F(OrchestratorTest, ReaperKeepsHistoryAndDeletesRemovedTasks) {
  AddNode("n1");
  auto s = MakeService([](api::Service& s) {
    s.mutable_spec()->mutable_replicated()->set_replicas(1);
    s.mutable_spec()->mutable_task()->mutable_restart()->mutable_delay()->set_seconds(0);
  });
  Reconcile(s);
  for (int i = 0; i < 5; ++i) {
    Run(RunnableTasks(s.id())[0], "n1", api::TASK_STATE_FAILED);
    Reconcile(s);
  }
  EXPECT_EQ(Tasks(s.id()).size(), 6u);
  ASSERT_TRUE(store_.Update([&](store::Tx& tx) { return ReapTasks(tx, s.id(), 2); }).ok());
  EXPECT_EQ(Tasks(s.id()).size(), 3u);  // 2 finished + the runnable one

  SetReplicas(s, 0);
  Reconcile(s);
  ASSERT_TRUE(store_.Update([&](store::Tx& tx) { return ReapTasks(tx, s.id(), 2); }).ok());
  // The removed task never reached a node: deleted at once; history stays.
  EXPECT_EQ(Tasks(s.id()).size(), 2u);
  EXPECT_TRUE(RunnableTasks(s.id()).empty());
}

TEST_F(OrchestratorTest, PlacementOnlyChangeIsDirtyOnlyWhereTheNodeNoLongerMatches) {
  AddNode("east", {{"zone", "east"}});
  AddNode("west", {{"zone", "west"}});
  auto s = Replicated(2);
  Reconcile(s);
  auto tasks = Tasks(s.id());
  Run(tasks[0], "east");
  Run(tasks[1], "west");
  tasks = {store_.View().Get<api::Task>(tasks[0]->id()),
           store_.View().Get<api::Task>(tasks[1]->id())};
  UpdateSpec(s.id(), [](api::ServiceSpec& spec) {
    spec.mutable_task()->mutable_placement()->add_constraints("node.labels.zone==east");
  });
  auto svc = *Service(s.id());
  auto on = [&](const TaskPtr& t) { return store_.View().Get<api::Node>(t->node_id()); };
  EXPECT_FALSE(TaskDirty(svc, *tasks[0], on(tasks[0]).get()));
  EXPECT_TRUE(TaskDirty(svc, *tasks[1], on(tasks[1]).get()));
  // Any other change makes every task dirty.
  UpdateSpec(s.id(), [](api::ServiceSpec& spec) {
    spec.mutable_task()->mutable_container()->set_image("app:2");
  });
  svc = *Service(s.id());
  EXPECT_TRUE(TaskDirty(svc, *tasks[0], on(tasks[0]).get()));
}

TEST_F(OrchestratorTest, ReplicatedJobNeverExceedsMaxConcurrent) {
  AddNode("n1");
  auto s = MakeService([](api::Service& s) {
    s.mutable_spec()->mutable_replicated_job()->set_max_concurrent(3);
    s.mutable_spec()->mutable_replicated_job()->set_total_completions(4);
  });
  Reconcile(s);
  auto first = Tasks(s.id());
  ASSERT_EQ(first.size(), 3u);
  for (auto& t : first) EXPECT_EQ(t->job_iteration(), 1u);
  for (auto& t : first) Run(t, "n1", api::TASK_STATE_COMPLETE);
  Reconcile(s);
  EXPECT_EQ(Tasks(s.id()).size(), 4u);  // one more to reach 4 completions
  Reconcile(s);
  EXPECT_EQ(Tasks(s.id()).size(), 4u);
}

TEST_F(OrchestratorTest, ReaperKeepsTheHistoryMaxAttemptsCounts) {
  AddNode("n1");
  auto s = MakeService([](api::Service& s) {
    s.mutable_spec()->mutable_replicated()->set_replicas(1);
    s.mutable_spec()->mutable_task()->mutable_restart()->mutable_delay()->set_seconds(0);
    s.mutable_spec()->mutable_task()->mutable_restart()->set_max_attempts(4);
  });
  Reconcile(s);
  for (int i = 0; i < 10; ++i) {
    auto runnable = RunnableTasks(s.id());
    if (runnable.empty() || runnable[0]->status().state() == api::TASK_STATE_FAILED) break;
    Run(runnable[0], "n1", api::TASK_STATE_FAILED);
    Reconcile(s);
    // Reaping with a retention of 2 must not let the slot restart more than 4 times.
    ASSERT_TRUE(store_.Update([&](store::Tx& tx) { return ReapTasks(tx, s.id(), 2); }).ok());
  }
  EXPECT_EQ(Tasks(s.id()).size(), 5u);  // the original and four restarts, all kept
}

}  // namespace
}  // namespace shoal::manager::orchestrator
