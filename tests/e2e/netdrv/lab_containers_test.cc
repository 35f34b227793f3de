// The lab's container library (tests/lab/containers.h): real runtime containers with their own
// network namespace, an attach hook before PID 1 runs, exec inside, and nothing left behind.
#include "tests/lab/containers.h"

#include <filesystem>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "kernel/netlink/libnl_netlink.h"
#include "tests/testing/priv.h"

namespace shoal::lab {
namespace {

TEST(LabContainersTest, ContainersGetTheirOwnNetnsTheAttachHookRunsAndTeardownRemovesAll) {
  SHOAL_REQUIRE_ROOT();
  std::string base, image;
  std::vector<std::string> cgroups_before_teardown;
  {
    auto lab = ContainerLab::Create("shnt-lc-");
    ASSERT_TRUE(lab.ok()) << lab.status();
    image = (*lab)->image();
    base = std::filesystem::path(image).parent_path();
    kernel::LibnlNetlinkFactory nl;
    // The hook sees the container's namespace before PID 1 runs: add a dummy link there.
    auto c1 = (*lab)->Run("c1", [&](int fd) -> absl::Status {
      auto n = nl.Open(fd);
      if (!n.ok()) return n.status();
      kernel::LinkSpec d;
      d.kind = kernel::LinkKind::kBridge;
      d.name = "eth0";
      d.up = true;
      return (*n)->CreateLink(d).status();
    });
    ASSERT_TRUE(c1.ok()) << c1.status();
    auto c2 = (*lab)->Run("c2");
    ASSERT_TRUE(c2.ok()) << c2.status();
    auto links = (*c1)->Exec("ip -o link | cut -d: -f2 | tr -d ' \\n'");
    ASSERT_TRUE(links.ok()) << links.status();
    EXPECT_EQ(links->output, "loeth0") << links->output;
    auto only_lo = (*c2)->Exec("ip -o link | wc -l; ping -c1 -W2 127.0.0.1 >/dev/null && echo up");
    ASSERT_TRUE(only_lo.ok());
    EXPECT_EQ(only_lo->output, "1\nup\n");
    // Inside: the container's hostname, its own PID namespace, busybox and the DF pinger.
    auto r = (*c1)->Exec("hostname; echo $$; test -x /bin/shoal-dfping && echo df; exit 7");
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->exit_code, 7);
    EXPECT_TRUE(absl::StartsWith(r->output, "c1\n")) << r->output;
    EXPECT_TRUE(absl::StrContains(r->output, "df")) << r->output;
    // Writes go to the container's own upper dir, never to the shared image.
    ASSERT_TRUE((*c1)->Exec("echo x > /marker").ok());
    EXPECT_FALSE(std::filesystem::exists(image + "/marker"));
    EXPECT_EQ((*c2)->Exec("test -e /marker")->exit_code, 1);
    auto t = (*c1)->Exec("sleep 30", std::chrono::milliseconds(200));
    EXPECT_EQ(t.status().code(), absl::StatusCode::kDeadlineExceeded);
    auto bg = (*c1)->Spawn("sleep 1000");
    ASSERT_TRUE(bg.ok()) << bg.status();
    EXPECT_EQ((*lab)->Run("c1").status().code(), absl::StatusCode::kAlreadyExists);
    auto bad = (*lab)->Run("c3", [](int) { return absl::InvalidArgumentError("no network"); });
    EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_TRUE(absl::StrContains(bad.status().message(), "c3")) << bad.status();
    EXPECT_FALSE((*lab)->contains("c3"));
    EXPECT_EQ((*lab)->LeftoverCgroups().size() % 2, 0u);  // c1, c2 (per hierarchy), not c3
    ASSERT_TRUE((*lab)->Remove("c2").ok());
    EXPECT_EQ((*lab)->Remove("c2").code(), absl::StatusCode::kNotFound);
    (*bg).reset();
  }
  EXPECT_FALSE(std::filesystem::exists(base));
}

}  // namespace
}  // namespace shoal::lab
