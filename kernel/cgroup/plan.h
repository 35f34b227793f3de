// Pure cgroup planning: container resources -> the exact control-file writes for cgroup v1 or
// v2 (runtime.md §2). No I/O; exhaustively unit-tested.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace shoal::kernel {

struct CgroupResources {
  std::optional<int64_t> memory_limit;   // bytes, > 0
  std::optional<int64_t> memory_swap;    // memory+swap bytes (OCI/Docker); -1 = unlimited swap
  std::optional<int64_t> cpu_quota_us;   // per period; > 0
  std::optional<uint64_t> cpu_period_us; // 1000..1000000, default 100000
  std::optional<uint64_t> cpu_shares;    // v1 shares 2..262144 (converted to cpu.weight on v2)
  std::optional<int64_t> pids_limit;     // > 0
  std::string cpuset_cpus;               // "0-1,3"
  std::string cpuset_mems;
};

// INVALID_ARGUMENT naming the field ("resources.memory_swap: must be >= memory_limit ...").
absl::Status ValidateResources(const CgroupResources& r);

struct CgroupWrite {
  std::string controller;  // v1 hierarchy name ("memory"); empty on v2
  std::string file;        // "memory.limit_in_bytes"
  std::string value;
  bool operator==(const CgroupWrite&) const = default;
};

// Writes in the order they must happen (period before quota, limit before memsw, cpuset
// before tasks join). Validates first.
absl::StatusOr<std::vector<CgroupWrite>> PlanV1(const CgroupResources& r);
absl::StatusOr<std::vector<CgroupWrite>> PlanV2(const CgroupResources& r);

// Docker's v1 device allowlist (deny all; null zero full random urandom tty console ptmx,
// pts; mknod of anything).
std::vector<CgroupWrite> PlanV1Devices();

// cpu.shares -> cpu.weight, the quadratic fit runc >= 1.3.2 and crun use (1024 -> 100).
uint64_t SharesToWeight(uint64_t shares);

// v1 controllers a container cgroup is created in.
const std::vector<std::string>& V1Controllers();

}  // namespace shoal::kernel
