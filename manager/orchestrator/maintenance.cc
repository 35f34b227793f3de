#include <algorithm>
#include <map>

#include "absl/strings/str_cat.h"
#include "base/status.h"
#include "google/protobuf/util/time_util.h"
#include "manager/orchestrator/reconcile.h"

namespace shoal::manager::orchestrator {

using google::protobuf::util::TimeUtil;
using TaskPtr = std::shared_ptr<const api::Task>;

absl::Status StartDelayedTasks(store::Tx& tx, absl::Time now) {
  for (const auto& t : tx.Find<api::Task>(store::ByDesiredState(api::TASK_STATE_READY))) {
    if (!t->has_start_after()) continue;
    absl::Time at = absl::FromUnixNanos(TimeUtil::TimestampToNanoseconds(t->start_after()));
    if (at > now) continue;
    api::Task copy = *t;
    copy.set_desired_state(api::TASK_STATE_RUNNING);
    copy.clear_start_after();
    RETURN_IF_ERROR(tx.Update(copy));
  }
  return absl::OkStatus();
}

absl::Status ReapTasks(store::Tx& tx, const std::string& service_id, int64_t retention) {
  auto service = tx.Get<api::Service>(service_id);
  auto stopped = [](const api::Task& t) {
    return Finished(t) || t.status().state() < api::TASK_STATE_ASSIGNED;
  };
  std::map<std::string, std::vector<TaskPtr>> groups;  // slot or node -> finished history
  for (const auto& t : tx.Find<api::Task>(store::ByServiceId(service_id))) {
    const bool removable =
        (service == nullptr || t->desired_state() >= api::TASK_STATE_REMOVE) && stopped(*t);
    if (removable) {
      RETURN_IF_ERROR(tx.Delete<api::Task>(t->id()));
      continue;
    }
    if (!Runnable(*t) && Finished(*t)) {
      groups[t->slot() > 0 ? absl::StrCat("slot:", t->slot()) : "node:" + t->node_id()].push_back(
          t);
    }
  }
  if (retention < 0 || service == nullptr) return absl::OkStatus();
  // The restart policy counts attempts over this history: keep enough of it (as SwarmKit).
  const uint64_t attempts = service->spec().task().restart().max_attempts();
  if (attempts > 0 && static_cast<uint64_t>(retention) < attempts + 1) {
    retention = static_cast<int64_t>(attempts + 1);
  }
  for (auto& [_, history] : groups) {
    if (history.size() <= static_cast<size_t>(retention)) continue;
    std::sort(history.begin(), history.end(), [](const TaskPtr& a, const TaskPtr& b) {
      return a->meta().version().index() < b->meta().version().index();  // oldest first
    });
    for (size_t i = 0; i + retention < history.size(); ++i) {
      RETURN_IF_ERROR(tx.Delete<api::Task>(history[i]->id()));
    }
  }
  return absl::OkStatus();
}

}  // namespace shoal::manager::orchestrator
