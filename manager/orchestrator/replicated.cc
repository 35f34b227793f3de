#include <algorithm>
#include <map>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "base/status.h"
#include "manager/orchestrator/reconcile.h"
#include "manager/orchestrator/update.h"
#include "manager/scheduler/constraint.h"

namespace shoal::manager::orchestrator {

using TaskPtr = std::shared_ptr<const api::Task>;

bool NodeUsable(const api::Node* node) {
  return node != nullptr && node->status().state() != api::NodeStatus::STATE_DOWN &&
         node->spec().availability() != api::NodeSpec::AVAILABILITY_DRAIN;
}

absl::Status SetDesired(store::Tx& tx, const api::Task& t, api::TaskState desired) {
  if (t.desired_state() >= desired) return absl::OkStatus();  // never move backwards
  api::Task copy = t;
  copy.set_desired_state(desired);
  return tx.Update(copy);
}

absl::StatusOr<TaskPtr> RestartIfNeeded(store::Tx& tx, const api::Service& svc, const TaskPtr& t,
                                        const std::vector<TaskPtr>& history, Env& env) {
  std::shared_ptr<const api::Node> node;
  if (!t->node_id().empty()) node = tx.Get<api::Node>(t->node_id());
  const bool lost_node = !t->node_id().empty() && !NodeUsable(node.get());
  if (!lost_node && !Finished(*t)) return TaskPtr();
  if (!lost_node && !RestartAllowed(svc, *t, history, env.clock.Now())) return TaskPtr();
  RETURN_IF_ERROR(SetDesired(tx, *t, api::TASK_STATE_SHUTDOWN));
  auto replacement =
      std::make_shared<const api::Task>(Replacement(svc, *t, /*immediate=*/lost_node, env));
  RETURN_IF_ERROR(tx.Create(*replacement));
  return replacement;
}

namespace {

struct SlotInfo {
  uint64_t slot;
  TaskPtr task;                   // the slot's runnable task
  std::vector<std::string> path;  // spread-preference values, outermost first
};

}  // namespace

absl::Status ReconcileReplicated(store::Tx& tx, const api::Service& svc, Env& env) {
  if (svc.spec().has_replicated_job()) return ReconcileReplicatedJob(tx, svc, env);
  const uint64_t replicas = svc.spec().replicated().replicas();
  std::map<uint64_t, std::vector<TaskPtr>> slots;
  for (const auto& t : tx.Find<api::Task>(store::ByServiceId(svc.id()))) {
    slots[t->slot()].push_back(t);
  }

  std::vector<SlotInfo> runnable;
  for (auto& [slot, tasks] : slots) {
    // The newest runnable task represents the slot; older runnable ones are leftovers.
    TaskPtr current;
    for (const auto& t : tasks) {
      if (!Runnable(*t) || KeptByUpdate(svc, t->id())) continue;
      if (current == nullptr ||
          t->meta().created_at().seconds() > current->meta().created_at().seconds() ||
          (t->meta().created_at().seconds() == current->meta().created_at().seconds() &&
           t->meta().version().index() > current->meta().version().index())) {
        if (current != nullptr) RETURN_IF_ERROR(SetDesired(tx, *current, api::TASK_STATE_SHUTDOWN));
        current = t;
      } else {
        RETURN_IF_ERROR(SetDesired(tx, *t, api::TASK_STATE_SHUTDOWN));
      }
    }
    if (current == nullptr) continue;
    ASSIGN_OR_RETURN(TaskPtr replacement, RestartIfNeeded(tx, svc, current, tasks, env));
    if (replacement != nullptr) {
      tasks.push_back(replacement);
      current = replacement;
    }
    runnable.push_back({slot, current, {}});
  }

  if (runnable.size() < replicas) {
    absl::flat_hash_map<uint64_t, bool> used;
    for (const auto& s : runnable) used[s.slot] = true;
    uint64_t next = 1;
    for (size_t missing = replicas - runnable.size(); missing > 0; --missing) {
      while (used.contains(next)) ++next;
      RETURN_IF_ERROR(tx.Create(NewTask(svc, next, "", env)));
      used[next] = true;
    }
    return absl::OkStatus();
  }
  if (runnable.size() == replicas) return absl::OkStatus();

  // Scale down, keeping the spread.
  std::vector<std::string> prefs;
  for (const auto& p : svc.spec().task().placement().preferences()) {
    prefs.push_back(p.spread_descriptor());
  }
  std::map<std::string, int> path_count;  // "v1\x1fv2..." prefix -> slots under it
  std::map<std::string, int> node_count;
  auto prefix_key = [](const std::vector<std::string>& path, size_t depth) {
    std::string k;
    for (size_t i = 0; i < depth; ++i) k += path[i] + '\x1f';
    return k;
  };
  for (auto& s : runnable) {
    auto node = s.task->node_id().empty() ? nullptr : tx.Get<api::Node>(s.task->node_id());
    for (const auto& d : prefs) {
      s.path.push_back(node ? scheduler::SpreadValue(d, *node) : "");
    }
    for (size_t depth = 1; depth <= prefs.size(); ++depth) path_count[prefix_key(s.path, depth)]++;
    node_count[s.task->node_id()]++;
  }
  size_t surplus = runnable.size() - replicas;
  while (surplus-- > 0) {
    auto worse = [&](const SlotInfo& a, const SlotInfo& b) {  // true if a should go first
      bool ra = a.task->status().state() == api::TASK_STATE_RUNNING;
      bool rb = b.task->status().state() == api::TASK_STATE_RUNNING;
      if (ra != rb) return !ra;
      for (size_t depth = 1; depth <= prefs.size(); ++depth) {
        int ca = path_count[prefix_key(a.path, depth)], cb = path_count[prefix_key(b.path, depth)];
        if (ca != cb) return ca > cb;
      }
      int na = node_count[a.task->node_id()], nb = node_count[b.task->node_id()];
      if (na != nb) return na > nb;
      return a.slot > b.slot;
    };
    auto victim = std::min_element(runnable.begin(), runnable.end(), worse);
    for (size_t depth = 1; depth <= prefs.size(); ++depth)
      path_count[prefix_key(victim->path, depth)]--;
    node_count[victim->task->node_id()]--;
    for (const auto& t : slots[victim->slot]) {
      if (Runnable(*t)) RETURN_IF_ERROR(SetDesired(tx, *t, api::TASK_STATE_REMOVE));
    }
    runnable.erase(victim);
  }
  return absl::OkStatus();
}

absl::Status RemoveServiceTasks(store::Tx& tx, const std::string& service_id) {
  for (const auto& t : tx.Find<api::Task>(store::ByServiceId(service_id))) {
    if (Runnable(*t)) RETURN_IF_ERROR(SetDesired(tx, *t, api::TASK_STATE_REMOVE));
  }
  return absl::OkStatus();
}

}  // namespace shoal::manager::orchestrator
