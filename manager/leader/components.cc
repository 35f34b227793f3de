#include "manager/leader/components.h"

#include "base/status.h"
#include "google/protobuf/util/time_util.h"
#include "manager/orchestrator/reconcile.h"
#include "manager/orchestrator/update.h"

namespace shoal::manager::leader {

namespace api = ::shoal::api::v1;
using google::protobuf::util::TimeUtil;
using TaskPtr = std::shared_ptr<const api::Task>;

namespace {

google::protobuf::Timestamp Now(absl::Time t) {
  return TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(t));
}

TaskPtr AsTask(const store::Event& e) {
  return std::static_pointer_cast<const api::Task>(e.object);
}

}  // namespace

// ---- orchestrator ----

void OrchestratorComponent::Init(const store::ReadView& view) {
  dirty_.clear();
  deleted_.clear();
  nodes_.clear();
  for (const auto& s : view.Find<api::Service>(store::All())) dirty_.insert(s->id());
  // Node changes may have been missed while no leader ran.
  for (const auto& n : view.Find<api::Node>(store::All())) nodes_.insert(n->id());
  // Tasks whose service is gone (deleted while no leader ran) still need their removal.
  for (const auto& t : view.Find<api::Task>(store::All())) {
    if (!t->service_id().empty() && view.Get<api::Service>(t->service_id()) == nullptr) {
      deleted_.insert(t->service_id());
    }
  }
}

void OrchestratorComponent::Observe(const store::Commit& commit) {
  for (const auto& e : commit.events) {
    if (const auto* s = e.Get<api::Service>()) {
      if (e.type == store::EventType::kDelete) {
        deleted_.insert(s->id());
        dirty_.erase(s->id());
      } else {
        dirty_.insert(s->id());
      }
    } else if (const auto* t = e.Get<api::Task>()) {
      if (!t->service_id().empty() && !deleted_.contains(t->service_id())) {
        dirty_.insert(t->service_id());
      }
    } else if (const auto* n = e.Get<api::Node>()) {
      all_dirty_ = true;  // availability, state or labels change placement for every service
      if (e.type == store::EventType::kUpdate) nodes_.insert(n->id());
    }
  }
}

absl::Status OrchestratorComponent::Step(store::MemoryStore& store, absl::Time now) {
  orchestrator::Env env{clock_, random_};
  if (all_dirty_) {
    for (const auto& s : store.View().Find<api::Service>(store::All())) dirty_.insert(s->id());
    all_dirty_ = false;
  }
  std::set<std::string> dirty = std::move(dirty_);
  std::set<std::string> deleted = std::move(deleted_);
  std::set<std::string> nodes = std::move(nodes_);
  dirty_.clear();
  deleted_.clear();
  nodes_.clear();
  // Updates in flight move on with time (delays, monitor periods) even without commits.
  dirty.insert(updating_.begin(), updating_.end());
  auto result = store.BatchUpdate([&](store::Batch& batch) -> absl::Status {
    // Evictions first: their replacements are created in the same round.
    for (const auto& id : nodes) {
      RETURN_IF_ERROR(batch.Update(
          [&](store::Tx& tx) { return orchestrator::EnforceNodeConstraints(tx, id); }));
    }
    for (const auto& id : dirty) {
      RETURN_IF_ERROR(batch.Update([&](store::Tx& tx) -> absl::Status {
        auto svc = tx.Get<api::Service>(id);
        if (svc == nullptr) return absl::OkStatus();
        if (svc->spec().has_global() || svc->spec().has_global_job()) {
          RETURN_IF_ERROR(orchestrator::ReconcileGlobal(tx, *svc, env));
        } else {
          RETURN_IF_ERROR(orchestrator::ReconcileReplicated(tx, *svc, env));
        }
        RETURN_IF_ERROR(orchestrator::RollingUpdate(tx, id, env));
        return orchestrator::ReapTasks(tx, id, retention_);
      }));
    }
    for (const auto& id : deleted) {
      RETURN_IF_ERROR(batch.Update([&](store::Tx& tx) -> absl::Status {
        RETURN_IF_ERROR(orchestrator::RemoveServiceTasks(tx, id));
        return orchestrator::ReapTasks(tx, id, retention_);
      }));
    }
    return batch.Update([&](store::Tx& tx) { return orchestrator::StartDelayedTasks(tx, now); });
  });
  if (!result.ok()) {
    // Try again next round: nothing is lost, the state is level-triggered.
    dirty_.insert(dirty.begin(), dirty.end());
    deleted_.insert(deleted.begin(), deleted.end());
    nodes_.insert(nodes.begin(), nodes.end());
    return result.status();
  }
  auto view = store.View();
  updating_.clear();
  for (const auto& id : dirty) {
    auto svc = view.Get<api::Service>(id);
    if (svc != nullptr && orchestrator::UpdateInFlight(*svc)) updating_.insert(id);
  }
  // Deleted services keep being reaped until their last task is gone.
  for (const auto& id : deleted) {
    if (!view.Find<api::Task>(store::ByServiceId(id)).empty()) deleted_.insert(id);
  }
  return absl::OkStatus();
}

