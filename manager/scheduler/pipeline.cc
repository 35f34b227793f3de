#include "manager/scheduler/pipeline.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace shoal::manager::scheduler {

using api::v1::NodeSpec;
using api::v1::NodeStatus;

std::string NormalizeArch(const std::string& arch) {
  std::string a = absl::AsciiStrToLower(arch);
  if (a == "x86_64") return "amd64";
  if (a == "aarch64") return "arm64";
  return a;
}

namespace {

absl::Status SetTaskConstraints(const api::v1::Task& task, std::vector<Constraint>* out) {
  std::vector<std::string> exprs(task.spec().placement().constraints().begin(),
                                 task.spec().placement().constraints().end());
  auto parsed = ParseConstraints(exprs);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("placement.", parsed.status().message()));
  }
  *out = *std::move(parsed);
  return absl::OkStatus();
}

}  // namespace

absl::Status Pipeline::SetTask(const api::v1::Task& task) {
  usage_ = UsageOf(task);
  max_replicas_ = task.spec().placement().max_replicas();
  platforms_.assign(task.spec().placement().platforms().begin(),
                    task.spec().placement().platforms().end());
  ResetCounts();
  return SetTaskConstraints(task, &constraints_);
}

int Pipeline::Check(const NodeInfo& n) const {
  if (n.node.status().state() != NodeStatus::STATE_READY ||
      n.node.spec().availability() != NodeSpec::AVAILABILITY_ACTIVE) {
    return static_cast<int>(Filter::kReady);
  }
  if ((usage_.nano_cpus > 0 && usage_.nano_cpus > n.available_nano_cpus) ||
      (usage_.memory_bytes > 0 && usage_.memory_bytes > n.available_memory_bytes)) {
    return static_cast<int>(Filter::kResources);
  }
  if (!NodeMatchesAll(constraints_, n.node)) return static_cast<int>(Filter::kConstraints);
  if (!platforms_.empty()) {
    const auto& np = n.node.description().platform();
    bool ok = std::any_of(platforms_.begin(), platforms_.end(), [&](const auto& p) {
      bool arch_ok = p.architecture().empty() || np.architecture().empty() ||
                     NormalizeArch(p.architecture()) == NormalizeArch(np.architecture());
      bool os_ok = p.os().empty() || np.os().empty() ||
                   absl::AsciiStrToLower(p.os()) == absl::AsciiStrToLower(np.os());
      return arch_ok && os_ok;
    });
    if (!ok) return static_cast<int>(Filter::kPlatform);
  }
  for (uint32_t p : usage_.host_ports) {
    if (n.used_host_ports.contains(p)) return static_cast<int>(Filter::kHostPorts);
  }
  if (max_replicas_ > 0 &&
      static_cast<uint64_t>(n.ServiceTasks(usage_.service_id)) >= max_replicas_) {
    return static_cast<int>(Filter::kMaxReplicas);
  }
  return -1;
}

bool Pipeline::CheckAndRecord(const NodeInfo& n) {
  int f = Check(n);
  if (f >= 0) ++counts_[f];
  return f < 0;
}

std::string Pipeline::Explain() const {
  static constexpr const char* kWhat[kNumFilters] = {
      "not available for new tasks",          "insufficient resources",
      "scheduling constraints not satisfied", "unsupported platform",
      "host-mode port already in use",        "max replicas per node reached"};
  std::vector<std::pair<int, int>> order;  // (count, filter)
  for (int i = 0; i < kNumFilters; ++i) {
    if (counts_[i] > 0) order.push_back({counts_[i], i});
  }
  if (order.empty()) return "no suitable node (no nodes in the cluster)";
  std::stable_sort(order.begin(), order.end(),
                   [](const auto& a, const auto& b) { return a.first > b.first; });
  std::vector<std::string> parts;
  for (auto [count, f] : order) {
    parts.push_back(absl::StrCat(kWhat[f], " on ", count, count == 1 ? " node" : " nodes"));
  }
  return absl::StrCat("no suitable node (", absl::StrJoin(parts, "; "), ")");
}

}  // namespace shoal::manager::scheduler
