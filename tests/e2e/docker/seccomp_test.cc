// Seccomp through Debian's dockerd with shoal-runtime as an added runtime: the profile dockerd
// writes into config.json is the one the container gets — a custom one from
// `--security-opt seccomp=<file>`, dockerd's own default otherwise, none for `unconfined`.
#include <unistd.h>

#include <filesystem>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/file.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/e2e/docker/dockerd.h"
#include "tests/testing/priv.h"

namespace shoal::testing {
namespace {

constexpr char kImage[] = "shdk-sec-img:1";

class DockerSeccompTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SHOAL_REQUIRE_ROOT();
    std::string missing = Dockerd::MissingReason();
    if (!missing.empty()) GTEST_SKIP() << missing;
    dockerd_ = std::make_unique<Dockerd>(SHOAL_RUNTIME_PATH);
    auto s = dockerd_->Start();
    ASSERT_TRUE(s.ok()) << s;
    std::string img = dockerd_->dir() + "/img";
    std::string cmd =
        absl::StrCat(SHOAL_SOURCE_DIR, "/scripts/mkimage ", img, " ", SHOAL_PROBE_PATH,
                     " >/dev/null && tar -C ", img, " -cf ", img, ".tar .");
    ASSERT_EQ(system(cmd.c_str()), 0) << cmd;
    auto r = D(absl::StrCat("import ", img, ".tar ", kImage));
    ASSERT_EQ(r.code, 0) << r.err;
  }
  void TearDown() override {
    if (!dockerd_) return;
    auto ids = D("ps -aq");
    if (!ids.out.empty()) {
      D("rm -f $(" + std::string(Dockerd::kDocker) + " -H unix://" + dockerd_->dir() +
        "/docker.sock ps -aq)");
    }
    absl::Time deadline = absl::Now() + absl::Seconds(20);
    while (!dockerd_->CgroupLeaves().empty() && absl::Now() < deadline) usleep(50000);
    EXPECT_TRUE(dockerd_->CgroupLeaves().empty())
        << "cgroup left behind: " << dockerd_->CgroupLeaves().front();
    std::string dir = dockerd_->dir();
    dockerd_.reset();  // stops dockerd + containerd, removes all state
    EXPECT_TRUE(Dockerd::ProcessesMatching(dir).empty());
    EXPECT_FALSE(std::filesystem::exists(dir));
  }
  Dockerd::Result D(const std::string& args) { return dockerd_->Docker(args); }
  Dockerd::Result Run(const std::string& flags, const std::string& cmd) {
    return D(
        absl::StrCat("run --rm --runtime=shoal --network=none ", flags, " ", kImage, " ", cmd));
  }
  std::string RunDetached(const std::string& flags, const std::string& cmd) {
    auto r =
        D(absl::StrCat("run -d --runtime=shoal --network=none ", flags, " ", kImage, " ", cmd));
    EXPECT_EQ(r.code, 0) << r.err;
    return std::string(absl::StripAsciiWhitespace(r.out));
  }
  // The profile shoal-runtime kept for the container (spec.json in its state directory).
  nlohmann::json KeptProfile(const std::string& id) {
    auto text = base::ReadFile(dockerd_->RuntimeStateDir(id) + "/spec.json");
    EXPECT_TRUE(text.ok()) << text.status();
    if (!text.ok()) return nullptr;
    return nlohmann::json::parse(*text)["process"].value("seccomp_profile", nlohmann::json());
  }
  std::string WriteProfile(const nlohmann::json& profile) {
    std::string path = dockerd_->dir() + "/profile.json";
    EXPECT_TRUE(base::WriteFileAtomic(path, profile.dump()).ok());
    return path;
  }

  std::unique_ptr<Dockerd> dockerd_;
};

TEST_F(DockerSeccompTest, SecurityOptSeccompFileDeniesMkdir) {
  std::string profile = WriteProfile(
      {{"defaultAction", "SCMP_ACT_ALLOW"},
       {"syscalls", {{{"names", {"mkdir", "mkdirat"}}, {"action", "SCMP_ACT_ERRNO"}}}}});
  auto r = Run("--security-opt seccomp=" + profile,
               "sh -c 'mkdir /tmp/x; echo mkdir=$?; ls / >/dev/null && echo ls=ok; "
               "grep Seccomp: /proc/self/status'");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(absl::StrContains(r.out + r.err, "Operation not permitted")) << r.out << r.err;
  EXPECT_TRUE(absl::StrContains(r.out, "mkdir=1")) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "ls=ok")) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "Seccomp:\t2")) << r.out;

  // errnoRet travels through dockerd too; `docker exec` gets the container's filter.
  profile = WriteProfile({{"defaultAction", "SCMP_ACT_ALLOW"},
                          {"syscalls",
                           {{{"names", {"mkdir", "mkdirat"}},
                             {"action", "SCMP_ACT_ERRNO"},
                             {"errnoRet", 38}}}}});
  std::string id = RunDetached("--security-opt seccomp=" + profile, "sleep 1000");
  auto e = D("exec " + id + " mkdir /tmp/y");
  EXPECT_NE(e.code, 0);
  EXPECT_TRUE(absl::StrContains(e.err + e.out, "Function not implemented")) << e.out << e.err;
  nlohmann::json kept = KeptProfile(id);
  EXPECT_EQ(kept.value("defaultAction", ""), "SCMP_ACT_ALLOW") << kept.dump();
  D("rm -f " + id);
}

TEST_F(DockerSeccompTest, DockerdsDefaultProfileStillBlocksUnshare) {
  auto r = Run("", "sh -c 'unshare -n true; echo unshare=$?; mkdir /tmp/x && echo mkdir=ok; "
                   "grep Seccomp: /proc/self/status'");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(absl::StrContains(r.out, "unshare=1")) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out + r.err, "Operation not permitted")) << r.out << r.err;
  EXPECT_TRUE(absl::StrContains(r.out, "mkdir=ok")) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "Seccomp:\t2")) << r.out;
  // The filter is dockerd's profile as passed in config.json (not a built-in copy).
  std::string id = RunDetached("", "sleep 1000");
  nlohmann::json kept = KeptProfile(id);
  EXPECT_EQ(kept.value("defaultAction", ""), "SCMP_ACT_ERRNO") << kept.dump();
  EXPECT_GT(kept.value("syscalls", nlohmann::json::array()).size(), 5u) << kept.dump();
  D("rm -f " + id);
  // --security-opt seccomp=unconfined: dockerd sends no linux.seccomp, no filter.
  auto u = Run("--security-opt seccomp=unconfined", "grep Seccomp: /proc/self/status");
  EXPECT_EQ(u.code, 0) << u.err;
  EXPECT_TRUE(absl::StrContains(u.out, "Seccomp:\t0")) << u.out;
}

}  // namespace
}  // namespace shoal::testing
