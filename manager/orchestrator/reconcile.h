// Orchestration passes: each brings one service's tasks in line with its spec inside a store
// transaction (semantics in swarmkit.md §4; departures noted per function). They only write
// desired states and new tasks; the allocator, scheduler and agents move observed states.
//
// All functions run inside MemoryStore::Update/Batch and act only through the Tx. Errors are
// the Tx's (a conflicting concurrent write aborts the transaction; the caller retries).
#pragma once

#include "absl/status/status.h"
#include "manager/orchestrator/tasks.h"
#include "manager/store/tx.h"

namespace shoal::manager::orchestrator {

// A node can run tasks: it exists, is not DOWN and is not being drained.
bool NodeUsable(const api::Node* node);

// Replicated services: exactly `replicas` runnable slots.
//  - a runnable task whose node is gone, DOWN or DRAIN is shut down and replaced in its slot
//    (immediately: no restart delay when the node is the cause);
//  - a finished task whose restart policy allows it is shut down and replaced (after the
//    restart delay); if the policy forbids it, the slot keeps its finished task;
//  - missing slots are created with the lowest free slot numbers;
//  - surplus slots are removed (desired REMOVE) preferring tasks that are not running, then
//    the most crowded placement-preference branch at every level, then the most crowded node,
//    then the highest slot: scale-down keeps the spread (SwarmKit ignores preferences here,
//    moby/swarmkit#2320).
absl::Status ReconcileReplicated(store::Tx& tx, const api::Service& service, Env& env);

// Replicated jobs (called by ReconcileReplicated): run tasks to completion in distinct slots,
// at most `max_concurrent` (default 1) at once, until `total_completions` (default
// max_concurrent) slots have COMPLETEd. The job iteration is the service's spec version: an
// update re-runs the job, and tasks of older iterations get desired REMOVE. Failed tasks
// restart in their slot per the restart policy (ANY acts as ON_FAILURE); a slot whose restarts
// are exhausted stays failed and its completion is not retried elsewhere.
absl::Status ReconcileReplicatedJob(store::Tx& tx, const api::Service& service, Env& env);

// Global services: one runnable task on every usable node that is ACTIVE and matches the
// service's constraints; tasks on nodes that no longer qualify are shut down; finished tasks
// restart on their node per the restart policy. Paused nodes keep their task, get no new one.
// Global jobs: one COMPLETE task per qualifying node and job iteration.
absl::Status ReconcileGlobal(store::Tx& tx, const api::Service& service, Env& env);

// Never moves a desired state backwards.
absl::Status SetDesired(store::Tx& tx, const api::Task& t, api::TaskState desired);

// Shuts `t` down and creates its replacement when its node is lost (immediately), or when it
// finished and its restart policy allows (after the restart delay). Returns the replacement
// (already created in `tx`), or null when the slot keeps `t` (healthy, still starting, or
// finished with restarts forbidden).
absl::StatusOr<std::shared_ptr<const api::Task>> RestartIfNeeded(
    store::Tx& tx, const api::Service& service, const std::shared_ptr<const api::Task>& t,
    const std::vector<std::shared_ptr<const api::Task>>& history, Env& env);

// A deleted service's tasks: desired REMOVE for all that are still runnable.
absl::Status RemoveServiceTasks(store::Tx& tx, const std::string& service_id);

// Constraint enforcer: tasks placed on `node_id` (ASSIGNED..RUNNING, still wanted) whose
// placement constraints the node no longer satisfies (a label removed, a role changed), or
// whose reservations no longer fit the node's resources, get desired SHUTDOWN with the reason
// in status.err; their orchestrator then replaces them elsewhere. Reservations are freed
// taking non-running tasks first, then the newest.
absl::Status EnforceNodeConstraints(store::Tx& tx, const std::string& node_id);

// Restart-delayed tasks (desired READY, start_after <= now) become desired RUNNING.
absl::Status StartDelayedTasks(store::Tx& tx, absl::Time now);

// Task history: keeps at most `retention` finished tasks per slot (replicated) or per node
// (global), deleting the oldest; deletes desired-REMOVE tasks once they have stopped or never
// reached a node; deletes tasks whose service is gone once stopped. retention < 0 keeps all;
// with restart.max_attempts > 0 at least max_attempts + 1 are kept (the attempt count needs
// them).
absl::Status ReapTasks(store::Tx& tx, const std::string& service_id, int64_t retention);

}  // namespace shoal::manager::orchestrator
