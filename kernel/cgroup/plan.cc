#include "kernel/cgroup/plan.h"

#include <cmath>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "kernel/cgroup/devices.h"

namespace shoal::kernel {
namespace {

absl::Status Bad(absl::string_view field, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("resources.", field, ": ", why));
}

bool ValidCpuList(const std::string& s) {
  if (s.empty()) return true;
  for (char c : s) {
    if (!absl::ascii_isdigit(c) && c != ',' && c != '-') return false;
  }
  return absl::ascii_isdigit(s.front()) && absl::ascii_isdigit(s.back());
}

}  // namespace

absl::Status ValidateResources(const CgroupResources& r) {
  if (r.memory_limit && *r.memory_limit <= 0) return Bad("memory_limit", "must be > 0 bytes");
  if (r.memory_limit && *r.memory_limit < 4096) {
    return Bad("memory_limit", "must be at least 4096 bytes");
  }
  if (r.memory_swap) {
    if (!r.memory_limit) return Bad("memory_swap", "needs memory_limit");
    if (*r.memory_swap != -1 && *r.memory_swap < *r.memory_limit) {
      return Bad("memory_swap", absl::StrCat("must be -1 or >= memory_limit (", *r.memory_limit,
                                             "), got ", *r.memory_swap));
    }
  }
  if (r.cpu_quota_us && *r.cpu_quota_us < 1000) {
    return Bad("cpu_quota_us", "must be >= 1000 microseconds");
  }
  if (r.cpu_period_us && (*r.cpu_period_us < 1000 || *r.cpu_period_us > 1000000)) {
    return Bad("cpu_period_us", "must be between 1000 and 1000000 microseconds");
  }
  if (r.cpu_shares && (*r.cpu_shares < 2 || *r.cpu_shares > 262144)) {
    return Bad("cpu_shares", "must be between 2 and 262144");
  }
  if (r.pids_limit && *r.pids_limit <= 0) return Bad("pids_limit", "must be > 0");
  if (!ValidCpuList(r.cpuset_cpus)) return Bad("cpuset_cpus", "must look like \"0-2,4\"");
  if (!ValidCpuList(r.cpuset_mems)) return Bad("cpuset_mems", "must look like \"0\"");
  return absl::OkStatus();
}

uint64_t SharesToWeight(uint64_t shares) {
  if (shares <= 2) return 1;
  if (shares >= 262144) return 10000;
  double l = std::log2(static_cast<double>(shares));
  double exponent = (l * l + 125 * l) / 612.0 - 7.0 / 34.0;
  return static_cast<uint64_t>(std::ceil(std::pow(10.0, exponent)));
}

const std::vector<std::string>& V1Controllers() {
  static const std::vector<std::string>* c = new std::vector<std::string>{
      "memory", "cpu", "cpuacct", "pids", "cpuset", "freezer", "devices"};
  return *c;
}

absl::StatusOr<std::vector<CgroupWrite>> PlanV1(const CgroupResources& r) {
  if (auto s = ValidateResources(r); !s.ok()) return s;
  std::vector<CgroupWrite> w;
  if (!r.cpuset_cpus.empty()) w.push_back({"cpuset", "cpuset.cpus", r.cpuset_cpus});
  if (!r.cpuset_mems.empty()) w.push_back({"cpuset", "cpuset.mems", r.cpuset_mems});
  if (r.memory_limit) {
    w.push_back({"memory", "memory.limit_in_bytes", absl::StrCat(*r.memory_limit)});
    if (r.memory_swap) {
      w.push_back({"memory", "memory.memsw.limit_in_bytes", absl::StrCat(*r.memory_swap)});
    }
  }
  if (r.cpu_shares) w.push_back({"cpu", "cpu.shares", absl::StrCat(*r.cpu_shares)});
  if (r.cpu_quota_us) {
    w.push_back({"cpu", "cpu.cfs_period_us", absl::StrCat(r.cpu_period_us.value_or(100000))});
    w.push_back({"cpu", "cpu.cfs_quota_us", absl::StrCat(*r.cpu_quota_us)});
  } else if (r.cpu_period_us) {
    w.push_back({"cpu", "cpu.cfs_period_us", absl::StrCat(*r.cpu_period_us)});
  }
  if (r.pids_limit) w.push_back({"pids", "pids.max", absl::StrCat(*r.pids_limit)});
  return w;
}

absl::StatusOr<std::vector<CgroupWrite>> PlanV2(const CgroupResources& r) {
  if (auto s = ValidateResources(r); !s.ok()) return s;
  std::vector<CgroupWrite> w;
  if (!r.cpuset_cpus.empty()) w.push_back({"", "cpuset.cpus", r.cpuset_cpus});
  if (!r.cpuset_mems.empty()) w.push_back({"", "cpuset.mems", r.cpuset_mems});
  if (r.memory_limit) {
    w.push_back({"", "memory.max", absl::StrCat(*r.memory_limit)});
    // OCI swap is memory+swap; v2 limits swap alone (runc ConvertMemorySwapToCgroupV2Value).
    if (r.memory_swap) {
      w.push_back({"", "memory.swap.max",
                   *r.memory_swap == -1 ? "max" : absl::StrCat(*r.memory_swap - *r.memory_limit)});
    }
  }
  if (r.cpu_shares) w.push_back({"", "cpu.weight", absl::StrCat(SharesToWeight(*r.cpu_shares))});
  if (r.cpu_quota_us || r.cpu_period_us) {
    std::string quota = r.cpu_quota_us ? absl::StrCat(*r.cpu_quota_us) : "max";
    w.push_back({"", "cpu.max", absl::StrCat(quota, " ", r.cpu_period_us.value_or(100000))});
  }
  if (r.pids_limit) w.push_back({"", "pids.max", absl::StrCat(*r.pids_limit)});
  return w;
}

std::vector<CgroupWrite> PlanV1Devices() {
  std::vector<CgroupWrite> w;
  for (const DeviceRule& r : DockerDefaultDeviceRules()) {
    w.push_back({"devices", r.allow ? "devices.allow" : "devices.deny", DeviceRuleLine(r)});
  }
  return w;
}

}  // namespace shoal::kernel
