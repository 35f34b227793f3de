// Rolling updates create each slot's replacement exactly once, also across a leader change
// (the orchestration pass is stateless: a new leader is the next call over the same store).
//
// The race behind the extra task seen in tests/unit/manager_node (RollingUpdateResumes...):
// raft elects the new leader a moment before its dispatcher accepts sessions; an agent whose
// first session attempt fell into that window and never retried had its node marked DOWN when
// the leader-change grace ran out. A stop-first slot in flight on that node (old task told to
// stop, new task placed there and waiting, desired READY) then loses its new task to the
// node-loss replacement: one more task of the new spec, created by the restart path, not by
// the updater. Here the same sequence runs step by step on a fake clock: the updater must
// never add a task of its own to that slot, and every other slot gets exactly one.
#include <functional>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "manager/orchestrator/reconcile.h"
#include "manager/orchestrator/update.h"
#include "tests/unit/leader/fixture.h"

namespace shoal::manager::orchestrator {
namespace {

using State = api::UpdateStatus;

class UpdateExactlyOnceTest : public fixtures::StoreFixture {
 protected:
  // One orchestration pass for the service, as the leader's OrchestratorComponent runs it:
  // reconcile, then the update step, in one transaction.
  void Pass(const std::string& id) {
    Env env{clock_, random_};
    auto r = store_.Update([&](store::Tx& tx) -> absl::Status {
      auto svc = tx.Get<api::Service>(id);
      if (auto s = ReconcileReplicated(tx, *svc, env); !s.ok()) return s;
      return RollingUpdate(tx, id, env);
    });
    ASSERT_TRUE(r.ok()) << r.status();
  }
  // What the scheduler and live agents do between passes: unplaced tasks go to the first usable
  // node, tasks wanted RUNNING run, tasks wanted stopped stop — except on `deaf` nodes, whose
  // agent has no session and reports nothing.
  void World(const std::set<std::string>& deaf = {}) {
    for (const auto& t : Tasks(svc_)) {
      if (t->node_id().empty() && Runnable(*t)) {
        for (const char* n : {"n1", "n2", "n3", "n4"}) {
          if (NodeUsable(store_.View().Get<api::Node>(n).get())) {
            SetTask(t, n, api::TASK_STATE_ASSIGNED);
            break;
          }
        }
        continue;
      }
      if (t->node_id().empty() || deaf.contains(t->node_id())) continue;
      if (t->desired_state() == api::TASK_STATE_RUNNING &&
          t->status().state() < api::TASK_STATE_RUNNING) {
        SetTask(t, t->node_id(), api::TASK_STATE_RUNNING);
      } else if (t->desired_state() > api::TASK_STATE_RUNNING && !Finished(*t)) {
        SetTask(t, t->node_id(), api::TASK_STATE_SHUTDOWN);
      }
    }
  }
  // Tasks of spec version `v` per slot.
  std::map<uint64_t, int> PerSlot(uint64_t v) {
    std::map<uint64_t, int> m;
    for (const auto& t : Tasks(svc_)) {
      if (t->spec_version() == v) m[t->slot()]++;
    }
    return m;
  }
  State::State UpdateState() { return Service(svc_)->update_status().state(); }
  // Nodes n1..n4; `replicas` tasks of app:1 RUNNING in slots 1.. on n1.. in order; then the
  // spec moves to app:2, updated one slot at a time with the settings `configure` adds.
  void RunningThenUpdated(int replicas, const std::function<void(api::UpdateConfig&)>& configure) {
    for (const char* n : {"n1", "n2", "n3", "n4"}) AddNode(n);
    svc_ = MakeService([&](api::Service& s) {
             s.mutable_spec()->mutable_replicated()->set_replicas(replicas);
             s.mutable_spec()->mutable_update()->set_parallelism(1);
             configure(*s.mutable_spec()->mutable_update());
           }).id();
    Pass(svc_);
    int i = 0;
    for (const auto& t : Tasks(svc_)) SetTask(t, absl::StrCat("n", ++i), api::TASK_STATE_RUNNING);
    UpdateSpec(svc_, [](api::ServiceSpec& spec) {
      spec.mutable_task()->mutable_container()->set_image("app:2");
    });
  }

