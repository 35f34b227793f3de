#include <map>

#include "absl/strings/str_cat.h"
#include "base/status.h"
#include "manager/orchestrator/reconcile.h"
#include "manager/scheduler/constraint.h"

namespace shoal::manager::orchestrator {
namespace {

using TaskPtr = std::shared_ptr<const api::Task>;

absl::Status Shutdown(store::Tx& tx, const api::Task& t) {
  if (t.desired_state() >= api::TASK_STATE_SHUTDOWN) return absl::OkStatus();
  api::Task copy = t;
  copy.set_desired_state(api::TASK_STATE_SHUTDOWN);
  return tx.Update(copy);
}

}  // namespace

absl::Status ReconcileGlobal(store::Tx& tx, const api::Service& svc, Env& env) {
  std::vector<std::string> exprs(svc.spec().task().placement().constraints().begin(),
                                 svc.spec().task().placement().constraints().end());
  auto constraints = scheduler::ParseConstraints(exprs);
  if (!constraints.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("service ", svc.spec().annotations().name(),
                                                   ": placement.", constraints.status().message()));
  }
  const bool is_job = svc.spec().has_global_job();
  std::map<std::string, std::vector<TaskPtr>> by_node;
  for (const auto& t : tx.Find<api::Task>(store::ByServiceId(svc.id()))) {
    if (is_job && t->job_iteration() != svc.spec_version()) {
      // An earlier run of the job: its tasks go away.
      if (Runnable(*t)) RETURN_IF_ERROR(SetDesired(tx, *t, api::TASK_STATE_REMOVE));
      continue;
    }
    by_node[t->node_id()].push_back(t);
  }

  // Tasks on nodes that no longer qualify stop; finished tasks restart per policy.
  for (auto& [node_id, tasks] : by_node) {
    auto node = tx.Get<api::Node>(node_id);
    const bool qualifies = NodeUsable(node.get()) && scheduler::NodeMatchesAll(*constraints, *node);
    for (const auto& t : tasks) {
      if (!Runnable(*t)) continue;
      if (!qualifies) {
        RETURN_IF_ERROR(Shutdown(tx, *t));
      } else if (Finished(*t) && RestartAllowed(svc, *t, tasks, env.clock.Now())) {
        RETURN_IF_ERROR(Shutdown(tx, *t));
        RETURN_IF_ERROR(tx.Create(Replacement(svc, *t, /*immediate=*/false, env)));
      }
    }
  }

  // Every qualifying ACTIVE node without a runnable task (or, for jobs, without any task of
  // this iteration) gets one.
  for (const auto& node : tx.Find<api::Node>(store::All())) {
    if (!NodeUsable(node.get()) ||
        node->spec().availability() != api::NodeSpec::AVAILABILITY_ACTIVE ||
        !scheduler::NodeMatchesAll(*constraints, *node)) {
      continue;
    }
    bool has = false;
    for (const auto& t : by_node[node->id()]) {
      if (Runnable(*t) || (is_job && t->status().state() == api::TASK_STATE_COMPLETE)) {
        has = true;
        break;
      }
    }
    if (!has) RETURN_IF_ERROR(tx.Create(NewTask(svc, 0, node->id(), env)));
  }
  return absl::OkStatus();
}

}  // namespace shoal::manager::orchestrator
