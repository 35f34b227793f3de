// The filter pipeline: which nodes can take a task, and why the others cannot.
//
// Filters run in a fixed order and stop at the first that fails: ready/active, resources
// (reservations only), constraints, platform, host ports, max replicas per node. Each failure is
// counted so a pending task can say why: "no suitable node (insufficient resources on 3 nodes;
// scheduling constraints not satisfied on 2 nodes)".
// Not thread-safe.
#pragma once

#include <array>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "api/objects.pb.h"
#include "manager/scheduler/constraint.h"
#include "manager/scheduler/node_info.h"

namespace shoal::manager::scheduler {

enum class Filter { kReady, kResources, kConstraints, kPlatform, kHostPorts, kMaxReplicas };
inline constexpr int kNumFilters = 6;

class Pipeline {
 public:
  // Prepares for `task`. InvalidArgument (naming the field) for constraints or platforms that
  // cannot be parsed; the task then cannot be scheduled anywhere.
  absl::Status SetTask(const api::v1::Task& task);

  // The first filter `node` fails, or -1 when it passes all.
  int Check(const NodeInfo& node) const;
  // Check + record the failure for Explain().
  bool CheckAndRecord(const NodeInfo& node);
  void ResetCounts() { counts_.fill(0); }
  std::string Explain() const;

 private:
  TaskUsage usage_;
  std::vector<Constraint> constraints_;
  std::vector<api::v1::Platform> platforms_;
  uint64_t max_replicas_ = 0;
  std::array<int, kNumFilters> counts_{};
};

// "x86_64" -> "amd64", "aarch64" -> "arm64", lower-case otherwise.
std::string NormalizeArch(const std::string& arch);

}  // namespace shoal::manager::scheduler
