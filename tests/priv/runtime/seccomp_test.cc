// OCI linux.seccomp profiles in real containers: through the runtime library (custom
// ProcessSpec::seccomp_profile) and through shoal-runtime with a config.json, observed from
// inside (busybox errors, /proc/self/status) the way a user would.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/file.h"
#include "kernel/seccomp/oci_json.h"
#include "nlohmann/json.hpp"
#include "runtime/oci/config.h"
#include "tests/priv/runtime/fixture.h"

namespace shoal::runtime::testing {
namespace {

using nlohmann::json;

kernel::SeccompProfile Profile(const json& j) {
  auto p = kernel::SeccompProfileFromOciJson(j, "profile");
  EXPECT_TRUE(p.ok()) << p.status();
  return p.ok() ? *p : kernel::SeccompProfile{};
}

// defaultAction ALLOW; mkdir/mkdirat -> ERRNO (EPERM unless errno_ret).
json DenyMkdir(std::optional<int> errno_ret = std::nullopt) {
  json rule = {{"names", {"mkdir", "mkdirat"}}, {"action", "SCMP_ACT_ERRNO"}};
  if (errno_ret) rule["errnoRet"] = *errno_ret;
  return {{"defaultAction", "SCMP_ACT_ALLOW"},
          {"architectures", {"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"}},
          {"syscalls", {rule}}};
}

// A directory name no other test uses; the image is shared, so nothing may stay in it.
std::string Scratch() { return absl::StrCat("/tmp/sec-mkdir-", getpid()); }

class SeccompTest : public RuntimeTest {
 protected:
  void TearDown() override {
    std::filesystem::remove_all(image_ + Scratch());
    RuntimeTest::TearDown();
  }
  // Runs `script` under `profile` (nullopt = Docker's default); returns the output.
  std::string RunWith(std::optional<kernel::SeccompProfile> profile, const std::string& script,
                      int* code = nullptr) {
    ContainerSpec spec = Spec({"sh", "-c", script});
    spec.process.seccomp_profile = std::move(profile);
    auto out = Run(spec);
    EXPECT_TRUE(out.ok()) << out.status();
    if (!out.ok()) return "";
    if (code) *code = out->exit.code;
    return out->out;
  }
};

TEST_F(SeccompTest, MkdirDeniedWithEpermWhileOtherSyscallsWork) {
  std::string out = RunWith(Profile(DenyMkdir()),
                            absl::StrCat("mkdir ", Scratch(), "; echo mkdir=$?; "
                                         "echo hello >/dev/null && ls / >/dev/null && echo io=ok; "
                                         "grep Seccomp: /proc/self/status"));
  EXPECT_TRUE(absl::StrContains(out, "Operation not permitted")) << out;
  EXPECT_TRUE(absl::StrContains(out, "mkdir=1")) << out;
  EXPECT_TRUE(absl::StrContains(out, "io=ok")) << out;
  EXPECT_TRUE(absl::StrContains(out, "Seccomp:\t2")) << out;
  EXPECT_FALSE(std::filesystem::exists(image_ + Scratch()));
}

TEST_F(SeccompTest, ErrnoRetIsHonoured) {
  std::string out = RunWith(Profile(DenyMkdir(38)), absl::StrCat("mkdir ", Scratch()));
  EXPECT_TRUE(absl::StrContains(out, "Function not implemented")) << out;  // ENOSYS
  EXPECT_FALSE(std::filesystem::exists(image_ + Scratch()));
}

TEST_F(SeccompTest, ArgumentConditions) {
  // personality allowed only with arg0 == 0 (PER_LINUX): linux64 works, linux32 does not.
  json p = {{"defaultAction", "SCMP_ACT_ALLOW"},
            {"syscalls",
             {{{"names", {"personality"}},
               {"action", "SCMP_ACT_ERRNO"},
               {"args", {{{"index", 0}, {"value", 0}, {"op", "SCMP_CMP_NE"}}}}}}}};
  std::string out = RunWith(Profile(p), "linux64 true; echo linux64=$?; linux32 true; "
                                        "echo linux32=$?");
  EXPECT_TRUE(absl::StrContains(out, "linux64=0")) << out;
  EXPECT_TRUE(absl::StrContains(out, "linux32=1")) << out;
  EXPECT_TRUE(absl::StrContains(out, "Operation not permitted")) << out;
  // MASKED_EQ: denied when (arg0 & 0x8) == 0x8, i.e. PER_LINUX32 again, with ENOSYS.
  p["syscalls"][0]["args"] = {
      {{"index", 0}, {"value", 0x8}, {"valueTwo", 0x8}, {"op", "SCMP_CMP_MASKED_EQ"}}};
  p["syscalls"][0]["errnoRet"] = 38;
  out = RunWith(Profile(p), "linux64 true; echo linux64=$?; linux32 true; echo linux32=$?");
  EXPECT_TRUE(absl::StrContains(out, "linux64=0")) << out;
  EXPECT_TRUE(absl::StrContains(out, "linux32=1")) << out;
  EXPECT_TRUE(absl::StrContains(out, "Function not implemented")) << out;
}

TEST_F(SeccompTest, DefaultErrnoWithAnAllowList) {
  // Docker's allow list minus mkdir/mkdirat, everything else denied with EACCES.
  json p = kernel::SeccompProfileToOciJson(kernel::DockerDefaultProfile(kernel::DockerDefaultCaps()));
  p["defaultErrnoRet"] = 13;
  for (json& rule : p["syscalls"]) {
    json names = json::array();
    for (const json& n : rule["names"]) {
      if (n != "mkdir" && n != "mkdirat") names.push_back(n);
    }
    rule["names"] = names.empty() ? json::array({"no_such_syscall_shoal"}) : names;
  }
  std::string out = RunWith(Profile(p), absl::StrCat("mkdir ", Scratch(), "; echo mkdir=$?; "
                                                     "unshare -n true; echo unshare=$?; "
                                                     "shoal-probe | grep -E '^Seccomp='"));
  EXPECT_TRUE(absl::StrContains(out, "Permission denied")) << out;
  EXPECT_TRUE(absl::StrContains(out, "mkdir=1")) << out;
  EXPECT_TRUE(absl::StrContains(out, "unshare=1")) << out;  // not in the list without SYS_ADMIN
  EXPECT_TRUE(absl::StrContains(out, "Seccomp=2")) << out;
}

TEST_F(SeccompTest, DefaultKillProcessWithAnAllowList) {
  // A minimal allow list for a static busybox `true`; anything else kills the process.
  json p = {{"defaultAction", "SCMP_ACT_KILL_PROCESS"},
            {"syscalls",
             {{{"names",
                {"execve", "exit_group", "exit", "brk", "arch_prctl", "set_tid_address",
                 "set_robust_list", "rseq", "prlimit64", "mprotect", "readlink", "uname",
                 "getuid", "geteuid", "getpid", "getppid", "umask", "close_range", "mmap", "prctl",
                 "munmap", "rt_sigaction", "rt_sigprocmask", "getrandom"}},
               {"action", "SCMP_ACT_ALLOW"}}}}};
  ContainerSpec spec = Spec({"true"});
  spec.process.seccomp_profile = Profile(p);
  auto out = Run(spec);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->exit.code, 0) << out->out;
  spec = Spec({"mkdir", Scratch()});
  spec.process.seccomp_profile = Profile(p);
  out = Run(spec);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->exit.signal, SIGSYS) << out->out;
  EXPECT_EQ(out->exit.code, 128 + SIGSYS);
}

