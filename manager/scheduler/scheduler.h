// The scheduling engine: places tasks on nodes (DESIGN.md §6; semantics in swarmkit.md §3).
//
// It keeps its own model of nodes and of the tasks that occupy them (fed by the caller from
// store events), and Schedule() decides placements for a batch of unassigned tasks:
//   - tasks are grouped by (service, spec version); one filtered candidate set and one
//     placement-preference tree is built per group, amortized over all its tasks;
//   - spread: the node with the fewest tasks of the service wins, then the fewest tasks in
//     total, then the node id; a node with >= 5 recent failures of the service version sorts
//     last; hierarchical spread preferences split a group evenly over label values;
//   - resources, host ports and max-replicas are re-checked after every placement;
//   - preassigned tasks (global services: node_id already set) are only validated.
// Decisions are returned, not written: the caller commits them in one store batch and then
// reports them back with Commit (or Forget on a write conflict).
//
// Not thread-safe: one scheduler thread owns it.
#pragma once

#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "api/objects.pb.h"
#include "base/clock.h"
#include "manager/scheduler/node_info.h"

namespace shoal::manager::scheduler {

struct Decision {
  std::string task_id;
  std::string node_id;
};

struct Pending {
  std::string task_id;
  std::string explanation;  // "no suitable node (...)" or the task's spec error
};

struct ScheduleResult {
  std::vector<Decision> assigned;
  std::vector<Pending> pending;
};

class Scheduler {
 public:
  explicit Scheduler(base::Clock& clock) : clock_(clock) {}

  void UpsertNode(const api::v1::Node& node);
  void RemoveNode(const std::string& node_id);

  // A task that occupies a node (assigned..running, desired <= complete). Others are ignored
  // (and removed from accounting if they were counted).
  void UpsertTask(const api::v1::Task& task);
  void RemoveTask(const std::string& task_id);

  // A task of (service, spec version) failed or was rejected on `node_id`.
  void RecordFailure(const std::string& node_id, const std::string& service_id,
                     uint64_t spec_version);

  // Decides placements for `tasks` (state PENDING). Placements are accounted immediately, as if
  // committed; call Forget for those the caller could not write.
  ScheduleResult Schedule(const std::vector<const api::v1::Task*>& tasks);
  void Forget(const std::string& task_id) { RemoveTask(task_id); }

  size_t node_count() const { return nodes_.size(); }
  const NodeInfo* node(const std::string& id) const;

 private:
  struct Placed {
    std::string node_id;
    TaskUsage usage;
  };
  void Place(const std::string& task_id, NodeInfo& node, TaskUsage usage);
  void ScheduleGroup(const std::vector<const api::v1::Task*>& group, ScheduleResult& out);
  void SchedulePreassigned(const api::v1::Task& task, ScheduleResult& out);

  base::Clock& clock_;
  absl::flat_hash_map<std::string, NodeInfo> nodes_;
  absl::flat_hash_map<std::string, Placed> placed_;
};

}  // namespace shoal::manager::scheduler
