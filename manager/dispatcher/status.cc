// Task status ingestion (dispatcher.h): validate, queue, write in batches, never backwards.
#include "base/status.h"
#include "absl/strings/str_cat.h"
#include "manager/dispatcher/dispatcher.h"
#include "manager/dispatcher/session.h"

namespace shoal::manager::dispatcher {

absl::Status Dispatcher::UpdateTaskStatus(absl::string_view node_id,
                                          const api::UpdateTaskStatusRequest& request) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    RETURN_IF_ERROR(Current(node_id, request.session_id()));
  }
  auto view = store_.View();
  std::vector<int> known;
  for (int i = 0; i < request.updates_size(); ++i) {
    const auto& u = request.updates(i);
    if (u.task_id().empty()) {
      return absl::InvalidArgumentError(absl::StrCat("updates[", i, "].task_id is required"));
    }
    api::TaskState state = u.status().state();
    if (state < api::TASK_STATE_ACCEPTED || state > api::TASK_STATE_REJECTED) {
      return absl::InvalidArgumentError(
          absl::StrCat("updates[", i, "].status.state: agents report ACCEPTED..REJECTED, got ",
                       api::TaskState_Name(state)));
    }
    auto t = view.Get<api::Task>(u.task_id());
    if (t == nullptr) continue;  // deleted meanwhile: nothing to record
    if (t->node_id() != node_id) {
      return absl::PermissionDeniedError(absl::StrCat(
          "updates[", i, "]: task ", u.task_id(), " is not assigned to node ", node_id,
          t->node_id().empty() ? std::string(" (it is not assigned)")
                               : absl::StrCat(" (it is assigned to node ", t->node_id(), ")")));
    }
    known.push_back(i);
  }
  size_t queued;
  {
    std::lock_guard<std::mutex> lock(status_mu_);
    absl::Time now = clock_.Now();
    if (status_.empty()) first_queued_ = now;
    for (int i : known) {
      const auto& u = request.updates(i);
      auto [it, fresh] = status_.try_emplace(u.task_id());
      if (!fresh && it->second.status.state() > u.status().state()) continue;
      it->second.node_id = std::string(node_id);
      it->second.status = u.status();
      if (!it->second.status.has_timestamp()) {
        it->second.status.mutable_timestamp()->set_seconds(absl::ToUnixSeconds(now));
      }
    }
    queued = status_.size();
  }
  if (queued >= options_.status_batch_items) return FlushStatus();
  return absl::OkStatus();
}

size_t Dispatcher::queued_statuses() const {
  std::lock_guard<std::mutex> lock(status_mu_);
  return status_.size();
}

absl::Status Dispatcher::FlushStatus() {
  std::lock_guard<std::mutex> flush(flush_mu_);
  absl::flat_hash_map<std::string, Queued> batch;
  {
    std::lock_guard<std::mutex> lock(status_mu_);
    batch.swap(status_);
  }
  if (batch.empty()) return absl::OkStatus();
  auto written = store_.BatchUpdate([&](store::Batch& b) -> absl::Status {
    for (const auto& [task_id, q] : batch) {
      RETURN_IF_ERROR(b.Update([&](store::Tx& tx) -> absl::Status {
        auto t = tx.Get<api::Task>(task_id);
        if (t == nullptr || t->node_id() != q.node_id) return absl::OkStatus();
        // A task never moves backwards (states are spaced so they order).
        if (q.status.state() < t->status().state()) return absl::OkStatus();
        api::Task copy = *t;
        *copy.mutable_status() = q.status;
        copy.mutable_status()->set_applied_by(options_.manager_id);
        return tx.Update(copy);
      }));
    }
    return absl::OkStatus();
  });
  return written.status();
}

}  // namespace shoal::manager::dispatcher
