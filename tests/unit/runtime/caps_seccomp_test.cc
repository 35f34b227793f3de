#include <linux/capability.h>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "kernel/caps/caps.h"
#include "kernel/seccomp/seccomp.h"

namespace shoal::kernel {
namespace {

TEST(Caps, DockerDefaultIsTheFourteen) {
  EXPECT_EQ(DockerDefaultCaps(), 0xa80425fbULL);
  EXPECT_EQ(CapNames(DockerDefaultCaps()).size(), 14u);
}

TEST(Caps, ParsesNamesInAnyCase) {
  EXPECT_EQ(*ParseCapName("CAP_NET_ADMIN"), CAP_NET_ADMIN);
  EXPECT_EQ(*ParseCapName("net_admin"), CAP_NET_ADMIN);
  EXPECT_EQ(*ParseCapName("Sys_Admin"), CAP_SYS_ADMIN);
  EXPECT_FALSE(ParseCapName("CAP_FLY").ok());
  EXPECT_FALSE(ParseCapName("12").ok());
  EXPECT_EQ(CapName(CAP_KILL), "CAP_KILL");
}

TEST(Caps, ComputeAddDropAll) {
  int last = LastCap();
  auto caps = ComputeCaps(DockerDefaultCaps(), {"NET_ADMIN"}, {"CHOWN"}, last);
  ASSERT_TRUE(caps.ok());
  EXPECT_TRUE(*caps & (1ULL << CAP_NET_ADMIN));
  EXPECT_FALSE(*caps & (1ULL << CAP_CHOWN));
  EXPECT_EQ(*ComputeCaps(DockerDefaultCaps(), {}, {"ALL"}, last), 0u);
  EXPECT_EQ(*ComputeCaps(DockerDefaultCaps(), {"KILL"}, {"ALL"}, last), 1ULL << CAP_KILL);
  EXPECT_EQ(*ComputeCaps(0, {"all"}, {}, last), (1ULL << (last + 1)) - 1);
  auto bad = ComputeCaps(0, {}, {"KILL", "NOPE"}, last);
  EXPECT_TRUE(absl::StrContains(bad.status().message(), "cap_drop[1]")) << bad.status();
}

TEST(Seccomp, CompilesWithEnosysPrefix) {
  auto prog = CompileDockerDefault(DockerDefaultCaps());
  ASSERT_TRUE(prog.ok()) << prog.status();
  EXPECT_GT(prog->insns.size(), 100u);
  EXPECT_GT(prog->max_named_syscall, 400);  // the profile names syscalls up to the 4xx range
}

TEST(Seccomp, SysAdminChangesTheProgram) {
  auto plain = CompileDockerDefault(DockerDefaultCaps());
  auto admin = CompileDockerDefault(DockerDefaultCaps() | (1ULL << CAP_SYS_ADMIN));
  ASSERT_TRUE(plain.ok() && admin.ok());
  EXPECT_NE(plain->insns.size(), admin->insns.size());
}

TEST(Seccomp, CacheCompilesOncePerCapSet) {
  SeccompCache cache;
  auto a = cache.DockerDefault(DockerDefaultCaps());
  auto b = cache.DockerDefault(DockerDefaultCaps());
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->get(), b->get());
  EXPECT_EQ(cache.compilations(), 1);
  ASSERT_TRUE(cache.DockerDefault(0).ok());
  EXPECT_EQ(cache.compilations(), 2);
}

}  // namespace
}  // namespace shoal::kernel
