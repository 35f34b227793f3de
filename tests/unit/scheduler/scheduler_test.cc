#include "manager/scheduler/scheduler.h"

#include <map>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace shoal::manager::scheduler {
namespace {

using api::v1::Node;
using api::v1::NodeSpec;
using api::v1::NodeStatus;
using api::v1::Task;

Node MakeNode(const std::string& id, std::map<std::string, std::string> labels = {},
              int64_t cpus = 4'000'000'000, int64_t mem = int64_t{8} << 30) {
  Node n;
  n.set_id(id);
  n.mutable_status()->set_state(NodeStatus::STATE_READY);
  n.mutable_spec()->set_availability(NodeSpec::AVAILABILITY_ACTIVE);
  for (auto& [k, v] : labels) (*n.mutable_spec()->mutable_annotations()->mutable_labels())[k] = v;
  n.mutable_description()->mutable_resources()->set_nano_cpus(cpus);
  n.mutable_description()->mutable_resources()->set_memory_bytes(mem);
  n.mutable_description()->mutable_platform()->set_os("linux");
  n.mutable_description()->mutable_platform()->set_architecture("x86_64");
  return n;
}

class SchedulerTest : public ::testing::Test {
 protected:
  Task& NewTask(const std::string& service = "web", uint64_t version = 1) {
    tasks_.push_back(std::make_unique<Task>());
    Task& t = *tasks_.back();
    t.set_id(absl::StrCat("t", tasks_.size()));
    t.set_service_id(service);
    t.set_spec_version(version);
    t.mutable_status()->set_state(api::v1::TASK_STATE_PENDING);
    t.set_desired_state(api::v1::TASK_STATE_RUNNING);
    return t;
  }
  std::vector<Task*> NewTasks(int n, const std::function<void(Task&)>& edit = nullptr) {
    std::vector<Task*> out;
    for (int i = 0; i < n; ++i) {
      Task& t = NewTask();
      if (edit) edit(t);
      out.push_back(&t);
    }
    return out;
  }
  ScheduleResult Run(const std::vector<Task*>& ts) {
    std::vector<const Task*> c(ts.begin(), ts.end());
    return sched_.Schedule(c);
  }
  std::map<std::string, int> PerNode(const ScheduleResult& r) {
    std::map<std::string, int> m;
    for (const auto& d : r.assigned) m[d.node_id]++;
    return m;
  }

