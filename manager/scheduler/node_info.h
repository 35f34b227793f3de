// The scheduler's view of one node: the node object plus what is already placed on it.
// Not thread-safe: owned by the scheduler's single thread.
#pragma once

#include <cstdint>
#include <deque>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/time/time.h"
#include "api/objects.pb.h"

namespace shoal::manager::scheduler {

// What a placed task consumes on its node.
struct TaskUsage {
  std::string service_id;
  int64_t nano_cpus = 0;
  int64_t memory_bytes = 0;
  std::vector<uint32_t> host_ports;  // (protocol << 16) | published port, host mode only
};

TaskUsage UsageOf(const api::v1::Task& task);

struct NodeInfo {
  api::v1::Node node;
  int64_t available_nano_cpus = 0;
  int64_t available_memory_bytes = 0;
  int active_tasks = 0;
  absl::flat_hash_map<std::string, int> tasks_by_service;
  absl::flat_hash_set<uint32_t> used_host_ports;
  // Recent failures per "<service_id>/<spec_version>", oldest first.
  absl::flat_hash_map<std::string, std::deque<absl::Time>> recent_failures;

  void Reset(const api::v1::Node& n);
  void Add(const TaskUsage& u);
  void Remove(const TaskUsage& u);
  int ServiceTasks(const std::string& service_id) const;
  // SwarmKit: >= 5 failures of this service+version within 5 minutes sorts the node last.
  bool Underweight(const std::string& failure_key, absl::Time now) const;
};

inline constexpr int kMaxFailures = 5;
inline constexpr absl::Duration kFailureWindow = absl::Minutes(5);

}  // namespace shoal::manager::scheduler
