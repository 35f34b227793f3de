#include "manager/scheduler/node_info.h"

namespace shoal::manager::scheduler {

using api::v1::PortConfig;

TaskUsage UsageOf(const api::v1::Task& task) {
  TaskUsage u;
  u.service_id = task.service_id();
  const auto& r = task.spec().resources().reservations();
  u.nano_cpus = r.nano_cpus();
  u.memory_bytes = r.memory_bytes();
  for (const auto& p : task.endpoint().ports()) {
    if (p.publish_mode() == PortConfig::PUBLISH_MODE_HOST && p.published_port() != 0) {
      u.host_ports.push_back((static_cast<uint32_t>(p.protocol()) << 16) | p.published_port());
    }
  }
  return u;
}

void NodeInfo::Reset(const api::v1::Node& n) {
  // Keep placed-task accounting; recompute capacity from the new description.
  int64_t used_cpu = node.description().resources().nano_cpus() - available_nano_cpus;
  int64_t used_mem = node.description().resources().memory_bytes() - available_memory_bytes;
  node = n;
  available_nano_cpus = n.description().resources().nano_cpus() - used_cpu;
  available_memory_bytes = n.description().resources().memory_bytes() - used_mem;
}

void NodeInfo::Add(const TaskUsage& u) {
  available_nano_cpus -= u.nano_cpus;
  available_memory_bytes -= u.memory_bytes;
  ++active_tasks;
  ++tasks_by_service[u.service_id];
  for (uint32_t p : u.host_ports) used_host_ports.insert(p);
}

void NodeInfo::Remove(const TaskUsage& u) {
  available_nano_cpus += u.nano_cpus;
  available_memory_bytes += u.memory_bytes;
  --active_tasks;
  auto it = tasks_by_service.find(u.service_id);
  if (it != tasks_by_service.end() && --it->second <= 0) tasks_by_service.erase(it);
  for (uint32_t p : u.host_ports) used_host_ports.erase(p);
}

int NodeInfo::ServiceTasks(const std::string& service_id) const {
  auto it = tasks_by_service.find(service_id);
  return it == tasks_by_service.end() ? 0 : it->second;
}

bool NodeInfo::Underweight(const std::string& failure_key, absl::Time now) const {
  auto it = recent_failures.find(failure_key);
  if (it == recent_failures.end()) return false;
  int n = 0;
  for (absl::Time t : it->second) {
    if (now - t < kFailureWindow) ++n;
  }
  return n >= kMaxFailures;
}

}  // namespace shoal::manager::scheduler