  base::FakeClock clock_;
  Scheduler sched_{clock_};
  std::vector<std::unique_ptr<Task>> tasks_;
};

TEST_F(SchedulerTest, SpreadsEvenlyOverNodes) {
  for (int i = 0; i < 10; ++i) sched_.UpsertNode(MakeNode(absl::StrCat("n", i)));
  auto r = Run(NewTasks(100));
  EXPECT_EQ(r.assigned.size(), 100u);
  EXPECT_TRUE(r.pending.empty());
  auto per = PerNode(r);
  ASSERT_EQ(per.size(), 10u);
  for (auto& [node, n] : per) EXPECT_EQ(n, 10) << node;
}

TEST_F(SchedulerTest, CountsExistingTasksOfTheService) {
  sched_.UpsertNode(MakeNode("a"));
  sched_.UpsertNode(MakeNode("b"));
  for (int i = 0; i < 4; ++i) {
    Task& t = NewTask();
    t.set_node_id("a");
    t.mutable_status()->set_state(api::v1::TASK_STATE_RUNNING);
    sched_.UpsertTask(t);
  }
  auto per = PerNode(Run(NewTasks(6)));
  EXPECT_EQ(per["a"], 1);
  EXPECT_EQ(per["b"], 5);
}

TEST_F(SchedulerTest, ReservationsLimitPlacementAndExplainPending) {
  sched_.UpsertNode(MakeNode("small", {}, 1'000'000'000, int64_t{1} << 30));
  auto r = Run(NewTasks(5, [](Task& t) {
    t.mutable_spec()->mutable_resources()->mutable_reservations()->set_memory_bytes(300 << 20);
  }));
  EXPECT_EQ(r.assigned.size(), 3u);  // 3 x 300 MiB fit in 1 GiB, the 4th does not
  ASSERT_EQ(r.pending.size(), 2u);
  EXPECT_EQ(r.pending[0].explanation, "no suitable node (insufficient resources on 1 node)");
  // Freeing one task makes room for one more.
  sched_.RemoveTask(r.assigned[0].task_id);
  auto again = Run({tasks_[3].get()});
  EXPECT_EQ(again.assigned.size(), 1u);
}

TEST_F(SchedulerTest, UnavailableNodesAreSkippedWithReasons) {
  Node drained = MakeNode("drained");
  drained.mutable_spec()->set_availability(NodeSpec::AVAILABILITY_DRAIN);
  Node down = MakeNode("down");
  down.mutable_status()->set_state(NodeStatus::STATE_DOWN);
  Node other = MakeNode("other", {{"zone", "west"}});
  sched_.UpsertNode(drained);
  sched_.UpsertNode(down);
  sched_.UpsertNode(other);
  auto r = Run(NewTasks(1, [](Task& t) {
    t.mutable_spec()->mutable_placement()->add_constraints("node.labels.zone==east");
  }));
  ASSERT_EQ(r.pending.size(), 1u);
  EXPECT_EQ(r.pending[0].explanation,
            "no suitable node (not available for new tasks on 2 nodes; scheduling constraints "
            "not satisfied on 1 node)");
}

TEST_F(SchedulerTest, ConstraintsSelectNodes) {
  sched_.UpsertNode(MakeNode("e1", {{"zone", "east"}}));
  sched_.UpsertNode(MakeNode("e2", {{"zone", "east"}}));
  sched_.UpsertNode(MakeNode("w1", {{"zone", "west"}}));
  auto per = PerNode(Run(NewTasks(4, [](Task& t) {
    t.mutable_spec()->mutable_placement()->add_constraints("node.labels.zone==east");
  })));
  EXPECT_EQ(per["e1"], 2);
  EXPECT_EQ(per["e2"], 2);
  EXPECT_EQ(per.count("w1"), 0u);
}

TEST_F(SchedulerTest, InvalidConstraintLeavesTasksPendingWithTheError) {
  sched_.UpsertNode(MakeNode("n"));
  auto r = Run(NewTasks(2, [](Task& t) {
    t.mutable_spec()->mutable_placement()->add_constraints("node.colour==red");
  }));
  ASSERT_EQ(r.pending.size(), 2u);
  EXPECT_NE(r.pending[0].explanation.find("placement.constraints[0]"), std::string::npos)
      << r.pending[0].explanation;
}

TEST_F(SchedulerTest, HostPortsAreExclusivePerNode) {
  sched_.UpsertNode(MakeNode("a"));
  sched_.UpsertNode(MakeNode("b"));
  auto r = Run(NewTasks(3, [](Task& t) {
    auto* p = t.mutable_endpoint()->add_ports();
    p->set_publish_mode(api::v1::PortConfig::PUBLISH_MODE_HOST);
    p->set_published_port(8080);
    p->set_target_port(80);
  }));
  EXPECT_EQ(r.assigned.size(), 2u);
  auto per = PerNode(r);
  EXPECT_EQ(per["a"], 1);
  EXPECT_EQ(per["b"], 1);
  ASSERT_EQ(r.pending.size(), 1u);
  EXPECT_NE(r.pending[0].explanation.find("host-mode port already in use on 2 nodes"),
            std::string::npos);
}

TEST_F(SchedulerTest, MaxReplicasPerNode) {
  sched_.UpsertNode(MakeNode("a"));
  sched_.UpsertNode(MakeNode("b"));
  auto r = Run(NewTasks(5, [](Task& t) { t.mutable_spec()->mutable_placement()->set_max_replicas(2); }));
  EXPECT_EQ(r.assigned.size(), 4u);
  ASSERT_EQ(r.pending.size(), 1u);
  EXPECT_NE(r.pending[0].explanation.find("max replicas per node reached on 2 nodes"),
            std::string::npos);
}

TEST_F(SchedulerTest, SpreadPreferenceSplitsOverLabelValuesNotNodes) {
  // Rack a has one node, rack b three: a spread over racks gives each rack half.
  sched_.UpsertNode(MakeNode("a1", {{"rack", "a"}}));
  for (int i = 1; i <= 3; ++i) sched_.UpsertNode(MakeNode(absl::StrCat("b", i), {{"rack", "b"}}));
  auto per = PerNode(Run(NewTasks(6, [](Task& t) {
    t.mutable_spec()->mutable_placement()->add_preferences()->set_spread_descriptor(
        "node.labels.rack");
  })));
  EXPECT_EQ(per["a1"], 3);
  EXPECT_EQ(per["b1"] + per["b2"] + per["b3"], 3);
  EXPECT_EQ(per["b1"], 1);
}

TEST_F(SchedulerTest, UnlabelledNodesFormTheirOwnGroup) {
  sched_.UpsertNode(MakeNode("x", {{"rack", "r1"}}));
  sched_.UpsertNode(MakeNode("y"));
  sched_.UpsertNode(MakeNode("z"));
  auto per = PerNode(Run(NewTasks(4, [](Task& t) {
    t.mutable_spec()->mutable_placement()->add_preferences()->set_spread_descriptor(
        "node.labels.rack");
  })));
  EXPECT_EQ(per["x"], 2);
  EXPECT_EQ(per["y"] + per["z"], 2);
}

TEST_F(SchedulerTest, HierarchicalPreferences) {
  // dc1: rack r1 (2 nodes), rack r2 (1 node); dc2: rack r3 (1 node).
  sched_.UpsertNode(MakeNode("d1r1a", {{"dc", "1"}, {"rack", "r1"}}));
  sched_.UpsertNode(MakeNode("d1r1b", {{"dc", "1"}, {"rack", "r1"}}));
  sched_.UpsertNode(MakeNode("d1r2", {{"dc", "1"}, {"rack", "r2"}}));
  sched_.UpsertNode(MakeNode("d2r3", {{"dc", "2"}, {"rack", "r3"}}));
  auto per = PerNode(Run(NewTasks(8, [](Task& t) {
    auto* pl = t.mutable_spec()->mutable_placement();
    pl->add_preferences()->set_spread_descriptor("node.labels.dc");
    pl->add_preferences()->set_spread_descriptor("node.labels.rack");
  })));
  EXPECT_EQ(per["d2r3"], 4);
  EXPECT_EQ(per["d1r2"], 2);
  EXPECT_EQ(per["d1r1a"] + per["d1r1b"], 2);
}

TEST_F(SchedulerTest, FullBranchSharesSpillToOthers) {
  // Rack a can take only one task (memory); the rest go to rack b.
  sched_.UpsertNode(MakeNode("a1", {{"rack", "a"}}, 4'000'000'000, 150 << 20));
  sched_.UpsertNode(MakeNode("b1", {{"rack", "b"}}));
  auto r = Run(NewTasks(4, [](Task& t) {
    t.mutable_spec()->mutable_resources()->mutable_reservations()->set_memory_bytes(100 << 20);
    t.mutable_spec()->mutable_placement()->add_preferences()->set_spread_descriptor(
        "node.labels.rack");
  }));
  EXPECT_EQ(r.assigned.size(), 4u);
  auto per = PerNode(r);
  EXPECT_EQ(per["a1"], 1);
  EXPECT_EQ(per["b1"], 3);
}

TEST_F(SchedulerTest, NodesWithRecentFailuresSortLast) {
  sched_.UpsertNode(MakeNode("flaky"));
  sched_.UpsertNode(MakeNode("good"));
  for (int i = 0; i < kMaxFailures; ++i) sched_.RecordFailure("flaky", "web", 1);
  auto per = PerNode(Run(NewTasks(1)));
  EXPECT_EQ(per["good"], 1);
  // The failures expire after the window.
  clock_.Advance(kFailureWindow + absl::Seconds(1));
  Task& t = NewTask();
  auto per2 = PerNode(Run({&t}));
  EXPECT_EQ(per2["flaky"], 1);
}

TEST_F(SchedulerTest, PlatformFilterNormalizesArchitectures) {
  sched_.UpsertNode(MakeNode("x86"));
  Node arm = MakeNode("arm");
  arm.mutable_description()->mutable_platform()->set_architecture("aarch64");
  sched_.UpsertNode(arm);
  auto per = PerNode(Run(NewTasks(3, [](Task& t) {
    auto* p = t.mutable_spec()->mutable_placement()->add_platforms();
    p->set_architecture("arm64");
    p->set_os("linux");
  })));
  EXPECT_EQ(per["arm"], 3);
}

TEST_F(SchedulerTest, PreassignedTasksAreValidatedOnly) {
  sched_.UpsertNode(MakeNode("a", {{"zone", "east"}}));
  sched_.UpsertNode(MakeNode("b", {{"zone", "west"}}));
  auto ts = NewTasks(2, [](Task& t) {
    t.mutable_spec()->mutable_placement()->add_constraints("node.labels.zone==east");
  });
  ts[0]->set_node_id("a");
  ts[1]->set_node_id("b");
  auto r = Run(ts);
  ASSERT_EQ(r.assigned.size(), 1u);
  EXPECT_EQ(r.assigned[0].node_id, "a");
  ASSERT_EQ(r.pending.size(), 1u);
  EXPECT_EQ(r.pending[0].task_id, ts[1]->id());
}

TEST_F(SchedulerTest, NoNodesSaysSo) {
  auto r = Run(NewTasks(1));
  ASSERT_EQ(r.pending.size(), 1u);
  EXPECT_EQ(r.pending[0].explanation, "no suitable node (no nodes in the cluster)");
}

TEST_F(SchedulerTest, NodeCapacityUpdateKeepsAccounting) {
  sched_.UpsertNode(MakeNode("a", {}, 1'000'000'000, 1 << 30));
  auto r = Run(NewTasks(2, [](Task& t) {
    t.mutable_spec()->mutable_resources()->mutable_reservations()->set_memory_bytes(400 << 20);
  }));
  ASSERT_EQ(r.assigned.size(), 2u);
  sched_.UpsertNode(MakeNode("a", {}, 1'000'000'000, int64_t{2} << 30));  // grew
  EXPECT_EQ(sched_.node("a")->available_memory_bytes, (int64_t{2} << 30) - (800 << 20));
  EXPECT_EQ(sched_.node("a")->active_tasks, 2);
}

}  // namespace
}  // namespace shoal::manager::scheduler
