#include "tests/e2e/docker/docker_fixture.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/testing/priv.h"

namespace shoal::testing {

void DockerFixture::SetUp() {
  SHOAL_REQUIRE_ROOT();
  std::string missing = Dockerd::MissingReason();
  if (!missing.empty()) GTEST_SKIP() << missing;
  dockerd_ = std::make_unique<Dockerd>(SHOAL_RUNTIME_PATH);
  auto s = dockerd_->Start();
  ASSERT_TRUE(s.ok()) << s;
  std::string img = dockerd_->dir() + "/img";
  std::string cmd = absl::StrCat(SHOAL_SOURCE_DIR, "/scripts/mkimage ", img, " ", SHOAL_PROBE_PATH,
                                 " >/dev/null && tar -C ", img, " -cf ", img, ".tar .");
  ASSERT_EQ(system(cmd.c_str()), 0) << cmd;
  auto r = D(absl::StrCat("import ", img, ".tar ", kImage));
  ASSERT_EQ(r.code, 0) << r.err;
}

void DockerFixture::TearDown() {
  if (!dockerd_) return;
  // Every container gone through docker itself leaves no cgroup behind.
  auto ids = D("ps -aq");
  if (!ids.out.empty()) {
    D("rm -f $(" + std::string(Dockerd::kDocker) + " -H unix://" + dockerd_->dir() +
      "/docker.sock ps -aq)");
  }
  // (docker removes --rm containers whose start failed in the background: poll.)
  absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (!dockerd_->CgroupLeaves().empty() && absl::Now() < deadline) usleep(50000);
  EXPECT_TRUE(dockerd_->CgroupLeaves().empty())
      << "cgroup left behind: " << dockerd_->CgroupLeaves().front() << "\n"
      << dockerd_->LogTail();
  std::string dir = dockerd_->dir();
  dockerd_.reset();  // stops dockerd + containerd, removes all state
  EXPECT_TRUE(Dockerd::ProcessesMatching(dir).empty());
  EXPECT_TRUE(std::filesystem::is_empty("/run/containerd/s", ec_) || ec_)
      << "a containerd-shim socket is left in /run/containerd/s";
  EXPECT_FALSE(std::filesystem::exists(dir));
}

Dockerd::Result DockerFixture::Run(const std::string& flags, const std::string& cmd) {
  return D(absl::StrCat("run --rm --runtime=shoal --network=none ", flags, " ", kImage, " ", cmd));
}

std::string DockerFixture::RunDetached(const std::string& flags, const std::string& cmd) {
  auto r = D(absl::StrCat("run -d --runtime=shoal --network=none ", flags, " ", kImage, " ", cmd));
  EXPECT_EQ(r.code, 0) << r.err;
  return std::string(absl::StripAsciiWhitespace(r.out));
}

std::string DockerFixture::Inspect(const std::string& id, const std::string& format) {
  return std::string(
      absl::StripAsciiWhitespace(D(absl::StrCat("inspect -f '", format, "' ", id)).out));
}

std::string DockerFixture::WaitForLogs(const std::string& id, const std::string& text) {
  absl::Time deadline = absl::Now() + absl::Seconds(30);
  std::string logs;
  do {
    auto r = D("logs " + id);
    logs = r.out + r.err;
    if (absl::StrContains(logs, text)) break;
    usleep(50000);
  } while (absl::Now() < deadline);
  return logs;
}

}  // namespace shoal::testing
