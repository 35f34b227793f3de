#include "manager/scheduler/scheduler.h"

#include <algorithm>
#include <map>
#include <queue>

#include "absl/strings/str_cat.h"
#include "manager/scheduler/constraint.h"
#include "manager/scheduler/pipeline.h"

namespace shoal::manager::scheduler {
namespace {

using api::v1::Task;

bool Occupies(const Task& t) {
  return !t.node_id().empty() && t.status().state() >= api::v1::TASK_STATE_ASSIGNED &&
         t.status().state() <= api::v1::TASK_STATE_RUNNING &&
         t.desired_state() <= api::v1::TASK_STATE_COMPLETE;
}

std::string FailureKey(const std::string& service_id, uint64_t version) {
  return absl::StrCat(service_id, "/", version);
}

// One level of the placement-preference tree; leaves hold candidate nodes.
struct Branch {
  std::map<std::string, Branch> children;
  std::vector<NodeInfo*> nodes;
  int Existing(const std::string& service_id) const {
    int n = 0;
    for (const NodeInfo* ni : nodes) n += ni->ServiceTasks(service_id);
    for (const auto& [_, c] : children) n += c.Existing(service_id);
    return n;
  }
};

}  // namespace

void Scheduler::UpsertNode(const api::v1::Node& node) {
  auto [it, inserted] = nodes_.try_emplace(node.id());
  if (inserted) {
    it->second.node = node;
    it->second.available_nano_cpus = node.description().resources().nano_cpus();
    it->second.available_memory_bytes = node.description().resources().memory_bytes();
  } else {
    it->second.Reset(node);
  }
}

void Scheduler::RemoveNode(const std::string& node_id) { nodes_.erase(node_id); }

const NodeInfo* Scheduler::node(const std::string& id) const {
  auto it = nodes_.find(id);
  return it == nodes_.end() ? nullptr : &it->second;
}

void Scheduler::Place(const std::string& task_id, NodeInfo& node, TaskUsage usage) {
  node.Add(usage);
  placed_[task_id] = Placed{node.node.id(), std::move(usage)};
}

void Scheduler::UpsertTask(const Task& task) {
  RemoveTask(task.id());
  if (!Occupies(task)) return;
  auto it = nodes_.find(task.node_id());
  if (it == nodes_.end()) return;
  Place(task.id(), it->second, UsageOf(task));
}

void Scheduler::RemoveTask(const std::string& task_id) {
  auto it = placed_.find(task_id);
  if (it == placed_.end()) return;
  auto n = nodes_.find(it->second.node_id);
  if (n != nodes_.end()) n->second.Remove(it->second.usage);
  placed_.erase(it);
}

void Scheduler::RecordFailure(const std::string& node_id, const std::string& service_id,
                              uint64_t spec_version) {
  auto it = nodes_.find(node_id);
  if (it == nodes_.end()) return;
  auto& q = it->second.recent_failures[FailureKey(service_id, spec_version)];
  absl::Time now = clock_.Now();
  q.push_back(now);
  while (!q.empty() && now - q.front() >= kFailureWindow) q.pop_front();
}

ScheduleResult Scheduler::Schedule(const std::vector<const Task*>& tasks) {
  ScheduleResult out;
  // Group by (service, spec version); one-off tasks (no service) are their own group.
  std::map<std::pair<std::string, uint64_t>, std::vector<const Task*>> groups;
  for (const Task* t : tasks) {
    if (!t->node_id().empty()) {
      SchedulePreassigned(*t, out);
    } else if (t->service_id().empty()) {
      groups[{absl::StrCat("\x01", t->id()), 0}].push_back(t);
    } else {
      groups[{t->service_id(), t->spec_version()}].push_back(t);
    }
  }
  for (auto& [_, group] : groups) ScheduleGroup(group, out);
  return out;
}

void Scheduler::SchedulePreassigned(const Task& task, ScheduleResult& out) {
  Pipeline pipeline;
  if (auto s = pipeline.SetTask(task); !s.ok()) {
    out.pending.push_back({task.id(), std::string(s.message())});
    return;
  }
  auto it = nodes_.find(task.node_id());
  if (it == nodes_.end()) {
    out.pending.push_back({task.id(), absl::StrCat("node ", task.node_id(), " is not known")});
    return;
  }
  if (!pipeline.CheckAndRecord(it->second)) {
    out.pending.push_back({task.id(), pipeline.Explain()});
    return;
  }
  Place(task.id(), it->second, UsageOf(task));
  out.assigned.push_back({task.id(), task.node_id()});
}

void Scheduler::ScheduleGroup(const std::vector<const Task*>& group, ScheduleResult& out) {
  const Task& first = *group.front();
  Pipeline pipeline;
  if (auto s = pipeline.SetTask(first); !s.ok()) {
    for (const Task* t : group) out.pending.push_back({t->id(), std::string(s.message())});
    return;
  }
  std::vector<std::string> prefs;
  for (const auto& p : first.spec().placement().preferences()) {
    if (auto s = ValidateSpreadDescriptor(p.spread_descriptor()); !s.ok()) {
      for (const Task* t : group) out.pending.push_back({t->id(), std::string(s.message())});
      return;
    }
    prefs.push_back(p.spread_descriptor());
  }
  const std::string& service_id = first.service_id();
  const std::string failure_key = FailureKey(service_id, first.spec_version());
  const absl::Time now = clock_.Now();

  // One pass over all nodes builds the candidate tree.
  Branch root;
  for (auto& [_, ni] : nodes_) {
    if (!pipeline.CheckAndRecord(ni)) continue;
    Branch* b = &root;
    for (const auto& d : prefs) b = &b->children[SpreadValue(d, ni.node)];
    b->nodes.push_back(&ni);
  }

  auto worse = [&](const NodeInfo* a, const NodeInfo* b) {  // heap order: true if a is worse
    bool ua = a->Underweight(failure_key, now), ub = b->Underweight(failure_key, now);
    if (ua != ub) return ua;
    int sa = a->ServiceTasks(service_id), sb = b->ServiceTasks(service_id);
    if (sa != sb) return sa > sb;
    if (a->active_tasks != b->active_tasks) return a->active_tasks > b->active_tasks;
    return a->node.id() > b->node.id();
  };

  size_t next = 0;  // index of the next task of `group` to place
  // Places up to `n` tasks on the leaf's nodes; returns how many it placed.
  auto place_on_leaf = [&](Branch& leaf, int n) {
    std::priority_queue<NodeInfo*, std::vector<NodeInfo*>, decltype(worse)> heap(worse,
                                                                                  leaf.nodes);
    int placed = 0;
    while (placed < n && !heap.empty()) {
      NodeInfo* best = heap.top();
      heap.pop();
      if (pipeline.Check(*best) >= 0) continue;  // full now (resources, ports, max replicas)
      const Task* t = group[next++];
      Place(t->id(), *best, UsageOf(*t));
      out.assigned.push_back({t->id(), best->node.id()});
      ++placed;
      heap.push(best);
    }
    leaf.nodes.clear();  // rebuilt below only if needed again
    for (; !heap.empty(); heap.pop()) leaf.nodes.push_back(heap.top());
    return placed;
  };

  // Splits n tasks evenly (counting existing tasks of the service) over the children; children
  // that run out of room are closed and their share re-split among the others.
  std::function<int(Branch&, int)> place = [&](Branch& b, int n) -> int {
    if (b.children.empty()) return place_on_leaf(b, n);
    std::vector<Branch*> open;
    for (auto& [_, c] : b.children) open.push_back(&c);
    int remaining = n;
    while (remaining > 0 && !open.empty()) {
      std::vector<int> existing;
      int total = remaining;
      for (Branch* c : open) {
        existing.push_back(c->Existing(service_id));
        total += existing.back();
      }
      // Branches with fewer tasks get the remainder first.
      std::vector<size_t> order(open.size());
      for (size_t i = 0; i < order.size(); ++i) order[i] = i;
      std::stable_sort(order.begin(), order.end(),
                       [&](size_t x, size_t y) { return existing[x] < existing[y]; });
      int base = total / static_cast<int>(open.size());
      int extra = total % static_cast<int>(open.size());
      std::vector<Branch*> still_open;
      for (size_t k = 0; k < order.size() && remaining > 0; ++k) {
        size_t i = order[k];
        int desired = base + (static_cast<int>(k) < extra ? 1 : 0);
        int share = std::min(remaining, std::max(0, desired - existing[i]));
        int got = share > 0 ? place(*open[i], share) : 0;
        remaining -= got;
        if (got == share) still_open.push_back(open[i]);
      }
      if (still_open.size() == open.size() && remaining > 0) {
        // Everyone took their full share yet tasks remain (rounding): give one to each in turn.
        bool progress = false;
        for (Branch* c : open) {
          if (remaining == 0) break;
          int got = place(*c, 1);
          remaining -= got;
          progress |= got > 0;
        }
        if (!progress) break;
      }
      open = std::move(still_open);
    }
    return n - remaining;
  };

  place(root, static_cast<int>(group.size()));
  if (next < group.size()) {
    // Re-evaluate against the state after placement for an accurate explanation.
    pipeline.ResetCounts();
    for (auto& [_, ni] : nodes_) pipeline.CheckAndRecord(ni);
    std::string why = pipeline.Explain();
    for (; next < group.size(); ++next) out.pending.push_back({group[next]->id(), why});
  }
}

}  // namespace shoal::manager::scheduler
