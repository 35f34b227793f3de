// The lab harness itself: hosts reach each other over the underlay, and nothing is left behind.
#include "tests/lab/lab.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include "gtest/gtest.h"
#include "tests/testing/priv.h"

namespace shoal::lab {
namespace {

LabOptions Options() {
  LabOptions o;
  o.prefix = "sn-lt-";
  o.hosts = 3;
  o.outside = true;
  return o;
}

int CountOurNetns(const LabOptions& o) {
  kernel::BindMountNetnsStore store(o.netns_dir);
  auto names = store.List();
  int n = 0;
  for (const auto& name : *names) n += name.rfind(o.prefix, 0) == 0;
  return n;
}

TEST(LabTest, HostsPingEachOtherAndTheOutsideHostThenTeardownRemovesEverything) {
  SHOAL_REQUIRE_ROOT();
  LabOptions o = Options();
  {
    auto lab = Lab::Create(o);
    ASSERT_TRUE(lab.ok()) << lab.status();
    EXPECT_EQ(CountOurNetns(o), 5);
    for (int i = 0; i < 3; ++i) {
      for (int j = 0; j < 3; ++j) {
        if (i == j) continue;
        auto r = (*lab)->Run(i, "ping -c1 -W2 " + (*lab)->host(j).ip.ToString());
        ASSERT_TRUE(r.ok()) << r.status();
        EXPECT_EQ(r->exit_code, 0) << r->output;
      }
    }
    auto out = (*lab)->Run(0, "ping -c1 -W2 192.168.77.254");
    ASSERT_TRUE(out.ok());
    EXPECT_EQ(out->exit_code, 0) << out->output;
    auto hostname = (*lab)->Run(1, "ip -o -4 addr show dev eth0");
    ASSERT_TRUE(hostname.ok());
    EXPECT_NE(hostname->output.find("192.168.77.2/24"), std::string::npos) << hostname->output;
  }
  EXPECT_EQ(CountOurNetns(o), 0);
}

TEST(LabTest, CreatePurgesLeftoversOfACrashedRun) {
  SHOAL_REQUIRE_ROOT();
  LabOptions o = Options();
  o.hosts = 1;
  kernel::BindMountNetnsStore store(o.netns_dir);
  ASSERT_TRUE(store.Create("sn-lt-h1").ok());  // a leftover
  {
    auto lab = Lab::Create(o);
    ASSERT_TRUE(lab.ok()) << lab.status();
  }
  EXPECT_EQ(CountOurNetns(o), 0);
}

TEST(LabTest, RunReportsExitCodesAndOutput) {
  SHOAL_REQUIRE_ROOT();
  auto r = RunIn(-1, "echo hello; exit 3");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->exit_code, 3);
  EXPECT_EQ(r->output, "hello\n");
  auto slow = RunIn(-1, "sleep 5", std::chrono::milliseconds(100));
  EXPECT_EQ(slow.status().code(), absl::StatusCode::kDeadlineExceeded);
}

TEST(LabTest, LeftoversFindsNamespacesDirsAndCgroupsWithThePrefix) {
  SHOAL_REQUIRE_ROOT();
  const std::string p = "shnt-lo-";
  EXPECT_EQ(Leftovers(p), std::vector<std::string>{});
  std::string dir = "/run/" + p + "dir";
  ASSERT_EQ(::mkdir(dir.c_str(), 0755), 0);
  kernel::BindMountNetnsStore store("/run/netns");
  ASSERT_TRUE(store.Create(p + "ns").ok());
  std::string cg = "/sys/fs/cgroup/pids/" + p + "cg";  // hybrid/v1 hierarchy on this host
  bool have_cg = ::mkdir(cg.c_str(), 0755) == 0;
  if (!have_cg) {  // pure cgroup v2
    cg = "/sys/fs/cgroup/" + p + "cg";
    have_cg = ::mkdir(cg.c_str(), 0755) == 0;
  }
  std::vector<std::string> left = Leftovers(p);
  EXPECT_NE(std::find(left.begin(), left.end(), dir), left.end());
  EXPECT_NE(std::find(left.begin(), left.end(), "/run/netns/" + p + "ns"), left.end());
  if (have_cg) {
    EXPECT_NE(std::find(left.begin(), left.end(), cg), left.end());
  }
  ::rmdir(dir.c_str());
  (void)store.Delete(p + "ns");
  if (have_cg) ::rmdir(cg.c_str());
  EXPECT_EQ(Leftovers(p), std::vector<std::string>{});
}

}  // namespace
}  // namespace shoal::lab
