#include "agent/container_spec.h"

#include <signal.h>

#include "gtest/gtest.h"

namespace shoal::agent {
namespace {

class ContainerSpecTest : public ::testing::Test {
 protected:
  ContainerSpecTest() {
    task_.set_id("abcdefghijklmnopqrstuvwxy");
    image_.entrypoint = {"/entry"};
    image_.cmd = {"default"};
    image_.env = {"PATH=/bin", "A=image"};
    image_.working_dir = "/srv";
    in_.task = &task_;
    in_.image = &image_;
    in_.lower_dirs = {"/l/top", "/l/bottom"};
    in_.rootfs_dir = "/d/rootfs";
    in_.upper_dir = "/d/upper";
    in_.work_dir = "/d/work";
    in_.volumes_dir = "/v";
    in_.passwd = "root:x:0:0::/root:/bin/sh\nweb:x:33:34::/srv:/bin/false\n";
    in_.group = "root:x:0:\nstaff:x:50:\n";
  }
  api::ContainerSpec& c() { return *task_.mutable_spec()->mutable_container(); }

  api::Task task_;
  runtime::images::ImageConfig image_;
  SpecInputs in_;
};

TEST_F(ContainerSpecTest, ImageDefaultsAndDockerOverrideRules) {
  auto spec = BuildContainerSpec(in_);
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->id, task_.id());
  EXPECT_EQ(spec->hostname, "abcdefghijkl");
  EXPECT_EQ(spec->process.args, (std::vector<std::string>{"/entry", "default"}));
  EXPECT_EQ(spec->process.cwd, "/srv");
  EXPECT_EQ(spec->overlay.lower_dirs, in_.lower_dirs);
  EXPECT_EQ(spec->overlay.upper_dir, "/d/upper");

  c().add_args("x");  // args replace cmd, keep the entrypoint
  spec = BuildContainerSpec(in_);
  EXPECT_EQ(spec->process.args, (std::vector<std::string>{"/entry", "x"}));
  c().add_command("/bin/sh");  // command replaces the entrypoint
  spec = BuildContainerSpec(in_);
  EXPECT_EQ(spec->process.args, (std::vector<std::string>{"/bin/sh", "x"}));
  c().clear_args();  // command alone drops the image's cmd
  spec = BuildContainerSpec(in_);
  EXPECT_EQ(spec->process.args, (std::vector<std::string>{"/bin/sh"}));
}

TEST_F(ContainerSpecTest, EnvMergesByNameAndUserResolvesFromTheImage) {
  c().add_env("A=task");
  c().add_env("B=1");
  c().set_user("web:staff");
  auto spec = BuildContainerSpec(in_);
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->process.env, (std::vector<std::string>{"PATH=/bin", "A=task", "B=1"}));
  EXPECT_EQ(spec->process.uid, 33u);
  EXPECT_EQ(spec->process.gid, 50u);
  c().set_user("web");
  spec = BuildContainerSpec(in_);
  EXPECT_EQ(spec->process.gid, 34u);  // primary group from passwd
  c().set_user("1000:1000");
  spec = BuildContainerSpec(in_);
  EXPECT_EQ(spec->process.uid, 1000u);
  EXPECT_EQ(spec->process.gid, 1000u);
  c().set_user("nobody");
  spec = BuildContainerSpec(in_);
  ASSERT_FALSE(spec.ok());
  EXPECT_NE(spec.status().message().find("container.user"), absl::string_view::npos);
}

TEST_F(ContainerSpecTest, ResourcesMountsAndLimits) {
  auto* r = task_.mutable_spec()->mutable_resources()->mutable_limits();
  r->set_nano_cpus(500000000);
  r->set_memory_bytes(64 << 20);
  c().set_pids_limit(50);
  auto* m = c().add_mounts();
  m->set_type(api::Mount::TYPE_BIND);
  m->set_source("/host");
  m->set_target("/data");
  m->set_readonly(true);
  auto* v = c().add_mounts();
  v->set_type(api::Mount::TYPE_VOLUME);
  v->set_source("vol");
  v->set_target("/vol");
  auto* t = c().add_mounts();
  t->set_type(api::Mount::TYPE_TMPFS);
  t->set_target("/scratch");
  t->set_tmpfs_size_bytes(1 << 20);
  auto* u = c().add_ulimits();
  u->set_name("nofile");
  u->set_soft(100);
  u->set_hard(200);
  auto spec = BuildContainerSpec(in_);
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(*spec->resources.cpu_quota_us, 50000);
  EXPECT_EQ(*spec->resources.cpu_period_us, 100000u);
  EXPECT_EQ(*spec->resources.memory_limit, 64 << 20);
  EXPECT_EQ(*spec->resources.pids_limit, 50);
  ASSERT_EQ(spec->mounts.size(), 3u);
  EXPECT_EQ(spec->mounts[0].source, "/host");
  EXPECT_EQ(spec->mounts[0].options, (std::vector<std::string>{"rbind", "ro"}));
  EXPECT_EQ(spec->mounts[1].source, "/v/vol/_data");
  EXPECT_EQ(spec->mounts[2].type, "tmpfs");
  ASSERT_EQ(spec->process.rlimits.size(), 1u);
  EXPECT_EQ(spec->process.rlimits[0].hard, 200u);
}

TEST_F(ContainerSpecTest, BadFieldsAreNamed) {
  auto* m = c().add_mounts();
  m->set_type(api::Mount::TYPE_BIND);
  m->set_source("relative");
  m->set_target("/x");
  auto spec = BuildContainerSpec(in_);
  ASSERT_FALSE(spec.ok());
  EXPECT_NE(spec.status().message().find("container.mounts[0].source"), absl::string_view::npos)
      << spec.status();
  c().clear_mounts();
  image_.entrypoint.clear();
  image_.cmd.clear();
  spec = BuildContainerSpec(in_);
  ASSERT_FALSE(spec.ok());
  EXPECT_NE(spec.status().message().find("container.command"), absl::string_view::npos);
}

TEST(ParseSignal, NamesAndNumbers) {
  EXPECT_EQ(*ParseSignal("SIGTERM"), SIGTERM);
  EXPECT_EQ(*ParseSignal("kill"), SIGKILL);
  EXPECT_EQ(*ParseSignal("2"), 2);
  EXPECT_FALSE(ParseSignal("SIGNOPE").ok());
  EXPECT_FALSE(ParseSignal("0").ok());
}

}  // namespace
}  // namespace shoal::agent
