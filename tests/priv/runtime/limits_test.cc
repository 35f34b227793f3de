// cgroup limits observed through their effects: OOM kill, pids limit, CPU throttling; stop
// with a grace period.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "tests/priv/runtime/fixture.h"

namespace shoal::runtime::testing {
namespace {

TEST_F(RuntimeTest, AllocatingTwiceTheMemoryLimitIsOomKilled) {
  ContainerSpec spec = Spec({"shoal-probe", "alloc", "64"});
  spec.resources.memory_limit = 32 << 20;
  spec.resources.memory_swap = 32 << 20;  // no swap
  auto out = Run(spec);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_TRUE(out->exit.oom_killed) << out->out;
  EXPECT_EQ(out->exit.signal, SIGKILL);
  EXPECT_EQ(out->exit.code, 137);
  EXPECT_FALSE(absl::StrContains(out->out, "allocated=64"));
}

TEST_F(RuntimeTest, NormalExitIsNotReportedAsOom) {
  ContainerSpec spec = Spec({"shoal-probe", "alloc", "8"});
  spec.resources.memory_limit = 64 << 20;
  auto out = Run(spec);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_FALSE(out->exit.oom_killed);
  EXPECT_EQ(out->exit.code, 0);
}

TEST_F(RuntimeTest, PidsLimitIsEnforced) {
  ContainerSpec spec = Spec({"shoal-probe", "forks", "40"});
  spec.resources.pids_limit = 10;
  auto out = Run(spec);
  ASSERT_TRUE(out.ok()) << out.status();
  auto m = Parse(out->out);
  int forks = 0;
  ASSERT_TRUE(absl::SimpleAtoi(m["forks_ok"], &forks)) << out->out;
  EXPECT_EQ(forks, 9);  // PID 1 + 9 children = pids.max
  EXPECT_EQ(m["fork_error"], "EAGAIN");
}

TEST_F(RuntimeTest, CpuQuotaThrottles) {
  ContainerSpec spec = Spec({"shoal-probe", "spin", "400"});
  spec.resources.cpu_quota_us = 10000;  // 10% of one CPU
  spec.resources.cpu_period_us = 100000;
  auto c = runtime_->Create(spec, {});
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_TRUE((*c)->Start().ok());
  auto exit = (*c)->Wait();
  ASSERT_TRUE(exit.ok());
  EXPECT_EQ(exit->code, 0);
  auto stats = (*c)->Stats();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_GT(stats->cpu_nr_throttled, 0u);
  EXPECT_GT(stats->cpu_usage_ns, 0u);
  ASSERT_TRUE((*c)->Delete().ok());
}

TEST_F(RuntimeTest, StopDeliversTheSignalToAHandler) {
  int p[2];
  ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
  base::UniqueFd r(p[0]), w(p[1]);
  auto c = runtime_->Create(Spec({"shoal-probe", "trap", "3"}), Stdio{-1, w.get(), -1});
  w.Reset();
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_TRUE((*c)->Start().ok());
  char buf[16];
  ASSERT_GT(read(r.get(), buf, sizeof(buf)), 0);  // "trapping": the handler is installed
  auto exit = (*c)->Stop(SIGTERM, absl::Seconds(60));
  ASSERT_TRUE(exit.ok()) << exit.status();
  EXPECT_EQ(exit->code, 3);
  EXPECT_EQ(exit->signal, 0);
  ASSERT_TRUE((*c)->Delete().ok());
}

TEST_F(RuntimeTest, StopKillsTheCgroupAfterTheGracePeriod) {
  // sleep as PID 1 has no SIGTERM handler, so SIGTERM is ignored inside its pid namespace.
  auto c = runtime_->Create(Spec({"sh", "-c", "sleep 1000 & sleep 1000"}), {});
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_TRUE((*c)->Start().ok());
  const absl::Duration grace = absl::Milliseconds(300);
  absl::Time start = absl::Now();
  auto exit = (*c)->Stop(SIGTERM, grace);
  ASSERT_TRUE(exit.ok()) << exit.status();
  EXPECT_GE(absl::Now() - start, grace);
  EXPECT_EQ(exit->signal, SIGKILL);
  EXPECT_FALSE(exit->oom_killed);
  auto pids = (*c)->cgroup().Pids();
  ASSERT_TRUE(pids.ok());
  EXPECT_TRUE(pids->empty());
  ASSERT_TRUE((*c)->Delete().ok());
}

}  // namespace
}  // namespace shoal::runtime::testing

namespace shoal::runtime::testing {
namespace {

TEST_F(RuntimeTest, InitReapsOrphansAndPassesTheExitCode) {
  // Without an init the probe is PID 1 and never reaps: its orphans stay zombies.
  auto bare = Run(Spec({"shoal-probe", "orphans", "5"}));
  ASSERT_TRUE(bare.ok()) << bare.status();
  EXPECT_EQ(Parse(bare->out)["orphan_zombies"], "5") << bare->out;
  // With shoal-init as PID 1 every orphan is reaped.
  ContainerSpec spec = Spec({"shoal-probe", "orphans", "5"});
  spec.init_path = SHOAL_INIT_PATH;
  auto with_init = Run(spec);
  ASSERT_TRUE(with_init.ok()) << with_init.status();
  EXPECT_EQ(Parse(with_init->out)["orphan_zombies"], "0") << with_init->out;
  spec = Spec({"sh", "-c", "echo pid1=$(cat /proc/1/cmdline | tr '\\0' ' '); exit 9"});
  spec.init_path = SHOAL_INIT_PATH;
  auto code = Run(spec);
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(code->exit.code, 9);
  EXPECT_TRUE(absl::StrContains(code->out, "pid1=/dev/init -- sh")) << code->out;
}

}  // namespace
}  // namespace shoal::runtime::testing
