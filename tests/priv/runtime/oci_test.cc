// shoal-runtime (OCI CLI) driven like an OCI test suite would: config.json bundles, the
// create/start/state/kill/delete lifecycle, run's exit code, errors naming the field.
#include <signal.h>
#include <stdio.h>
#include <unistd.h>
#include <sys/wait.h>

#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/file.h"
#include "nlohmann/json.hpp"
#include "tests/priv/runtime/fixture.h"

namespace shoal::runtime::testing {
namespace {

class OciTest : public RuntimeTest {
 protected:
  void SetUp() override {
    RuntimeTest::SetUp();
    bundle_ = absl::StrCat("/tmp/shoaltest-rt-bundle-", getpid());
    root_ = absl::StrCat("/tmp/shoaltest-rt-ociroot-", getpid());
    std::filesystem::create_directories(bundle_);
    std::filesystem::create_directory_symlink(image_, bundle_ + "/rootfs");
  }
  void TearDown() override {
    std::filesystem::remove_all(bundle_);
    std::filesystem::remove_all(root_);
    RuntimeTest::TearDown();
  }
  void WriteConfig(const std::vector<std::string>& args, nlohmann::json extra = {}) {
    nlohmann::json c = {
        {"ociVersion", "1.0.2"},
        {"process", {{"args", args}, {"env", {"PATH=/bin"}}, {"cwd", "/"}, {"user", {{"uid", 0}, {"gid", 0}}}}},
        {"root", {{"path", "rootfs"}}},
        {"hostname", "oci"},
        {"linux", {{"namespaces", {{{"type", "pid"}}, {{"type", "network"}}, {{"type", "mount"}}}},
                   {"maskedPaths", {"/proc/kcore"}},
                   {"seccomp", {{"defaultAction", "SCMP_ACT_ERRNO"}}}}}};
    if (extra.is_object()) c.merge_patch(extra);
    ASSERT_TRUE(base::WriteFileAtomic(bundle_ + "/config.json", c.dump()).ok());
  }
  // Runs shoal-runtime; returns {exit code, stdout+stderr}. Output goes through a file, not a
  // pipe: a created container inherits (and keeps) the command's stdio, as OCI requires.
  std::pair<int, std::string> Cli(const std::string& args) {
    std::string out_file = bundle_ + "/cli.out";
    std::string cmd = absl::StrCat("cd ", bundle_, " && SHOAL_MONITOR=", SHOAL_MONITOR_PATH, " ",
                                   SHOAL_RUNTIME_PATH, " --root ", root_, " --cgroup-parent ",
                                   parent_, " ", args, " </dev/null >", out_file, " 2>&1");
    int status = system(cmd.c_str());
    auto out = base::ReadFile(out_file);
    unlink(out_file.c_str());
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out.ok() ? *out : ""};
  }
  std::string Status(const std::string& id) {
    auto [code, out] = Cli("state " + id);
    if (code != 0) return "error: " + out;
    return nlohmann::json::parse(out)["status"];
  }
  std::string bundle_, root_;
};

TEST_F(OciTest, RunPassesStdioAndExitCode) {
  WriteConfig({"sh", "-c", "echo hi from $(hostname); grep Seccomp: /proc/self/status; exit 5"});
  auto [code, out] = Cli("run r1");
  EXPECT_EQ(code, 5) << out;
  EXPECT_TRUE(absl::StrContains(out, "hi from oci")) << out;
  EXPECT_TRUE(absl::StrContains(out, "Seccomp:\t2")) << out;
}

TEST_F(OciTest, CreateStartStateKillDelete) {
  WriteConfig({"sleep", "1000"});
  auto [code, out] = Cli("create --pid-file " + bundle_ + "/pid c1");
  ASSERT_EQ(code, 0) << out;
  EXPECT_EQ(Status("c1"), "created");
  auto pid = base::ReadFile(bundle_ + "/pid");
  ASSERT_TRUE(pid.ok());
  auto state = Cli("state c1");
  auto j = nlohmann::json::parse(state.second);
  EXPECT_EQ(j["pid"].dump(), *pid);
  EXPECT_EQ(j["bundle"], bundle_);
  EXPECT_EQ(j["id"], "c1");
  EXPECT_EQ(Cli("start c1").first, 0);
  EXPECT_EQ(Status("c1"), "running");
  EXPECT_NE(Cli("delete c1").first, 0);  // running: refused without --force
  EXPECT_EQ(Cli("kill c1 KILL").first, 0);
  absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (Status("c1") != "stopped" && absl::Now() < deadline) usleep(20000);
  EXPECT_EQ(Status("c1"), "stopped");
  EXPECT_EQ(Cli("delete c1").first, 0);
  EXPECT_NE(Cli("state c1").first, 0);
}

TEST_F(OciTest, ExecAndForceDelete) {
  WriteConfig({"sleep", "1000"});
  ASSERT_EQ(Cli("create c2").first, 0);
  ASSERT_EQ(Cli("start c2").first, 0);
  auto [code, out] = Cli("exec c2 -- sh -c 'echo in-$(hostname); exit 6'");
  EXPECT_EQ(code, 6) << out;
  EXPECT_TRUE(absl::StrContains(out, "in-oci")) << out;
  EXPECT_EQ(Cli("delete --force c2").first, 0);
  EXPECT_NE(Cli("state c2").first, 0);
}

TEST_F(OciTest, ErrorsNameTheField) {
  WriteConfig({"true"}, {{"process", {{"capabilities", {{"bounding", {"CAP_FLY"}}}}}}});
  auto [code, out] = Cli("run bad1");
  EXPECT_NE(code, 0);
  EXPECT_TRUE(absl::StrContains(out, "cap_add[0]: unknown capability \"CAP_FLY\"")) << out;
  WriteConfig({"true"}, {{"root", {{"path", "missing"}}}});
  std::tie(code, out) = Cli("create bad2");
  EXPECT_NE(code, 0);
  EXPECT_TRUE(absl::StrContains(out, "rootfs:")) << out;
  EXPECT_NE(Cli("state bad2").first, 0);  // nothing left behind
  auto [fcode, features] = Cli("features");
  EXPECT_EQ(fcode, 0);
  EXPECT_TRUE(absl::StrContains(features, "CAP_SYS_ADMIN")) << features;
}

}  // namespace
}  // namespace shoal::runtime::testing
