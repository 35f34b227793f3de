// Rolling updates and rollbacks of services (semantics in swarmkit.md §4 "Update supervisor";
// departures below).
//
// Level-triggered: RollingUpdate looks at the service, its update_status and its tasks, and
// takes the next steps inside the caller's transaction. All progress lives in
// Service.update_status (the spec version being rolled out, the slots in flight with their old
// and new task and when the new task was first seen RUNNING, failure and completion counts), so
// a new leader resumes an update exactly where the previous one stopped. SwarmKit keeps this in
// one goroutine per service and loses it on failover.
//
// One update step, per service:
//  - a spec version change with dirty slots starts an update (state UPDATING) and abandons any
//    update still running for an older version (its not-yet-started new tasks are shut down);
//  - every slot in flight advances: stop-first starts the new task (desired READY -> RUNNING)
//    once the old one has stopped (or after 1 min, if its agent never says so); start-first
//    stops the old task once the new one RUNS;
//  - a new task that stops (COMPLETE/FAILED/REJECTED) before RUNNING or within `monitor` of
//    reaching RUNNING counts as a failure; once failures / total > max_failure_ratio the
//    failure action runs: PAUSE (state PAUSED, until the next spec change), CONTINUE, or
//    ROLLBACK (spec := previous_spec, state ROLLBACK_STARTED, rolled out with the rollback
//    config; a failing rollback pauses as ROLLBACK_PAUSED, never rolls back again);
//  - free workers (`parallelism`, 0 = all) take the next dirty slots, lowest first; a worker is
//    busy until its new task RUNS and `delay` has passed since;
//  - when no slot is dirty or in flight and every new task ran through its monitor period, the
//    state becomes COMPLETED (or ROLLBACK_COMPLETED).
// Departure: the unset UpdateConfig means SwarmKit's defaults (parallelism 1, delay 0, monitor
// 5 s, PAUSE, ratio 0, stop-first); in a set config, parallelism 0 means all at once and an unset
// monitor means 5 s.
//
// A manual rollback (`service update --rollback`) is a spec change the control API marks by
// writing update_status {state ROLLBACK_STARTED, spec_version = the new spec version, message};
// it then rolls with the rollback config like an automatic one. Unmarked, it rolls as an update.
//
// Jobs are never rolled (each spec change starts a new job iteration instead).
#pragma once

#include "absl/status/status.h"
#include "manager/orchestrator/tasks.h"
#include "manager/store/tx.h"

namespace shoal::manager::orchestrator {

// A task needs replacing to match its service: its spec differs (a placement-only change the
// task's node still satisfies does not count), or its allocated endpoint differs from the
// service's.
bool TaskDirty(const api::Service& service, const api::Task& task, const api::Node* node);

// One update step for `service_id` (re-read from `tx`; call after the reconcile pass).
absl::Status RollingUpdate(store::Tx& tx, const std::string& service_id, Env& env);

// The update is in flight: RollingUpdate must run again as time passes (delays, monitoring).
bool UpdateInFlight(const api::Service& service);

// Task ids an update keeps running next to their slot's newer task (start-first old tasks);
// the reconcile pass must not stop them.
bool KeptByUpdate(const api::Service& service, const std::string& task_id);

}  // namespace shoal::manager::orchestrator
