// The leader components that run in a LeaderLoop (loop.h).
//
//   OrchestratorComponent  constraint enforcement on updated nodes; replicated/global service
//                          and job reconciliation of services whose service, tasks or nodes
//                          changed; rolling updates and rollbacks (progress in the store);
//                          restart-delayed starts; task history reaping
//   AllocatorComponent     networks, service endpoints, task addresses; NEW -> PENDING
//                          (allocator_component.h)
//   SchedulerComponent     PENDING -> ASSIGNED through manager/scheduler, with the reason a
//                          task cannot be placed written to status.err
//
// Each is level-triggered: Init rebuilds from a full view, so a new leader (or a re-initialised
// loop) converges without any state from its predecessor.
#pragma once

#include <map>
#include <memory>
#include <set>
#include <string>

#include "base/clock.h"
#include "base/random.h"
#include "manager/leader/loop.h"
#include "manager/scheduler/scheduler.h"

namespace shoal::manager::leader {

class OrchestratorComponent final : public Component {
 public:
  OrchestratorComponent(base::Clock& clock, base::Random& random, int64_t history_retention = 5)
      : clock_(clock), random_(random), retention_(history_retention) {}
  const char* name() const override { return "orchestrator"; }
  void Init(const store::ReadView& view) override;
  void Observe(const store::Commit& commit) override;
  absl::Status Step(store::MemoryStore& store, absl::Time now) override;

 private:
  base::Clock& clock_;
  base::Random& random_;
  int64_t retention_;
  std::set<std::string> dirty_;
  std::set<std::string> deleted_;
  std::set<std::string> nodes_;     // updated nodes: constraint enforcement
  std::set<std::string> updating_;  // services with a rolling update in flight
  bool all_dirty_ = false;
};

class SchedulerComponent final : public Component {
 public:
  explicit SchedulerComponent(base::Clock& clock) : clock_(clock) {}
  const char* name() const override { return "scheduler"; }
  void Init(const store::ReadView& view) override;
  void Observe(const store::Commit& commit) override;
  absl::Status Step(store::MemoryStore& store, absl::Time now) override;

 private:
  void ObserveTask(const std::shared_ptr<const api::v1::Task>& t);
  base::Clock& clock_;
  std::unique_ptr<scheduler::Scheduler> scheduler_;
  std::map<std::string, std::shared_ptr<const api::v1::Task>> pending_;
  bool changed_ = true;  // something relevant changed since the last Schedule
};

}  // namespace shoal::manager::leader
