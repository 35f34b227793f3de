#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/file.h"
#include "gtest/gtest.h"
#include "kernel/cgroup/cgroup.h"
#include "kernel/cgroup/plan.h"

namespace shoal::kernel {
namespace {

TEST(CgroupPlan, V1WritesInKernelOrder) {
  CgroupResources r;
  r.memory_limit = 64 << 20;
  r.memory_swap = 128 << 20;
  r.cpu_quota_us = 50000;
  r.cpu_shares = 512;
  r.pids_limit = 100;
  r.cpuset_cpus = "0";
  auto w = PlanV1(r);
  ASSERT_TRUE(w.ok()) << w.status();
  std::vector<CgroupWrite> want = {
      {"cpuset", "cpuset.cpus", "0"},
      {"memory", "memory.limit_in_bytes", "67108864"},
      {"memory", "memory.memsw.limit_in_bytes", "134217728"},
      {"cpu", "cpu.shares", "512"},
      {"cpu", "cpu.cfs_period_us", "100000"},
      {"cpu", "cpu.cfs_quota_us", "50000"},
      {"pids", "pids.max", "100"},
  };
  EXPECT_EQ(*w, want);
}

TEST(CgroupPlan, V2ConvertsSwapSharesAndQuota) {
  CgroupResources r;
  r.memory_limit = 64 << 20;
  r.memory_swap = 96 << 20;
  r.cpu_quota_us = 20000;
  r.cpu_period_us = 50000;
  r.cpu_shares = 1024;
  r.pids_limit = 7;
  auto w = PlanV2(r);
  ASSERT_TRUE(w.ok()) << w.status();
  std::vector<CgroupWrite> want = {
      {"", "memory.max", "67108864"},
      {"", "memory.swap.max", "33554432"},  // swap alone = (mem+swap) - mem
      {"", "cpu.weight", "100"},
      {"", "cpu.max", "20000 50000"},
      {"", "pids.max", "7"},
  };
  EXPECT_EQ(*w, want);
  r.memory_swap = -1;
  EXPECT_EQ((*PlanV2(r))[1].value, "max");
}

TEST(CgroupPlan, SharesToWeightMatchesTheQuadraticFit) {
  EXPECT_EQ(SharesToWeight(2), 1u);
  EXPECT_EQ(SharesToWeight(1024), 100u);
  EXPECT_EQ(SharesToWeight(262144), 10000u);
  EXPECT_LT(SharesToWeight(512), 100u);
  EXPECT_GT(SharesToWeight(2048), 100u);
}

TEST(CgroupPlan, ValidationNamesTheField) {
  auto check = [](CgroupResources r, const char* field) {
    auto s = ValidateResources(r);
    EXPECT_TRUE(absl::IsInvalidArgument(s)) << field;
    EXPECT_TRUE(absl::StrContains(s.message(), field)) << s;
  };
  check({.memory_limit = -1}, "resources.memory_limit");
  check({.memory_limit = 1 << 20, .memory_swap = 10}, "resources.memory_swap");
  check({.memory_swap = -1}, "resources.memory_swap");
  check({.cpu_quota_us = 5}, "resources.cpu_quota_us");
  check({.cpu_period_us = 5}, "resources.cpu_period_us");
  check({.cpu_shares = 1}, "resources.cpu_shares");
  check({.pids_limit = 0}, "resources.pids_limit");
  check({.cpuset_cpus = "0-"}, "resources.cpuset_cpus");
  EXPECT_TRUE(ValidateResources({}).ok());
}

TEST(CgroupPath, RejectsEscapes) {
  EXPECT_FALSE(ValidateCgroupPath("../x").ok());
  EXPECT_FALSE(ValidateCgroupPath("/abs").ok());
  EXPECT_FALSE(ValidateCgroupPath("a//b").ok());
  EXPECT_TRUE(ValidateCgroupPath("shoal/c1").ok());
}

// The v2 adapter against a plain directory standing in for the cgroup root: the injectable
// root lets the v2 path be exercised on a v1/hybrid host (the real kernel run is in tests/vm).
TEST(CgroupV2, WritesLimitsUnderAnInjectedRootAndReadsStats) {
  std::string root = ::testing::TempDir() + "/cgv2";
  std::filesystem::remove_all(root);
  std::filesystem::create_directories(root);
  CgroupConfig config{root, CgroupMode::kV2, /*device_filter=*/false};
  CgroupResources r{.memory_limit = 1 << 20, .pids_limit = 5};
  auto cg = Cgroup::Create(config, "shoal/c1", r);
  ASSERT_TRUE(cg.ok()) << cg.status();
  EXPECT_EQ(*base::ReadFile(root + "/shoal/c1/memory.max"), "1048576");
  EXPECT_EQ(*base::ReadFile(root + "/shoal/c1/pids.max"), "5");
  EXPECT_EQ(*base::ReadFile(root + "/shoal/cgroup.subtree_control"), "+io");  // last enabled
  auto again = Cgroup::Create(config, "shoal/c1", r);
  EXPECT_TRUE(absl::IsAlreadyExists(again.status())) << again.status();
  ASSERT_TRUE(base::WriteFileAtomic(root + "/shoal/c1/memory.events",
                                    "low 0\nhigh 0\nmax 3\noom 1\noom_kill 2\n").ok());
  ASSERT_TRUE(base::WriteFileAtomic(root + "/shoal/c1/cpu.stat",
                                    "usage_usec 10\nnr_periods 4\nnr_throttled 3\n"
                                    "throttled_usec 7\n").ok());
  auto stats = (*cg)->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->oom_kills, 2u);
  EXPECT_EQ(stats->cpu_usage_ns, 10000u);
  EXPECT_EQ(stats->cpu_nr_throttled, 3u);
  EXPECT_EQ(stats->memory_limit, 1u << 20);
  ASSERT_TRUE(base::WriteFileAtomic(root + "/shoal/c1/cgroup.procs", "").ok());
  ASSERT_TRUE((*cg)->KillAll().ok());  // no cgroup.kill file: freeze path over an empty list  // no cgroup.kill file: freeze path over an empty list
  std::filesystem::remove_all(root);
}

}  // namespace
}  // namespace shoal::kernel
