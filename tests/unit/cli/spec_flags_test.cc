#include "cli/spec_flags.h"

#include "absl/strings/match.h"
#include "gtest/gtest.h"

namespace shoal::cli {
namespace {

TEST(SpecFlags, SizesCpusDurations) {
  EXPECT_EQ(*ParseBytes("--limit-memory", "512M"), 512ll << 20);
  EXPECT_EQ(*ParseBytes("--limit-memory", "1g"), 1ll << 30);
  EXPECT_EQ(*ParseBytes("--limit-memory", "4096"), 4096);
  auto bad = ParseBytes("--limit-memory", "12x");
  ASSERT_FALSE(bad.ok());
  EXPECT_TRUE(absl::StartsWith(bad.status().message(), "--limit-memory: \"12x\""))
      << bad.status();
  EXPECT_EQ(*ParseNanoCpus("--limit-cpu", "0.5"), 500000000);
  EXPECT_FALSE(ParseNanoCpus("--limit-cpu", "-1").ok());
  EXPECT_EQ(*ParseDuration("--update-delay", "1m30s"), absl::Seconds(90));
  EXPECT_EQ(*ParseDuration("--update-delay", "0"), absl::ZeroDuration());
  EXPECT_FALSE(ParseDuration("--update-delay", "soon").ok());
}

TEST(SpecFlags, Publish) {
  auto p = ParsePublish("--publish", "8080:80/udp");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->published_port(), 8080u);
  EXPECT_EQ(p->target_port(), 80u);
  EXPECT_EQ(p->protocol(), api::PortConfig::PROTOCOL_UDP);
  p = ParsePublish("--publish", "published=9000,target=90,mode=host");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->publish_mode(), api::PortConfig::PUBLISH_MODE_HOST);
  EXPECT_EQ(p->target_port(), 90u);
  EXPECT_FALSE(ParsePublish("--publish", "70000:80").ok());
  auto bad = ParsePublish("--publish", "published=1,color=red");
  ASSERT_FALSE(bad.ok());
  EXPECT_TRUE(absl::StrContains(bad.status().message(), "color")) << bad.status();
}

TEST(SpecFlags, BuildServiceSpec) {
  ServiceFlags f;
  f.name = "web";
  f.replicas = 3;
  f.replicas_set = true;
  f.image = "busybox";
  f.args = {"sleep", "1000"};
  f.env = {"A=1"};
  f.constraints = {"node.role==manager"};
  f.publish = {"8080:80"};
  f.networks = {"front"};
  f.limit_memory = "64m";
  f.limit_cpu = "1.5";
  f.update_parallelism = 2;
  f.update_parallelism_set = true;
  f.update_delay = "10s";
  f.restart_condition = "on-failure";
  auto spec = BuildServiceSpec(f);
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->annotations().name(), "web");
  EXPECT_EQ(spec->replicated().replicas(), 3u);
  EXPECT_EQ(spec->task().container().args_size(), 2);
  EXPECT_EQ(spec->task().container().env(0), "A=1");
  EXPECT_EQ(spec->task().placement().constraints(0), "node.role==manager");
  EXPECT_EQ(spec->endpoint().ports(0).target_port(), 80u);
  EXPECT_EQ(spec->task().networks(0).target(), "front");
  EXPECT_EQ(spec->task().resources().limits().memory_bytes(), 64ll << 20);
  EXPECT_EQ(spec->task().resources().limits().nano_cpus(), 1500000000);
  EXPECT_EQ(spec->update().parallelism(), 2u);
  EXPECT_EQ(spec->update().delay().seconds(), 10);
  EXPECT_EQ(spec->task().restart().condition(), api::RestartPolicy::CONDITION_ON_FAILURE);

  f.mode = "global";
  auto global = BuildServiceSpec(f);
  ASSERT_FALSE(global.ok());
  EXPECT_TRUE(absl::StartsWith(global.status().message(), "--replicas")) << global.status();
  f.replicas_set = false;
  ASSERT_TRUE(BuildServiceSpec(f).ok());
  EXPECT_TRUE(BuildServiceSpec(f)->has_global());
  f.mode = "sometimes";
  EXPECT_TRUE(absl::StartsWith(BuildServiceSpec(f).status().message(), "--mode"));
  f.mode = "";
  f.restart_condition = "always";
  EXPECT_TRUE(absl::StartsWith(BuildServiceSpec(f).status().message(), "--restart-condition"));
}

TEST(SpecFlags, ServiceUpdate) {
  ServiceFlags f;
  f.image = "app:1";
  f.env = {"A=1", "B=2"};
  f.publish = {"8080:80"};
  f.constraints = {"node.role==worker"};
  auto spec = BuildServiceSpec(f);
  ASSERT_TRUE(spec.ok());
  ServiceUpdateFlags u;
  u.set.image = "app:2";
  u.set.replicas = 5;
  u.set.replicas_set = true;
  u.env_add = {"A=9"};
  u.env_rm = {"B"};
  u.publish_rm = {"80"};
  u.publish_add = {"9090:90"};
  u.constraint_rm = {"node.role==worker"};
  u.force = true;
  ASSERT_TRUE(ApplyServiceUpdate(u, *spec).ok());
  EXPECT_EQ(spec->task().container().image(), "app:2");
  EXPECT_EQ(spec->replicated().replicas(), 5u);
  ASSERT_EQ(spec->task().container().env_size(), 1);
  EXPECT_EQ(spec->task().container().env(0), "A=9");
  ASSERT_EQ(spec->endpoint().ports_size(), 1);
  EXPECT_EQ(spec->endpoint().ports(0).target_port(), 90u);
  EXPECT_EQ(spec->task().placement().constraints_size(), 0);
  EXPECT_EQ(spec->task().force_update(), 1u);
}

}  // namespace
}  // namespace shoal::cli