TEST_F(SeccompTest, UnconfinedAndDockerDefault) {
  ContainerSpec spec = Spec({"grep", "Seccomp:", "/proc/self/status"});
  spec.process.seccomp = false;
  auto out = Run(spec);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_TRUE(absl::StrContains(out->out, "Seccomp:\t0")) << out->out;
  // Default: Docker's profile (unshare denied, mkdir allowed).
  std::string text = RunWith(std::nullopt, absl::StrCat("unshare -n true; echo unshare=$?; mkdir ",
                                                        Scratch(), " && echo mkdir=ok"));
  EXPECT_TRUE(absl::StrContains(text, "unshare=1")) << text;
  EXPECT_TRUE(absl::StrContains(text, "mkdir=ok")) << text;
}

TEST_F(SeccompTest, ExecGetsTheContainersProfile) {
  ContainerSpec spec = Spec({"sleep", "1000"});
  spec.process.seccomp_profile = Profile(DenyMkdir(38));
  auto c = runtime_->Create(spec, {});
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_TRUE((*c)->Start().ok());
  ProcessSpec exec;  // no profile of its own: inherits the container's
  exec.args = {"sh", "-c", absl::StrCat("mkdir ", Scratch(), "; grep Seccomp: /proc/self/status")};
  auto out = ExecOutput(**c, exec);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_TRUE(absl::StrContains(out->out, "Function not implemented")) << out->out;
  EXPECT_TRUE(absl::StrContains(out->out, "Seccomp:\t2")) << out->out;
  ASSERT_TRUE((*c)->Delete().ok());
}

