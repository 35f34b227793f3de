// Jobs, the constraint enforcer and node availability through the full leader loop with
// simulated agents.
#include <map>
#include <set>

#include "gtest/gtest.h"
#include "tests/unit/leader/fixture.h"

namespace shoal::manager::leader {
namespace {

namespace api = ::shoal::api::v1;

class JobsTest : public fixtures::LeaderFixture {
 protected:
  void SetUp() override {
    agents_.outcome = [](const api::Task& t) {
      if (t.spec().container().image() == "job:bad") return FakeAgents::Outcome::kFail;
      return t.service_annotations().name().rfind("job", 0) == 0 ? FakeAgents::Outcome::kComplete
                                                                 : FakeAgents::Outcome::kRun;
    };
  }
  int Completed(const std::string& id, uint64_t iteration) {
    int n = 0;
    for (const auto& t : Tasks(id)) {
      n += t->job_iteration() == iteration && t->status().state() == api::TASK_STATE_COMPLETE;
    }
    return n;
  }
  int Active(const std::string& id) {
    int n = 0;
    for (const auto& t : Tasks(id)) {
      n += t->status().state() >= api::TASK_STATE_ASSIGNED &&
           t->status().state() <= api::TASK_STATE_RUNNING;
    }
    return n;
  }
  api::Service Job(const std::function<void(api::Service&)>& edit) {
    return MakeService([&](api::Service& s) {
      s.mutable_spec()->mutable_annotations()->set_name(absl::StrCat("job", services_));
      s.mutable_spec()->mutable_task()->mutable_restart()->mutable_delay()->set_seconds(0);
      edit(s);
    });
  }
};

TEST_F(JobsTest, ReplicatedJobRunsToTheRightNumberOfCompletions) {
  for (const char* node : {"n1", "n2", "n3"}) AddNode(node);
  auto job = Job([](api::Service& s) {
    s.mutable_spec()->mutable_replicated_job()->set_max_concurrent(2);
    s.mutable_spec()->mutable_replicated_job()->set_total_completions(5);
  });
  int most_active = 0;
  ASSERT_TRUE(RunUntil([&] { return Completed(job.id(), 1) == 5 && Active(job.id()) == 0; }, 1000,
                       [&] { most_active = std::max(most_active, Active(job.id())); }));
  EXPECT_LE(most_active, 2);
  // Nothing more is started once the job is complete.
  for (int i = 0; i < 50; ++i) (void)leader_->loop.RunOnce(absl::ZeroDuration());
  EXPECT_EQ(Tasks(job.id()).size(), 5u);
  std::set<uint64_t> slots;
  for (const auto& t : Tasks(job.id())) slots.insert(t->slot());
  EXPECT_EQ(slots.size(), 5u);

  // Updating the job (e.g. `--force`) runs it again as a new iteration.
  UpdateSpec(job.id(), [](api::ServiceSpec& spec) { spec.mutable_task()->set_force_update(1); });
  ASSERT_TRUE(RunUntil([&] { return Completed(job.id(), 2) == 5 && Active(job.id()) == 0; }));
  EXPECT_EQ(Completed(job.id(), 1), 0);  // the previous iteration's tasks were removed
}

TEST_F(JobsTest, FailedJobTaskRestartsUntilAttemptsRunOut) {
  AddNode("n1");
  auto job = Job([](api::Service& s) {
    s.mutable_spec()->mutable_task()->mutable_container()->set_image("job:bad");
    s.mutable_spec()->mutable_replicated_job()->set_total_completions(1);
    s.mutable_spec()->mutable_task()->mutable_restart()->set_max_attempts(2);
  });
  ASSERT_TRUE(RunUntil([&] {
    auto tasks = Tasks(job.id());
    return tasks.size() == 3u && Active(job.id()) == 0;
  }));
  for (int i = 0; i < 50; ++i) (void)leader_->loop.RunOnce(absl::ZeroDuration());
  EXPECT_EQ(Tasks(job.id()).size(), 3u);  // first run + two restarts, then the job gives up
  EXPECT_EQ(Completed(job.id(), 1), 0);
}

TEST_F(JobsTest, GlobalJobCompletesOncePerNodeAndFollowsNewNodes) {
  for (const char* node : {"n1", "n2", "n3"}) AddNode(node);
  auto job = Job([](api::Service& s) { s.mutable_spec()->mutable_global_job(); });
  ASSERT_TRUE(RunUntil([&] { return Completed(job.id(), 1) == 3 && Active(job.id()) == 0; }));
  AddNode("n4");
  ASSERT_TRUE(RunUntil([&] { return Completed(job.id(), 1) == 4 && Active(job.id()) == 0; }));
  std::set<std::string> nodes;
  for (const auto& t : Tasks(job.id())) nodes.insert(t->node_id());
  EXPECT_EQ(nodes.size(), 4u);
  EXPECT_EQ(Tasks(job.id()).size(), 4u);
}

TEST_F(JobsTest, DrainMovesTasksAndPauseKeepsThem) {
  for (const char* node : {"a", "b", "c"}) AddNode(node);
  auto svc = MakeService([](api::Service& s) {
               s.mutable_spec()->mutable_replicated()->set_replicas(6);
             }).id();
  ASSERT_TRUE(RunUntil([&] { return Running(svc) == 6; }));
  EditNode("c", [](api::Node& n) {
    n.mutable_spec()->set_availability(api::NodeSpec::AVAILABILITY_PAUSE);
  });
  auto before = RunningPerNode(svc);
  for (int i = 0; i < 20; ++i) (void)leader_->loop.RunOnce(absl::ZeroDuration());
  EXPECT_EQ(RunningPerNode(svc), before);  // paused: keeps its tasks
  EditNode("a", [](api::Node& n) {
    n.mutable_spec()->set_availability(api::NodeSpec::AVAILABILITY_DRAIN);
  });
  ASSERT_TRUE(RunUntil([&] { return Running(svc) == 6 && RunningPerNode(svc).count("a") == 0; }));
  // The paused node got no new task: everything from "a" went to "b".
  EXPECT_EQ(RunningPerNode(svc)["c"], before["c"]);
  EXPECT_EQ(RunningPerNode(svc)["b"], 6 - before["c"]);
}

TEST_F(JobsTest, ConstraintEnforcerMovesTasksOffANodeThatNoLongerMatches) {
  AddNode("a", {{"zone", "east"}});
  AddNode("b", {{"zone", "east"}});
  AddNode("c", {{"zone", "west"}});
  auto svc = MakeService([](api::Service& s) {
               s.mutable_spec()->mutable_replicated()->set_replicas(4);
               s.mutable_spec()->mutable_task()->mutable_placement()->add_constraints(
                   "node.labels.zone==east");
             }).id();
  ASSERT_TRUE(RunUntil([&] { return Running(svc) == 4; }));
  EXPECT_EQ(RunningPerNode(svc).count("c"), 0u);
  auto on_a = store_.View().Find<api::Task>(store::ByNodeId("a"));
  ASSERT_FALSE(on_a.empty());
  EditNode("a", [](api::Node& n) {
    (*n.mutable_spec()->mutable_annotations()->mutable_labels())["zone"] = "west";
  });
  ASSERT_TRUE(RunUntil([&] {
    return RunningPerNode(svc) == std::map<std::string, int>{{"b", 4}};
  }));
  auto evicted = store_.View().Get<api::Task>(on_a[0]->id());
  EXPECT_EQ(evicted->status().state(), api::TASK_STATE_SHUTDOWN);
  EXPECT_NE(evicted->status().err().find("no longer satisfies the placement constraint "
                                         "node.labels.zone==east"),
            std::string::npos)
      << evicted->status().err();
}

TEST_F(JobsTest, ConstraintEnforcerFreesReservationsWhenANodeShrinks) {
  auto add = [&](const std::string& id, int64_t mem) {
    AddNode(id);
    EditNode(id, [&](api::Node& n) {
      n.mutable_description()->mutable_resources()->set_memory_bytes(mem);
    });
  };
  add("big", 1 << 30);
  add("spare", 1 << 30);
  EditNode("spare", [](api::Node& n) {
    n.mutable_spec()->set_availability(api::NodeSpec::AVAILABILITY_PAUSE);
  });
  auto svc = MakeService([](api::Service& s) {
               s.mutable_spec()->mutable_replicated()->set_replicas(3);
               s.mutable_spec()
                   ->mutable_task()
                   ->mutable_resources()
                   ->mutable_reservations()
                   ->set_memory_bytes(300 << 20);
             }).id();
  ASSERT_TRUE(RunUntil([&] { return RunningPerNode(svc)["big"] == 3; }));
  // The node now reports half the memory: one task fits, two must go.
  EditNode("spare", [](api::Node& n) {
    n.mutable_spec()->set_availability(api::NodeSpec::AVAILABILITY_ACTIVE);
  });
  EditNode("big", [](api::Node& n) {
    n.mutable_description()->mutable_resources()->set_memory_bytes(512 << 20);
  });
  ASSERT_TRUE(RunUntil([&] {
    auto per = RunningPerNode(svc);
    return per["big"] == 1 && per["spare"] == 2;
  }));
}

}  // namespace
}  // namespace shoal::manager::leader
