#include "kernel/features.h"

#include <linux/magic.h>

#include "gtest/gtest.h"

namespace shoal::kernel {
namespace {

TEST(FeaturesTest, ClassifiesCgroupModes) {
  EXPECT_EQ(*ClassifyCgroupMode(CGROUP2_SUPER_MAGIC, 0), CgroupMode::kV2);
  EXPECT_EQ(*ClassifyCgroupMode(TMPFS_MAGIC, CGROUP2_SUPER_MAGIC), CgroupMode::kHybrid);
  EXPECT_EQ(*ClassifyCgroupMode(TMPFS_MAGIC, 0), CgroupMode::kV1);
  auto bad = ClassifyCgroupMode(EXT4_SUPER_MAGIC, 0);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(FeaturesTest, ParsesKernelReleases) {
  int major = 0, minor = 0;
  ASSERT_TRUE(ParseKernelRelease("6.18.44-fc-v669", &major, &minor));
  EXPECT_EQ(major, 6);
  EXPECT_EQ(minor, 18);
  ASSERT_TRUE(ParseKernelRelease("6.1.0-28-amd64", &major, &minor));
  EXPECT_EQ(minor, 1);
  ASSERT_TRUE(ParseKernelRelease("5.10", &major, &minor));
  EXPECT_EQ(major, 5);
  EXPECT_FALSE(ParseKernelRelease("garbage", &major, &minor));
  EXPECT_FALSE(ParseKernelRelease("x.y.z", &major, &minor));
}

TEST(FeaturesTest, ProbeOfThisHostIsConsistent) {
  auto f = ProbeFeatures();
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_FALSE(f->kernel_release.empty());
  EXPECT_GT(f->kernel_major, 2);
  // CLONE_INTO_CGROUP needs clone3 and the unified hierarchy.
  if (f->clone_into_cgroup) {
    EXPECT_TRUE(f->clone3);
    EXPECT_EQ(f->cgroup_mode, CgroupMode::kV2);
  }
  EXPECT_NE(f->ToString().find(CgroupModeName(f->cgroup_mode)), std::string::npos);
}

TEST(FeaturesTest, ProbeReportsUnreadableCgroupRoot) {
  ProbeOptions options;
  options.cgroup_root = "/nonexistent-shoal-cgroup-root";
  auto f = ProbeFeatures(options);
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.status().message().find("/nonexistent-shoal-cgroup-root"), std::string::npos);
}

}  // namespace
}  // namespace shoal::kernel