TEST_F(SeccompTest, SameProfileIsCompiledOnce) {
  for (int i = 0; i < 3; ++i) {
    RunWith(Profile(DenyMkdir(38)), "true");
  }
  EXPECT_EQ(runtime_->seccomp().compilations(), 1);
  RunWith(Profile(DenyMkdir(1)), "true");
  EXPECT_EQ(runtime_->seccomp().compilations(), 2);
}

TEST_F(SeccompTest, NotifyIsRefusedByName) {
  ContainerSpec spec = Spec({"true"});
  kernel::SeccompProfile p = Profile(DenyMkdir());
  p.syscalls[0].action = kernel::SeccompAction::kNotify;
  spec.process.seccomp_profile = p;
  auto c = runtime_->Create(spec, {});
  ASSERT_FALSE(c.ok());
  EXPECT_TRUE(absl::StrContains(c.status().message(),
                                "process.seccomp_profile: syscalls[0].action: SCMP_ACT_NOTIFY"))
      << c.status();
}

// shoal-runtime with config.json bundles (the test process is a subreaper, as a shim is).
class SeccompOciTest : public OciCliTest {
 protected:
  void TearDown() override {
    std::filesystem::remove_all(image_ + Scratch());
    OciCliTest::TearDown();
  }
  // Config() for `args` with `seccomp` as linux.seccomp (null: none).
  void WriteConfig(const std::vector<std::string>& args, const json& seccomp) {
    json c = Config({{"args", args}});
    if (!seccomp.is_null()) c["linux"]["seccomp"] = seccomp;
    WriteBundleConfig(c);
  }
  size_t CachedPrograms() {
    std::error_code ec;
    size_t n = 0;
    for (auto it = std::filesystem::directory_iterator(root_ + "/.cache/seccomp", ec);
         !ec && it != std::filesystem::directory_iterator(); ++it) {
      ++n;
    }
    return n;
  }
};

TEST_F(SeccompOciTest, CustomProfileFromConfigJson) {
  WriteConfig({"sh", "-c", absl::StrCat("mkdir ", Scratch(), "; grep Seccomp: /proc/self/status")},
              DenyMkdir(38));
  auto [code, out] = Cli("run s1");
  EXPECT_EQ(code, 0) << out;
  EXPECT_TRUE(absl::StrContains(out, "Function not implemented")) << out;
  EXPECT_TRUE(absl::StrContains(out, "Seccomp:\t2")) << out;
  EXPECT_EQ(CachedPrograms(), 1u);
  // The next container with the same profile loads the cached program (same result).
  std::tie(code, out) = Cli("run s2");
  EXPECT_TRUE(absl::StrContains(out, "Function not implemented")) << out;
  EXPECT_EQ(CachedPrograms(), 1u);
}

TEST_F(SeccompOciTest, NoSeccompObjectMeansUnconfined) {
  WriteConfig({"grep", "Seccomp:", "/proc/self/status"}, json());
  auto [code, out] = Cli("run s3");
  EXPECT_EQ(code, 0) << out;
  EXPECT_TRUE(absl::StrContains(out, "Seccomp:\t0")) << out;
}

TEST_F(SeccompOciTest, ExecThroughTheCliGetsTheProfile) {
  WriteConfig({"sleep", "1000"}, DenyMkdir(38));
  auto [code, out] = Cli("create s4");
  ASSERT_EQ(code, 0) << out;
  ASSERT_EQ(Cli("start s4").first, 0);
  std::tie(code, out) = Cli(absl::StrCat("exec s4 -- sh -c 'mkdir ", Scratch(),
                                         "; grep Seccomp: /proc/self/status'"));
  EXPECT_TRUE(absl::StrContains(out, "Function not implemented")) << out;
  EXPECT_TRUE(absl::StrContains(out, "Seccomp:\t2")) << out;
  EXPECT_EQ(Cli("delete --force s4").first, 0);
}

TEST_F(SeccompOciTest, BadProfileIsRefusedByFieldAndLeavesNothing) {
  json p = DenyMkdir();
  p["syscalls"].push_back({{"names", {"rmdir"}}, {"action", "SCMP_ACT_ALLOW"}});
  p["syscalls"].push_back({{"names", {"chmod"}}, {"action", "SCMP_ACT_ALLOW"}});
  p["syscalls"].push_back({{"names", {"chown"}}, {"action", "X"}});
  WriteConfig({"true"}, p);
  auto [code, out] = Cli("create s5");
  EXPECT_NE(code, 0);
  EXPECT_TRUE(absl::StrContains(out, "linux.seccomp.syscalls[3].action: unknown action \"X\""))
      << out;
  EXPECT_NE(Cli("state s5").first, 0);
  EXPECT_TRUE(LeftoverCgroups().empty());
}

}  // namespace
}  // namespace shoal::runtime::testing