// ---- scheduler ----

void SchedulerComponent::ObserveTask(const TaskPtr& t) {
  scheduler_->UpsertTask(*t);
  if (t->status().state() == api::TASK_STATE_PENDING &&
      t->desired_state() <= api::TASK_STATE_RUNNING) {
    pending_[t->id()] = t;
  } else {
    pending_.erase(t->id());
  }
}

void SchedulerComponent::Init(const store::ReadView& view) {
  scheduler_ = std::make_unique<scheduler::Scheduler>(clock_);
  pending_.clear();
  for (const auto& n : view.Find<api::Node>(store::All())) scheduler_->UpsertNode(*n);
  for (const auto& t : view.Find<api::Task>(store::All())) ObserveTask(t);
  changed_ = true;
}

void SchedulerComponent::Observe(const store::Commit& commit) {
  for (const auto& e : commit.events) {
    if (const auto* n = e.Get<api::Node>()) {
      if (e.type == store::EventType::kDelete) {
        scheduler_->RemoveNode(n->id());
      } else {
        scheduler_->UpsertNode(*n);
      }
      changed_ = true;
    } else if (const auto* t = e.Get<api::Task>()) {
      if (e.type == store::EventType::kDelete) {
        scheduler_->RemoveTask(t->id());
        pending_.erase(t->id());
      } else {
        const auto* old = e.Old<api::Task>();
        // Recording a failure underweights the node for this service version.
        if (old != nullptr && old->status().state() <= api::TASK_STATE_RUNNING &&
            (t->status().state() == api::TASK_STATE_FAILED ||
             t->status().state() == api::TASK_STATE_REJECTED)) {
          scheduler_->RecordFailure(t->node_id(), t->service_id(), t->spec_version());
        }
        ObserveTask(AsTask(e));
      }
      changed_ = true;
    }
  }
}

absl::Status SchedulerComponent::Step(store::MemoryStore& store, absl::Time now) {
  if (pending_.empty() || !changed_) return absl::OkStatus();
  changed_ = false;
  std::vector<const api::Task*> batch;
  for (const auto& [_, t] : pending_) batch.push_back(t.get());
  scheduler::ScheduleResult result = scheduler_->Schedule(batch);
  std::vector<std::string> failed;
  auto r = store.BatchUpdate([&](store::Batch& b) -> absl::Status {
    for (const auto& d : result.assigned) {
      absl::Status s = b.Update([&](store::Tx& tx) -> absl::Status {
        auto t = tx.Get<api::Task>(d.task_id);
        if (t == nullptr || t->status().state() != api::TASK_STATE_PENDING) {
          return absl::AbortedError("task changed");
        }
        api::Task copy = *t;
        copy.set_node_id(d.node_id);
        copy.mutable_status()->set_state(api::TASK_STATE_ASSIGNED);
        copy.mutable_status()->set_message("scheduler assigned task to node");
        copy.mutable_status()->clear_err();
        *copy.mutable_status()->mutable_timestamp() = Now(now);
        return tx.Update(copy);
      });
      if (!s.ok()) failed.push_back(d.task_id);
    }
    for (const auto& p : result.pending) {
      RETURN_IF_ERROR(b.Update([&](store::Tx& tx) -> absl::Status {
        auto t = tx.Get<api::Task>(p.task_id);
        if (t == nullptr || t->status().err() == p.explanation) return absl::OkStatus();
        api::Task copy = *t;
        copy.mutable_status()->set_err(p.explanation);
        return tx.Update(copy);
      }));
    }
    return absl::OkStatus();
  });
  for (const auto& id : failed) scheduler_->Forget(id);
  if (!r.ok()) {
    // Undo the optimistic accounting; the next Init/Observe round recomputes.
    for (const auto& d : result.assigned) scheduler_->Forget(d.task_id);
    changed_ = true;
  }
  return r.status();
}

}  // namespace shoal::manager::leader