  std::string svc_;
};

TEST_F(UpdateExactlyOnceTest, InFlightSlotOnANodeThatGoesDownIsReplacedOnceNotTwice) {
  // app:1 runs in slots 1..3 on n1..n3 (n4 stays free for replacements).
  RunningThenUpdated(3, [](api::UpdateConfig& u) { u.mutable_monitor()->set_seconds(1); });
  Pass(svc_);  // slot 1 starts: its old task told to stop, the new one waits (desired READY)
  ASSERT_EQ(UpdateState(), State::STATE_UPDATING);
  ASSERT_EQ(PerSlot(2), (std::map<uint64_t, int>{{1, 1}}));
  World({"n1"});  // the new task is placed on n1; n1's agent never answers again
  std::string waiting;
  for (const auto& t : Tasks(svc_)) {
    if (t->spec_version() == 2) waiting = t->id();
  }
  auto w = store_.View().Get<api::Task>(waiting);
  ASSERT_EQ(w->node_id(), "n1");
  ASSERT_EQ(w->desired_state(), api::TASK_STATE_READY);

  // The leader changes (nothing in memory survives: the next passes are the new leader's), and
  // n1 has no session when the grace runs out: DOWN.
  Pass(svc_);
  EditNode("n1", [](api::Node& n) { n.mutable_status()->set_state(api::NodeStatus::STATE_DOWN); });
  Pass(svc_);
  // Slot 1: the waiting task is shut down and replaced once, at once, by the node-loss path.
  EXPECT_EQ(store_.View().Get<api::Task>(waiting)->desired_state(), api::TASK_STATE_SHUTDOWN);
  EXPECT_EQ(PerSlot(2)[1], 2);
  for (const auto& e : Service(svc_)->update_status().slots()) {
    EXPECT_NE(e.new_task_id(), waiting) << "the updater still follows the abandoned task";
  }
  // Repeated passes before anything else happens create nothing more.
  for (int k = 0; k < 3; ++k) Pass(svc_);
  EXPECT_EQ(PerSlot(2)[1], 2);

  // The rest of the update: every other slot is replaced exactly once.
  for (int round = 0; round < 100 && UpdateState() == State::STATE_UPDATING; ++round) {
    World({"n1"});
    clock_.Advance(absl::Milliseconds(500));
    Pass(svc_);
  }
  EXPECT_EQ(UpdateState(), State::STATE_COMPLETED) << Service(svc_)->update_status().message();
  EXPECT_EQ(PerSlot(2), (std::map<uint64_t, int>{{1, 2}, {2, 1}, {3, 1}}));
  int running_v2 = 0;
  for (const auto& t : Tasks(svc_)) {
    running_v2 += t->spec_version() == 2 && t->desired_state() == api::TASK_STATE_RUNNING &&
                  t->status().state() == api::TASK_STATE_RUNNING;
  }
  EXPECT_EQ(running_v2, 3);
}

TEST_F(UpdateExactlyOnceTest, EveryPassIsANewLeaderAndEachSlotIsReplacedOnce) {
  RunningThenUpdated(4, [](api::UpdateConfig& u) {
    u.mutable_delay()->set_seconds(1);
    u.mutable_monitor()->set_nanos(200000000);
  });
  // Agents act between every pass, and several passes may run without any agent progress
  // (a leader change replays the full reconcile): neither creates a second task for a slot.
  for (int round = 0; round < 200 && UpdateState() != State::STATE_COMPLETED; ++round) {
    Pass(svc_);
    Pass(svc_);
    if (round % 3 != 2) World();
    clock_.Advance(absl::Milliseconds(300));
  }
  EXPECT_EQ(UpdateState(), State::STATE_COMPLETED);
  EXPECT_EQ(PerSlot(2), (std::map<uint64_t, int>{{1, 1}, {2, 1}, {3, 1}, {4, 1}}));
}

}  // namespace
}  // namespace shoal::manager::orchestrator
