#include "manager/orchestrator/update.h"

#include <algorithm>
#include <map>
#include <optional>

#include "absl/strings/str_cat.h"
#include "base/status.h"
#include "google/protobuf/util/message_differencer.h"
#include "manager/orchestrator/reconcile.h"
#include "manager/scheduler/constraint.h"

namespace shoal::manager::orchestrator {

using google::protobuf::util::MessageDifferencer;
using TaskPtr = std::shared_ptr<const api::Task>;
using State = api::UpdateStatus;

namespace {

struct Config {
  uint64_t parallelism = 1;
  absl::Duration delay = absl::ZeroDuration();
  absl::Duration monitor = absl::Seconds(5);
  double max_failure_ratio = 0;
  api::UpdateConfig::FailureAction action = api::UpdateConfig::FAILURE_ACTION_PAUSE;
  bool start_first = false;
};

Config ConfigOf(const api::ServiceSpec& spec, bool rollback) {
  Config c;
  if (rollback ? !spec.has_rollback() : !spec.has_update()) return c;
  const api::UpdateConfig& u = rollback ? spec.rollback() : spec.update();
  c.parallelism = u.parallelism();
  c.delay = FromProto(u.delay());
  if (u.has_monitor()) c.monitor = FromProto(u.monitor());
  c.max_failure_ratio = u.max_failure_ratio();
  c.action = u.failure_action();
  c.start_first = u.order() == api::UpdateConfig::ORDER_START_FIRST;
  return c;
}

bool Newer(const api::Task& a, const api::Task& b) {
  if (a.meta().created_at().seconds() != b.meta().created_at().seconds()) {
    return a.meta().created_at().seconds() > b.meta().created_at().seconds();
  }
  return a.meta().version().index() > b.meta().version().index();
}

// A slot (replicated) or node (global) and the task that currently represents it.
struct Unit {
  uint64_t slot = 0;
  std::string node_id;
  TaskPtr current;
};

std::string KeyOf(uint64_t slot, const std::string& node_id) {
  return slot > 0 ? absl::StrCat("s", slot) : "n" + node_id;
}

std::map<std::string, Unit> Units(const store::Tx& tx, const api::Service& svc) {
  std::map<std::string, Unit> units;
  const bool global = IsGlobal(svc);
  for (const auto& t : tx.Find<api::Task>(store::ByServiceId(svc.id()))) {
    if (!Runnable(*t)) continue;
    Unit& u = units[KeyOf(global ? 0 : t->slot(), global ? t->node_id() : "")];
    if (u.current == nullptr || Newer(*t, *u.current)) {
      u = {global ? 0 : t->slot(), global ? t->node_id() : "", t};
    }
  }
  return units;
}

absl::Status SetDesired(store::Tx& tx, const std::string& id, api::TaskState desired) {
  auto t = tx.Get<api::Task>(id);
  if (t == nullptr || t->desired_state() == desired) return absl::OkStatus();
  if (t->desired_state() > desired && desired != api::TASK_STATE_RUNNING) return absl::OkStatus();
  api::Task copy = *t;
  copy.set_desired_state(desired);
  return tx.Update(copy);
}

// A stop-first replacement starts at the latest this long after it was created, even if its
// predecessor never reports that it stopped (SwarmKit's defaultOldTaskTimeout).
constexpr absl::Duration kOldTaskTimeout = absl::Minutes(1);

// A stop-first replacement may start: its predecessor is gone, stopped, never reached a node,
// or sits on a node that is lost.
bool PredecessorStopped(const store::Tx& tx, const std::string& old_id) {
  auto old = tx.Get<api::Task>(old_id);
  if (old == nullptr || Finished(*old) || old->status().state() < api::TASK_STATE_ASSIGNED) {
    return true;
  }
  return !NodeUsable(tx.Get<api::Node>(old->node_id()).get());
}

bool Failure(const api::Task& t) {
  switch (t.status().state()) {
    case api::TASK_STATE_COMPLETE:  // a service task exiting early counts (as in SwarmKit)
    case api::TASK_STATE_FAILED:
    case api::TASK_STATE_REJECTED:
      return true;
    default:
      return false;
  }
}

bool RollingBack(const State& s) {
  return s.state() == State::STATE_ROLLBACK_STARTED || s.state() == State::STATE_ROLLBACK_PAUSED ||
         s.state() == State::STATE_ROLLBACK_COMPLETED;
}

// Stops the not-yet-started replacements of an abandoned update: their spec is outdated.
absl::Status Abandon(store::Tx& tx, State& status) {
  for (const auto& e : status.slots()) {
    auto t = tx.Get<api::Task>(e.new_task_id());
    if (t != nullptr && t->desired_state() == api::TASK_STATE_READY && !t->has_start_after()) {
      RETURN_IF_ERROR(SetDesired(tx, t->id(), api::TASK_STATE_SHUTDOWN));
    }
  }
  status.clear_slots();
  return absl::OkStatus();
}

}  // namespace

bool TaskDirty(const api::Service& svc, const api::Task& t, const api::Node* node) {
  if (t.has_endpoint() && svc.has_endpoint() &&
      !MessageDifferencer::Equals(t.endpoint().spec(), svc.endpoint().spec())) {
    return true;
  }
  // Same version: the task was created from this very spec (cheap check first).
  if (t.spec_version() == svc.spec_version()) return false;
  if (MessageDifferencer::Equals(t.spec(), svc.spec().task())) return false;
  if (MessageDifferencer::Equals(t.spec().placement(), svc.spec().task().placement())) return true;
  // Only the placement changed: the task may stay if its node satisfies the new constraints.
  if (node == nullptr) return true;
  api::TaskSpec a = t.spec(), b = svc.spec().task();
  a.clear_placement();
  b.clear_placement();
  if (!MessageDifferencer::Equals(a, b)) return true;
  std::vector<std::string> exprs(svc.spec().task().placement().constraints().begin(),
                                 svc.spec().task().placement().constraints().end());
  auto cs = scheduler::ParseConstraints(exprs);
  return !cs.ok() || !scheduler::NodeMatchesAll(*cs, *node);
}

bool UpdateInFlight(const api::Service& svc) {
  const State& s = svc.update_status();
  return s.state() == State::STATE_UPDATING || s.state() == State::STATE_ROLLBACK_STARTED ||
         !s.slots().empty();
}

bool KeptByUpdate(const api::Service& svc, const std::string& task_id) {
  if (svc.update_status().spec_version() != svc.spec_version()) return false;
  for (const auto& e : svc.update_status().slots()) {
    if (e.old_task_id() == task_id) return true;
  }
  return false;
}

absl::Status RollingUpdate(store::Tx& tx, const std::string& service_id, Env& env) {
  auto current = tx.Get<api::Service>(service_id);
  if (current == nullptr || IsJob(*current)) return absl::OkStatus();
  api::Service svc = *current;
  State& st = *svc.mutable_update_status();
  const absl::Time now = env.clock.Now();
  std::map<std::string, Unit> units = Units(tx, svc);
  auto dirty = [&](const Unit& u) {
    auto node = u.current->node_id().empty() ? nullptr : tx.Get<api::Node>(u.current->node_id());
    return TaskDirty(svc, *u.current, node.get());
  };

  if (st.spec_version() != svc.spec_version()) {
    size_t n =
        std::count_if(units.begin(), units.end(), [&](auto& kv) { return dirty(kv.second); });
    if (n == 0) return absl::OkStatus();  // e.g. a scale change: nothing to roll
    RETURN_IF_ERROR(Abandon(tx, st));
    State fresh;
    fresh.set_state(State::STATE_UPDATING);
    fresh.set_message("update in progress");
    *fresh.mutable_started_at() = ToProto(now);
    fresh.set_spec_version(svc.spec_version());
    st = fresh;
  }
  if (st.state() == State::STATE_UNKNOWN) return absl::OkStatus();
  const bool rollback = RollingBack(st);
  const Config cfg = ConfigOf(svc.spec(), rollback);

  // Advance the slots in flight.
  std::optional<std::string> failed_task;
  google::protobuf::RepeatedPtrField<api::UpdateSlot> keep;
  for (const auto& e : st.slots()) {
    auto nt = tx.Get<api::Task>(e.new_task_id());
    if (nt == nullptr) continue;  // reaped or removed: nothing to follow
    api::UpdateSlot next = e;
    if (Finished(*nt)) {
      const bool early = !e.has_running_at() || now - FromProto(e.running_at()) < cfg.monitor;
      if (early && Failure(*nt)) {
        st.set_failures(st.failures() + 1);
        failed_task = nt->id();
      } else if (e.has_running_at()) {
        st.set_updated(st.updated() + 1);
      }
      continue;
    }
    if (!Runnable(*nt)) continue;  // scaled away or replaced: the slot's new owner is current
    if (nt->status().state() == api::TASK_STATE_RUNNING) {
      if (!next.has_running_at()) *next.mutable_running_at() = ToProto(now);
      if (!e.old_task_id().empty()) {
        RETURN_IF_ERROR(SetDesired(tx, e.old_task_id(), api::TASK_STATE_SHUTDOWN));
      }
      if (now - FromProto(next.running_at()) >= std::max(cfg.monitor, cfg.delay)) {
        st.set_updated(st.updated() + 1);
        continue;
      }
    } else if (nt->desired_state() == api::TASK_STATE_READY && !nt->has_start_after() &&
               (PredecessorStopped(tx, e.old_task_id()) ||
                now - FromProto(nt->meta().created_at()) > kOldTaskTimeout)) {
      RETURN_IF_ERROR(SetDesired(tx, nt->id(), api::TASK_STATE_RUNNING));
    }
    *keep.Add() = next;
  }
  *st.mutable_slots() = keep;

  // Failure action.
  const bool active =
      st.state() == State::STATE_UPDATING || st.state() == State::STATE_ROLLBACK_STARTED;
  if (active && st.failures() > 0 &&
      static_cast<double>(st.failures()) >
          cfg.max_failure_ratio * static_cast<double>(st.total())) {
    const std::string cause = absl::StrCat("due to failure or early termination of task ",
                                           failed_task.value_or("(earlier)"));
    if (cfg.action == api::UpdateConfig::FAILURE_ACTION_CONTINUE) {
      // keep going
    } else if (rollback) {
      st.set_state(State::STATE_ROLLBACK_PAUSED);
      st.set_message(absl::StrCat("rollback paused ", cause));
    } else if (cfg.action == api::UpdateConfig::FAILURE_ACTION_ROLLBACK &&
               svc.has_previous_spec()) {
      RETURN_IF_ERROR(Abandon(tx, st));
      api::ServiceSpec failed = svc.spec();
      *svc.mutable_spec() = svc.previous_spec();
      svc.clear_previous_spec();  // never a rollback of the rollback
      svc.set_previous_spec_version(svc.spec_version());
      svc.set_spec_version(svc.spec_version() + 1);
      State rb;
      rb.set_state(State::STATE_ROLLBACK_STARTED);
      rb.set_message(absl::StrCat("update rolled back ", cause));
      *rb.mutable_started_at() = ToProto(now);
      rb.set_spec_version(svc.spec_version());
      st = rb;
      return tx.Update(svc);  // the rollback proceeds from the next step, like a new update
    } else {
      st.set_state(State::STATE_PAUSED);
      st.set_message(absl::StrCat("update paused ", cause,
                                  cfg.action == api::UpdateConfig::FAILURE_ACTION_ROLLBACK
                                      ? " (no previous spec to roll back to)"
                                      : ""));
    }
  }

  // Start dirty slots on free workers.
  if (st.state() == State::STATE_UPDATING || st.state() == State::STATE_ROLLBACK_STARTED) {
    std::map<std::string, bool> in_flight;
    size_t busy = 0;
    for (const auto& e : st.slots()) {
      in_flight[KeyOf(e.slot(), e.node_id())] = true;
      if (!e.has_running_at() || now - FromProto(e.running_at()) < cfg.delay) ++busy;
    }
    std::vector<const Unit*> todo;
    for (const auto& [key, u] : units) {
      if (!in_flight.contains(key) && dirty(u)) todo.push_back(&u);
    }
    // Counted once, at the first step that sees the dirty slots (also after a rollback).
    if (st.total() == 0) st.set_total(todo.size() + st.slots_size());
    const size_t free = cfg.parallelism == 0      ? todo.size()
                        : busy >= cfg.parallelism ? 0
                                                  : cfg.parallelism - busy;
    for (size_t i = 0; i < todo.size() && i < free; ++i) {
      const Unit& u = *todo[i];
      api::Task nt = NewTask(svc, u.slot, u.node_id, env);
      api::UpdateSlot e;
      e.set_slot(u.slot);
      e.set_node_id(u.node_id);
      e.set_new_task_id(nt.id());
      const bool old_placed = u.current->status().state() >= api::TASK_STATE_ASSIGNED &&
                              u.current->status().state() <= api::TASK_STATE_RUNNING;
      if (cfg.start_first && old_placed) {
        e.set_old_task_id(u.current->id());  // stopped once the new task runs
      } else {
        // Stop-first, in one transaction: the old task stops, the new one waits (desired
        // READY: placed and prepared, started once the old one has stopped).
        e.set_old_task_id(u.current->id());
        RETURN_IF_ERROR(SetDesired(tx, u.current->id(), api::TASK_STATE_SHUTDOWN));
        if (old_placed) nt.set_desired_state(api::TASK_STATE_READY);
      }
      RETURN_IF_ERROR(tx.Create(nt));
      *st.add_slots() = e;
    }
    const bool more = todo.size() > free;
    if (!more && st.slots().empty()) {
      st.set_state(rollback ? State::STATE_ROLLBACK_COMPLETED : State::STATE_COMPLETED);
      // A rollback keeps its cause visible: "rollback completed (update rolled back due to ...)".
      st.set_message(!rollback ? "update completed"
                     : st.message().rfind("update rolled back", 0) == 0
                         ? absl::StrCat("rollback completed (", st.message(), ")")
                         : "rollback completed");
      *st.mutable_completed_at() = ToProto(now);
    }
  }
  if (MessageDifferencer::Equals(svc, *current)) return absl::OkStatus();
  return tx.Update(svc);
}

}  // namespace shoal::manager::orchestrator
