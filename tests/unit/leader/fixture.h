// Shared fixtures for the orchestrator and leader tests.
//
//   StoreFixture   a replicated store on a FakeProposer with a fake clock, and the writes the
//                  control API and the agents would make (nodes, services, spec updates, task
//                  states)
//   LeaderFixture  adds a leader (orchestrator, allocator, scheduler in a LeaderLoop) and
//                  simulated agents (manager/leader/fake_agents.h); NewLeader() replaces the
//                  leader by a fresh one over the same store, as after a failover
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "manager/leader/allocator_component.h"
#include "manager/leader/components.h"
#include "manager/leader/fake_agents.h"
#include "manager/orchestrator/tasks.h"
#include "manager/store/fake_proposer.h"
#include "manager/store/store.h"

namespace shoal::manager::fixtures {

namespace api = ::shoal::api::v1;
using TaskPtr = std::shared_ptr<const api::Task>;

class StoreFixture : public ::testing::Test {
 protected:
  StoreFixture() { proposer_.Attach(&store_); }

  void AddNode(const std::string& id, std::map<std::string, std::string> labels = {}) {
    api::Node n;
    n.set_id(id);
    n.mutable_status()->set_state(api::NodeStatus::STATE_READY);
    n.mutable_description()->set_hostname(id);
    for (auto& [k, v] : labels) (*n.mutable_spec()->mutable_annotations()->mutable_labels())[k] = v;
    ASSERT_TRUE(store_.Update([&](store::Tx& tx) { return tx.Create(n); }).ok());
  }
  void EditNode(const std::string& id, const std::function<void(api::Node&)>& edit) {
    auto r = store_.Update([&](store::Tx& tx) {
      api::Node n = *tx.Get<api::Node>(id);
      edit(n);
      return tx.Update(n);
    });
    ASSERT_TRUE(r.ok()) << r.status();
  }
  // A service named "web<N>" with id "svc<N>", spec version 1.
  api::Service MakeService(const std::function<void(api::Service&)>& edit) {
    api::Service s;
    s.set_id(absl::StrCat("svc", ++services_));
    s.mutable_spec()->mutable_annotations()->set_name(absl::StrCat("web", services_));
    s.mutable_spec()->mutable_task()->mutable_container()->set_image("app:1");
    s.set_spec_version(1);
    edit(s);
    EXPECT_TRUE(store_.Update([&](store::Tx& tx) { return tx.Create(s); }).ok());
    return *store_.View().Get<api::Service>(s.id());
  }
  api::Service Replicated(uint64_t n) {
    return MakeService(
        [&](api::Service& s) { s.mutable_spec()->mutable_replicated()->set_replicas(n); });
  }
  // A spec update as the control API makes it: previous spec kept, spec version bumped.
  void UpdateSpec(const std::string& id, const std::function<void(api::ServiceSpec&)>& edit) {
    auto r = store_.Update([&](store::Tx& tx) {
      api::Service s = *tx.Get<api::Service>(id);
      *s.mutable_previous_spec() = s.spec();
      s.set_previous_spec_version(s.spec_version());
      edit(*s.mutable_spec());
      s.set_spec_version(s.spec_version() + 1);
      return tx.Update(s);
    });
    ASSERT_TRUE(r.ok()) << r.status();
  }
  void SetReplicas(api::Service& s, uint64_t n) {
    UpdateSpec(s.id(), [&](api::ServiceSpec& spec) { spec.mutable_replicated()->set_replicas(n); });
    s = *store_.View().Get<api::Service>(s.id());
  }
  std::shared_ptr<const api::Service> Service(const std::string& id) {
    return store_.View().Get<api::Service>(id);
  }
  std::vector<TaskPtr> Tasks(const std::string& service_id) {
    return store_.View().Find<api::Task>(store::ByServiceId(service_id));
  }
  std::vector<TaskPtr> RunnableTasks(const std::string& service_id) {
    std::vector<TaskPtr> out;
    for (auto& t : Tasks(service_id)) {
      if (orchestrator::Runnable(*t)) out.push_back(t);
    }
    return out;
  }
  // What the scheduler and an agent would write: place the task and report a state.
  void SetTask(const TaskPtr& t, const std::string& node,
               api::TaskState state = api::TASK_STATE_RUNNING) {
    auto r = store_.Update([&](store::Tx& tx) {
      api::Task copy = *tx.Get<api::Task>(t->id());
      copy.set_node_id(node);
      copy.mutable_status()->set_state(state);
      return tx.Update(copy);
    });
    ASSERT_TRUE(r.ok()) << r.status();
  }

  store::FakeProposer proposer_;
  base::FakeClock clock_;
  base::FakeRandom random_{7};
  store::MemoryStore store_{&proposer_, &clock_, &random_};
  int services_ = 0;
};

class LeaderFixture : public StoreFixture {
 protected:
  struct Leader {
    Leader(store::MemoryStore& store, base::FakeClock& clock, base::Random& random,
           leader::FakeAgents& agents)
        : orchestrator(clock, random),
          scheduler(clock),
          loop(store, clock, {&orchestrator, &allocator, &scheduler, &agents}) {}
    leader::OrchestratorComponent orchestrator;
    leader::AllocatorComponent allocator;
    leader::SchedulerComponent scheduler;
    leader::LeaderLoop loop;
  };

  LeaderFixture() { NewLeader(); }

  // The previous leader is gone; a new one starts from the store alone.
  void NewLeader() {
    leader_.reset();
    leader_ = std::make_unique<Leader>(store_, clock_, random_, agents_);
  }
  // Runs loop rounds until `done` holds (or a bound on rounds is hit); fake time advances a
  // tick per round so delays elapse. `each` runs after every round (observations).
  bool RunUntil(const std::function<bool()>& done, int max_rounds = 1000,
                const std::function<void()>& each = nullptr) {
    for (int i = 0; i < max_rounds; ++i) {
      if (done()) return true;
      (void)leader_->loop.RunOnce(absl::ZeroDuration());
      if (each) each();
      clock_.Advance(absl::Milliseconds(100));
    }
    return done();
  }
  // Running tasks wanted running, per node (optionally only those with `image`).
  std::map<std::string, int> RunningPerNode(const std::string& service_id,
                                            const std::string& image = "") {
    std::map<std::string, int> m;
    for (const auto& t : Tasks(service_id)) {
      if (t->desired_state() == api::TASK_STATE_RUNNING &&
          t->status().state() == api::TASK_STATE_RUNNING &&
          (image.empty() || t->spec().container().image() == image)) {
        m[t->node_id()]++;
      }
    }
    return m;
  }
  int Running(const std::string& service_id, const std::string& image = "") {
    int n = 0;
    for (auto& [_, c] : RunningPerNode(service_id, image)) n += c;
    return n;
  }

  leader::FakeAgents agents_;
  std::unique_ptr<Leader> leader_;
};

}  // namespace shoal::manager::fixtures
