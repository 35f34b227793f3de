// shoal-runtime (OCI CLI) driven like an OCI test suite would: config.json bundles, the
// create/start/state/kill/delete lifecycle, run's exit code, errors naming the field. The test
// process is a child subreaper, as containerd-shim is: `create` leaves PID 1 to it.
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/file.h"
#include "kernel/cgroup/plan.h"
#include "kernel/seccomp/oci_json.h"
#include "nlohmann/json.hpp"
#include "tests/priv/runtime/fixture.h"

namespace shoal::runtime::testing {
namespace {

class OciTest : public OciCliTest {
 protected:
  // Config() for `args` with hostname "oci", /proc/kcore masked and what dockerd sends as
  // linux.seccomp (its default profile, resolved for the container's capabilities), patched
  // with `extra`.
  void WriteConfig(const std::vector<std::string>& args, nlohmann::json extra = {}) {
    nlohmann::json c = Config({{"args", args}});
    c["hostname"] = "oci";
    c["linux"]["maskedPaths"] = {"/proc/kcore"};
    c["linux"]["seccomp"] =
        kernel::SeccompProfileToOciJson(kernel::DockerDefaultProfile(kernel::DockerDefaultCaps()));
    if (extra.is_object()) c.merge_patch(extra);
    WriteBundleConfig(c);
  }
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

// containerd-shim's model: after create, PID 1 is the subreaper's child and it reaps the exit
// status itself; state reports "stopped" once it is gone.
TEST_F(OciTest, SubreaperReapsInitAndItsExitCode) {
  WriteConfig({"sh", "-c", "exit 9"});
  ASSERT_EQ(Cli("create --pid-file " + bundle_ + "/pid c3").first, 0);
  auto pid_text = base::ReadFile(bundle_ + "/pid");
  ASSERT_TRUE(pid_text.ok());
  pid_t pid = std::stoi(*pid_text);
  auto [code, out] = Cli("start c3");
  ASSERT_EQ(code, 0) << out;
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 9);
  EXPECT_EQ(Status("c3"), "stopped");
  EXPECT_EQ(Cli("delete c3").first, 0);
}

TEST_F(OciTest, CgroupsPathHooksSysctlKillAllPs) {
  std::string hook_out = bundle_ + "/hook.json";
  std::string parent = parent_ + "/sub";
  WriteConfig({"sh", "-c", "sleep 1000 & sleep 1000"},
              {{"linux",
                {{"cgroupsPath", "/" + parent + "/c4"},
                 {"sysctl", {{"net.ipv4.ip_unprivileged_port_start", "0"}}},
                 {"resources", {{"memory", {{"limit", 64 << 20}}}, {"pids", {{"limit", 50}}}}}}},
               {"hooks",
                {{"prestart", {{{"path", "/bin/sh"}, {"args", {"sh", "-c", "cat > " + hook_out}}}}},
                 {"poststop",
                  {{{"path", "/bin/sh"}, {"args", {"sh", "-c", "echo gone > " + hook_out}}}}}}}});
  auto [code, out] = Cli("create c4");
  ASSERT_EQ(code, 0) << out;
  auto hook = base::ReadFile(hook_out);
  ASSERT_TRUE(hook.ok());
  auto state = nlohmann::json::parse(*hook);
  EXPECT_EQ(state["id"], "c4");
  EXPECT_GT(state["pid"].get<int>(), 0);
  std::string mem_dir = features_.cgroup_mode == kernel::CgroupMode::kV2
                            ? "/sys/fs/cgroup/" + parent + "/c4"
                            : "/sys/fs/cgroup/memory/" + parent + "/c4";
  auto limit = base::ReadFile(mem_dir + (features_.cgroup_mode == kernel::CgroupMode::kV2
                                             ? "/memory.max"
                                             : "/memory.limit_in_bytes"));
  ASSERT_TRUE(limit.ok()) << mem_dir;
  EXPECT_EQ(*limit, absl::StrCat(64 << 20, "\n"));
  ASSERT_EQ(Cli("start c4").first, 0);
  auto [xcode, xout] = Cli("exec c4 cat /proc/sys/net/ipv4/ip_unprivileged_port_start");
  EXPECT_EQ(xcode, 0) << xout;
  EXPECT_EQ(xout, "0\n");
  // ps lists both processes (PID 1 and its background child) once they run.
  absl::Time deadline = absl::Now() + absl::Seconds(20);
  nlohmann::json pids;
  do {
    pids = nlohmann::json::parse(Cli("ps --format json c4").second);
  } while (pids.size() < 2 && absl::Now() < deadline && usleep(20000) == 0);
  EXPECT_EQ(pids.size(), 2u) << pids.dump();
  EXPECT_EQ(Cli("kill --all c4 KILL").first, 0);
  while (Status("c4") != "stopped" && absl::Now() < deadline) usleep(20000);
  EXPECT_EQ(Status("c4"), "stopped");
  EXPECT_EQ(Cli("delete c4").first, 0);
  EXPECT_EQ(*base::ReadFile(hook_out), "gone\n");  // poststop ran
  EXPECT_FALSE(std::filesystem::exists(mem_dir));
  rmdir(("/sys/fs/cgroup/memory/" + parent).c_str());
  for (const std::string& c : kernel::V1Controllers()) {
    rmdir(absl::StrCat("/sys/fs/cgroup/", c, "/", parent).c_str());
  }
  rmdir(("/sys/fs/cgroup/" + parent).c_str());
}

TEST_F(OciTest, UnsupportedFieldsAreRejectedByName) {
  struct Case {
    nlohmann::json extra;
    std::string message;
  };
  std::vector<Case> cases = {
      {{{"process", {{"terminal", true}}}}, "process.terminal: "},
      {{{"linux", {{"cgroupsPath", "system.slice:docker:x"}}}}, "linux.cgroupsPath: "},
      {{{"linux", {{"cgroupsPath", "/docker/other"}}}}, "must end with the container id"},
      {{{"linux", {{"sysctl", {{"kernel.hostname", "x"}}}}}}, "linux.sysctl[\"kernel.hostname\"]"},
      {{{"linux", {{"resources", {{"blockIO", {{"weight", 10}}}}}}}}, "linux.resources.blockIO: "},
      {{{"linux", {{"uidMappings", {{{"containerID", 0}, {"hostID", 1000}, {"size", 1}}}}}}},
       "linux.uidMappings: "},
      {{{"hooks", {{"startContainer", {{{"path", "/bin/true"}}}}}}}, "hooks.startContainer: "},
      {{{"linux", {{"seccomp", {{"defaultAction", "SCMP_ACT_BOGUS"}}}}}},
       "linux.seccomp.defaultAction: unknown action \"SCMP_ACT_BOGUS\""},
  };
  for (const Case& c : cases) {
    WriteConfig({"true"}, c.extra);
    auto [code, out] = Cli("create bad3");
    EXPECT_NE(code, 0) << c.extra.dump();
    EXPECT_TRUE(absl::StrContains(out, c.message)) << c.extra.dump() << " -> " << out;
    EXPECT_NE(Cli("state bad3").first, 0);  // nothing left behind
  }
  // Host namespaces cannot be shared: a config without a pid namespace is refused.
  nlohmann::json c = {{"ociVersion", "1.0.2"},
                      {"process", {{"args", {"true"}}, {"cwd", "/"}}},
                      {"root", {{"path", "rootfs"}}},
                      {"linux", {{"namespaces", {{{"type", "mount"}}}}}}};
  WriteBundleConfig(c);
  auto [code, out] = Cli("create bad4");
  EXPECT_NE(code, 0);
  EXPECT_TRUE(absl::StrContains(out, "linux.namespaces: the host's pid namespace")) << out;
}

}  // namespace
}  // namespace shoal::runtime::testing
