#include <algorithm>

#include "absl/strings/str_cat.h"
#include "base/status.h"
#include "manager/orchestrator/reconcile.h"
#include "manager/scheduler/constraint.h"

namespace shoal::manager::orchestrator {

using TaskPtr = std::shared_ptr<const api::Task>;

namespace {

absl::Status Evict(store::Tx& tx, const api::Task& t, const std::string& why) {
  api::Task copy = t;
  copy.set_desired_state(api::TASK_STATE_SHUTDOWN);
  copy.mutable_status()->set_err(why);
  return tx.Update(copy);
}

}  // namespace

absl::Status EnforceNodeConstraints(store::Tx& tx, const std::string& node_id) {
  auto node = tx.Get<api::Node>(node_id);
  if (node == nullptr) return absl::OkStatus();
  std::vector<TaskPtr> placed;
  for (const auto& t : tx.Find<api::Task>(store::ByNodeId(node_id))) {
    if (!Runnable(*t) || t->status().state() < api::TASK_STATE_ASSIGNED || Finished(*t)) continue;
    placed.push_back(t);
  }
  std::vector<TaskPtr> fitting;
  for (const auto& t : placed) {
    const auto& exprs_pb = t->spec().placement().constraints();
    std::vector<std::string> exprs(exprs_pb.begin(), exprs_pb.end());
    auto cs = scheduler::ParseConstraints(exprs);
    if (cs.ok()) {
      auto bad = std::find_if(cs->begin(), cs->end(),
                              [&](const auto& c) { return !scheduler::NodeMatches(c, *node); });
      if (bad != cs->end()) {
        RETURN_IF_ERROR(
            Evict(tx, *t,
                  absl::StrCat("node ", node_id, " no longer satisfies the placement constraint ",
                               bad->text)));
        continue;
      }
    }
    fitting.push_back(t);
  }

  // Reservations: when the node's resources shrank below what its tasks reserve, stop tasks
  // until the rest fit — tasks not yet running first, then the newest.
  const auto& res = node->description().resources();
  int64_t cpu = 0, mem = 0;
  for (const auto& t : fitting) {
    cpu += t->spec().resources().reservations().nano_cpus();
    mem += t->spec().resources().reservations().memory_bytes();
  }
  if ((cpu == 0 || cpu <= res.nano_cpus()) && (mem == 0 || mem <= res.memory_bytes())) {
    return absl::OkStatus();
  }
  std::sort(fitting.begin(), fitting.end(), [](const TaskPtr& a, const TaskPtr& b) {
    bool ra = a->status().state() == api::TASK_STATE_RUNNING;
    bool rb = b->status().state() == api::TASK_STATE_RUNNING;
    if (ra != rb) return !ra;
    return a->meta().version().index() > b->meta().version().index();
  });
  for (const auto& t : fitting) {
    const auto& r = t->spec().resources().reservations();
    if (r.nano_cpus() == 0 && r.memory_bytes() == 0) continue;
    if ((cpu == 0 || cpu <= res.nano_cpus()) && (mem == 0 || mem <= res.memory_bytes())) break;
    RETURN_IF_ERROR(Evict(
        tx, *t, absl::StrCat("node ", node_id, " no longer has the resources the task reserves")));
    cpu -= r.nano_cpus();
    mem -= r.memory_bytes();
  }
  return absl::OkStatus();
}

}  // namespace shoal::manager::orchestrator
