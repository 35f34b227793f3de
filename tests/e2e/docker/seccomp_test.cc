// Seccomp through Debian's dockerd with shoal-runtime as an added runtime: the profile dockerd
// writes into config.json is the one the container gets — a custom one from
// `--security-opt seccomp=<file>`, dockerd's own default otherwise, none for `unconfined`.
#include "absl/strings/match.h"
#include "base/file.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/e2e/docker/docker_fixture.h"

namespace shoal::testing {
namespace {

class DockerSeccompTest : public DockerFixture {
 protected:
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
  profile = WriteProfile(
      {{"defaultAction", "SCMP_ACT_ALLOW"},
       {"syscalls",
        {{{"names", {"mkdir", "mkdirat"}}, {"action", "SCMP_ACT_ERRNO"}, {"errnoRet", 38}}}}});
  std::string id = RunDetached("--security-opt seccomp=" + profile, "sleep 1000");
  auto e = D("exec " + id + " mkdir /tmp/y");
  EXPECT_NE(e.code, 0);
  EXPECT_TRUE(absl::StrContains(e.err + e.out, "Function not implemented")) << e.out << e.err;
  nlohmann::json kept = KeptProfile(id);
  EXPECT_EQ(kept.value("defaultAction", ""), "SCMP_ACT_ALLOW") << kept.dump();
  D("rm -f " + id);
}

TEST_F(DockerSeccompTest, DockerdsDefaultProfileStillBlocksUnshare) {
  auto r = Run("",
               "sh -c 'unshare -n true; echo unshare=$?; mkdir /tmp/x && echo mkdir=ok; "
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
