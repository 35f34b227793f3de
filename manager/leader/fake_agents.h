// FakeAgents: a leader-loop Component standing in for the agents of every node, for tests and
// benchmarks of the manager without real workers. It keeps the agent's side of the task
// contract (agent/, swarmkit.md §5): only tasks placed on a live node move; observed states
// only move forward; a task assigned with desired READY is prepared and waits (READY); desired
// RUNNING starts it; desired SHUTDOWN or later stops it (SHUTDOWN).
//
// Behaviour per task, chosen by `outcome` (default: every task runs):
//   kRun       reaches RUNNING and stays there
//   kFail      fails on start (FAILED, as a crashing entrypoint)
//   kReject    rejected before starting (REJECTED, as a failed image pull)
//   kComplete  reaches RUNNING, then exits 0 on the next round (COMPLETE, as a job's task)
// Every transition is appended to `log` in order, so tests can check orderings (a start-first
// update starts the new task before stopping the old one).
//
// Thread safety: runs on the leader loop thread; configure it before the loop runs.
#pragma once

#include <functional>
#include <set>
#include <string>
#include <vector>

#include "manager/leader/loop.h"

namespace shoal::manager::leader {

class FakeAgents final : public Component {
 public:
  enum class Outcome { kRun, kFail, kReject, kComplete };
  struct Transition {
    std::string task_id;
    std::string node_id;
    api::v1::TaskState state;
  };

  const char* name() const override { return "agents"; }
  void Init(const store::ReadView& view) override;
  void Observe(const store::Commit& commit) override;
  absl::Status Step(store::MemoryStore& store, absl::Time now) override;

  std::set<std::string> dead;  // nodes whose agent is gone: their tasks never move
  std::function<Outcome(const api::v1::Task&)> outcome;
  std::vector<Transition> log;

 private:
  api::v1::TaskState Next(const api::v1::Task& t) const;
  std::set<std::string> watched_;  // placed tasks that may still move
};

}  // namespace shoal::manager::leader
