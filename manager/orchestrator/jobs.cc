#include <map>

#include "base/status.h"
#include "manager/orchestrator/reconcile.h"

namespace shoal::manager::orchestrator {

using TaskPtr = std::shared_ptr<const api::Task>;

absl::Status ReconcileReplicatedJob(store::Tx& tx, const api::Service& svc, Env& env) {
  const api::ReplicatedJob& job = svc.spec().replicated_job();
  const uint64_t max_concurrent = job.max_concurrent() > 0 ? job.max_concurrent() : 1;
  const uint64_t total = job.total_completions() > 0 ? job.total_completions() : max_concurrent;
  const uint64_t iteration = svc.spec_version();

  std::map<uint64_t, std::vector<TaskPtr>> slots;
  for (const auto& t : tx.Find<api::Task>(store::ByServiceId(svc.id()))) {
    if (t->job_iteration() != iteration) {
      if (Runnable(*t)) RETURN_IF_ERROR(SetDesired(tx, *t, api::TASK_STATE_REMOVE));
      continue;
    }
    slots[t->slot()].push_back(t);
  }

  uint64_t complete = 0, active = 0, failed = 0;
  for (auto& [slot, tasks] : slots) {
    TaskPtr current;
    bool done = false;
    for (const auto& t : tasks) {
      done |= t->status().state() == api::TASK_STATE_COMPLETE;
      if (Runnable(*t) &&
          (current == nullptr || t->meta().version().index() > current->meta().version().index())) {
        current = t;
      }
    }
    if (done) {
      ++complete;
      // A completed slot needs nothing else running (e.g. a replacement started while the
      // completion was being reported).
      for (const auto& t : tasks) {
        if (!Finished(*t) && Runnable(*t)) {
          RETURN_IF_ERROR(SetDesired(tx, *t, api::TASK_STATE_SHUTDOWN));
        }
      }
      continue;
    }
    if (current == nullptr) {
      ++failed;  // every attempt finished and none may restart
      continue;
    }
    ASSIGN_OR_RETURN(TaskPtr replacement, RestartIfNeeded(tx, svc, current, tasks, env));
    if (replacement == nullptr && Finished(*current)) {
      ++failed;  // restarts exhausted or forbidden
      continue;
    }
    ++active;
  }

  // New slots, lowest numbers first, while below max_concurrent and completions are missing.
  uint64_t next = 1;
  while (active < max_concurrent && complete + active + failed < total) {
    while (slots.contains(next)) ++next;
    RETURN_IF_ERROR(tx.Create(NewTask(svc, next, "", env)));
    slots[next];
    ++active;
  }
  return absl::OkStatus();
}

}  // namespace shoal::manager::orchestrator
