// kernel/seccomp: OCI linux.seccomp parsing (errors name the field), compilation of arbitrary
// profiles, the compile-once caches (memory and disk), and the compiled filters' behaviour
// observed in a forked child that loads them (no_new_privs, so no root needed).
#include <errno.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "kernel/seccomp/oci_json.h"
#include "kernel/seccomp/seccomp.h"

namespace shoal::kernel {
namespace {

using nlohmann::json;

absl::StatusOr<SeccompProfile> Parse(const json& j) {
  return SeccompProfileFromOciJson(j, "linux.seccomp");
}

SeccompProfile MustParse(const json& j) {
  auto p = Parse(j);
  EXPECT_TRUE(p.ok()) << p.status();
  return p.ok() ? *p : SeccompProfile{};
}

// Forks; the child loads `profile` (with no_new_privs) and exits with what `probe` returns
// (0..255). Returns the child's wait status.
int InChild(const SeccompProfile& profile, int (*probe)()) {
  auto prog = CompileProfile(profile);
  EXPECT_TRUE(prog.ok()) << prog.status();
  if (!prog.ok()) return -1;
  pid_t pid = fork();
  if (pid == 0) {
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) _exit(200);
    if (LoadFilter(*prog) != 0) _exit(201);
    _exit(probe());
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return status;
}

int ExitCode(int status) { return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status); }

// errno of mkdir on a path whose parent does not exist: ENOENT when mkdir really ran.
int MkdirErrno() {
  return syscall(SYS_mkdir, "/nonexistent-shoal-dir/x", 0755) == 0 ? 0 : errno;
}

TEST(SeccompProfileParse, FullProfile) {
  json j = {{"defaultAction", "SCMP_ACT_ERRNO"},
            {"defaultErrnoRet", 38},
            {"architectures", {"SCMP_ARCH_X86_64", "SCMP_ARCH_X86"}},
            {"flags", {"SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"}},
            {"syscalls",
             {{{"names", {"read", "write"}}, {"action", "SCMP_ACT_ALLOW"}},
              {{"names", {"mkdir"}}, {"action", "SCMP_ACT_ERRNO"}, {"errnoRet", 1}},
              {{"names", {"personality"}},
               {"action", "SCMP_ACT_ALLOW"},
               {"args", {{{"index", 0}, {"value", 8}, {"op", "SCMP_CMP_EQ"}}}}},
              {{"names", {"clone"}},
               {"action", "SCMP_ACT_ALLOW"},
               {"args",
                {{{"index", 0}, {"value", 0x7E020000}, {"valueTwo", 0}, {"op",
                                                                        "SCMP_CMP_MASKED_EQ"}}}}},
              {{"names", {"kill"}}, {"action", "SCMP_ACT_KILL"}}}}};
  SeccompProfile p = MustParse(j);
  EXPECT_EQ(p.default_action, SeccompAction::kErrno);
  EXPECT_EQ(p.default_errno_ret, 38u);
  EXPECT_EQ(p.architectures.size(), 2u);
  ASSERT_TRUE(p.flags.has_value());
  EXPECT_EQ(*p.flags, (std::vector<SeccompFlag>{SeccompFlag::kLog, SeccompFlag::kSpecAllow}));
  ASSERT_EQ(p.syscalls.size(), 5u);
  EXPECT_EQ(p.syscalls[1].errno_ret, 1u);
  EXPECT_EQ(p.syscalls[3].args[0].op, SeccompOp::kMaskedEq);
  EXPECT_EQ(p.syscalls[3].args[0].value, 0x7E020000u);
  EXPECT_EQ(p.syscalls[4].action, SeccompAction::kKillThread);
  // Canonical round trip.
  EXPECT_EQ(MustParse(SeccompProfileToOciJson(p)), p);
  // No flags member: the default (SPEC_ALLOW with fallback), distinct from an empty list.
  json no_flags = j;
  no_flags.erase("flags");
  EXPECT_FALSE(MustParse(no_flags).flags.has_value());
  no_flags["flags"] = json::array();
  EXPECT_TRUE(MustParse(no_flags).flags.has_value());
}

TEST(SeccompProfileParse, ErrorsNameTheField) {
  json ok_call = {{"names", {"read"}}, {"action", "SCMP_ACT_ALLOW"}};
  auto with_call = [&](json call) {
    return json{{"defaultAction", "SCMP_ACT_ALLOW"},
                {"syscalls", {ok_call, ok_call, ok_call, call}}};
  };
  struct Case {
    json profile;
    std::string message;
  };
  std::vector<Case> cases = {
      {with_call({{"names", {"mkdir"}}, {"action", "X"}}),
       "linux.seccomp.syscalls[3].action: unknown action \"X\""},
      {with_call({{"names", {"mkdir"}}}), "linux.seccomp.syscalls[3].action: required"},
      {with_call({{"action", "SCMP_ACT_ERRNO"}}), "linux.seccomp.syscalls[3].names: required"},
      {with_call({{"names", json::array()}, {"action", "SCMP_ACT_ERRNO"}}),
       "linux.seccomp.syscalls[3].names: must list at least one syscall"},
      {with_call({{"names", {"mkdir", 7}}, {"action", "SCMP_ACT_ERRNO"}}),
       "linux.seccomp.syscalls[3].names[1]: must be a string"},
      {with_call({{"names", {"mkdir"}}, {"action", "SCMP_ACT_ALLOW"}, {"errnoRet", 1}}),
       "linux.seccomp.syscalls[3].errnoRet: only valid with SCMP_ACT_ERRNO or SCMP_ACT_TRACE"},
      {with_call({{"names", {"mkdir"}}, {"action", "SCMP_ACT_ERRNO"}, {"errnoRet", 5000}}),
       "linux.seccomp.syscalls[3].errnoRet: 5000 is not an errno value"},
      {with_call({{"names", {"mkdir"}}, {"action", "SCMP_ACT_ERRNO"}, {"errnoRet", -1}}),
       "linux.seccomp.syscalls[3].errnoRet: must be a non-negative integer"},
      {with_call({{"names", {"mkdir"}}, {"action", "SCMP_ACT_NOTIFY"}}),
       "linux.seccomp.syscalls[3].action: SCMP_ACT_NOTIFY is not supported"},
      {with_call({{"names", {"personality"}},
                  {"action", "SCMP_ACT_ALLOW"},
                  {"args", {{{"index", 0}, {"value", 0}, {"op", "SCMP_CMP_LIKE"}}}}}),
       "linux.seccomp.syscalls[3].args[0].op: unknown operator \"SCMP_CMP_LIKE\""},
      {with_call({{"names", {"personality"}},
                  {"action", "SCMP_ACT_ALLOW"},
                  {"args", {{{"index", 6}, {"value", 0}, {"op", "SCMP_CMP_EQ"}}}}}),
       "linux.seccomp.syscalls[3].args[0].index: 6 is out of range"},
      {with_call({{"names", {"personality"}},
                  {"action", "SCMP_ACT_ALLOW"},
                  {"args", {{{"index", 0}, {"op", "SCMP_CMP_EQ"}}}}}),
       "linux.seccomp.syscalls[3].args[0].value: required"},
      {with_call({{"names", {"personality"}},
                  {"action", "SCMP_ACT_ALLOW"},
                  {"args", {{{"index", 0}, {"value", "zero"}, {"op", "SCMP_CMP_EQ"}}}}}),
       "linux.seccomp.syscalls[3].args[0].value: must be a non-negative integer"},
      {{{"syscalls", json::array()}}, "linux.seccomp.defaultAction: required"},
      {{{"defaultAction", "SCMP_ACT_DENY"}}, "linux.seccomp.defaultAction: unknown action"},
      {{{"defaultAction", "SCMP_ACT_NOTIFY"}}, "linux.seccomp.defaultAction: SCMP_ACT_NOTIFY"},
      {{{"defaultAction", "SCMP_ACT_ALLOW"}, {"defaultErrnoRet", 1}},
       "linux.seccomp.defaultErrnoRet: only valid with SCMP_ACT_ERRNO or SCMP_ACT_TRACE"},
      {{{"defaultAction", "SCMP_ACT_ALLOW"}, {"architectures", {"SCMP_ARCH_X86_64", "VAX"}}},
       "linux.seccomp.architectures[1]: unknown architecture \"VAX\""},
      {{{"defaultAction", "SCMP_ACT_ALLOW"}, {"flags", {"SECCOMP_FILTER_FLAG_FAST"}}},
       "linux.seccomp.flags[0]: unknown flag \"SECCOMP_FILTER_FLAG_FAST\""},
      {{{"defaultAction", "SCMP_ACT_ALLOW"},
        {"flags", {"SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"}}},
       "linux.seccomp.flags[0]: SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV needs a notification"},
      {{{"defaultAction", "SCMP_ACT_ALLOW"}, {"listenerPath", "/run/l.sock"}},
       "linux.seccomp.listenerPath: "},
      {{{"defaultAction", "SCMP_ACT_ALLOW"}, {"syscalls", json::array({"read"})}},
       "linux.seccomp.syscalls[0]: must be an object"},
      {{{"defaultAction", "SCMP_ACT_ALLOW"}, {"syscalls", "read"}},
       "linux.seccomp.syscalls: must be an array"},
      {json::array(), "linux.seccomp: must be an object"},
  };
  for (const Case& c : cases) {
    auto p = Parse(c.profile);
    ASSERT_FALSE(p.ok()) << c.profile.dump();
    EXPECT_TRUE(absl::StartsWith(p.status().message(), c.message))
        << c.profile.dump() << "\n  got: " << p.status().message() << "\n want: " << c.message;
  }
}

TEST(SeccompProfileCompile, UnknownSyscallNamesAreSkipped) {
  SeccompProfile p = MustParse(
      {{"defaultAction", "SCMP_ACT_ALLOW"},
       {"syscalls",
        {{{"names", {"no_such_syscall_2099", "mkdir"}}, {"action", "SCMP_ACT_ERRNO"}}}}});
  EXPECT_TRUE(CompileProfile(p).ok());
  EXPECT_EQ(ExitCode(InChild(p, MkdirErrno)), EPERM);
}

TEST(SeccompProfileCompile, DockerDefaultIsTheSameProgramEitherWay) {
  auto direct = CompileDockerDefault(DockerDefaultCaps());
  auto via_json =
      CompileProfile(MustParse(SeccompProfileToOciJson(DockerDefaultProfile(DockerDefaultCaps()))));
  ASSERT_TRUE(direct.ok() && via_json.ok());
  ASSERT_EQ(direct->insns.size(), via_json->insns.size());
  EXPECT_EQ(memcmp(direct->insns.data(), via_json->insns.data(),
                   direct->insns.size() * sizeof(sock_filter)),
            0);
}

TEST(SeccompProfileCompile, EnosysPrefixFollowsRunc) {
  auto compiled = [](json j) {
    auto prog = CompileProfile(MustParse(j));
    EXPECT_TRUE(prog.ok()) << prog.status();
    return prog.ok() ? prog->max_named_syscall : -1;
  };
  json calls = {{{"names", {"read", "mkdir"}}, {"action", "SCMP_ACT_ALLOW"}}};
  EXPECT_GT(compiled({{"defaultAction", "SCMP_ACT_ERRNO"}, {"syscalls", calls}}), 0);
  EXPECT_GT(compiled({{"defaultAction", "SCMP_ACT_KILL_PROCESS"}, {"syscalls", calls}}), 0);
  // Allow-like default, or the default already is ENOSYS: no prefix.
  EXPECT_EQ(compiled({{"defaultAction", "SCMP_ACT_ALLOW"},
                      {"syscalls", {{{"names", {"mkdir"}}, {"action", "SCMP_ACT_ERRNO"}}}}}),
            0);
  EXPECT_EQ(compiled({{"defaultAction", "SCMP_ACT_ERRNO"},
                      {"defaultErrnoRet", ENOSYS},
                      {"syscalls", calls}}),
            0);
}

TEST(SeccompProfileBehaviour, ErrnoRetIsHonoured) {
  SeccompProfile p = MustParse(
      {{"defaultAction", "SCMP_ACT_ALLOW"},
       {"syscalls", {{{"names", {"mkdir"}}, {"action", "SCMP_ACT_ERRNO"}, {"errnoRet", 38}}}}});
  EXPECT_EQ(ExitCode(InChild(p, MkdirErrno)), ENOSYS);
  // Without errnoRet: EPERM; and without the filter mkdir really runs (ENOENT).
  p.syscalls[0].errno_ret.reset();
  EXPECT_EQ(ExitCode(InChild(p, MkdirErrno)), EPERM);
  p.syscalls.clear();
  EXPECT_EQ(ExitCode(InChild(p, MkdirErrno)), ENOENT);
}

int PersonalityProbe() {
  // Exit code bits: 1 = personality(PER_LINUX) allowed, 2 = personality(0x0008) allowed.
  int r = 0;
  // All six argument registers explicit: a filter may test any of them.
  auto call = [](unsigned long persona) { return syscall(SYS_personality, persona, 0, 0, 0, 0, 0); };
  if (call(0xffffffffUL) >= 0 && call(0) >= 0) r |= 1;
  if (call(0x0008UL) >= 0) r |= 2;
  call(0);
  return r;
}

TEST(SeccompProfileBehaviour, ArgConditions) {
  // personality allowed only with arg0 == 0 (and 0xffffffff, the query).
  SeccompProfile p = MustParse(
      {{"defaultAction", "SCMP_ACT_ALLOW"},
       {"syscalls",
        {{{"names", {"personality"}},
          {"action", "SCMP_ACT_ERRNO"},
          {"args",
           {{{"index", 0}, {"value", 0}, {"op", "SCMP_CMP_NE"}},
            {{"index", 0}, {"value", 0xffffffff}, {"op", "SCMP_CMP_NE"}}}}}}}});
  // Two args on the same index: separate rules (ORed), so arg0 != 0 alone already denies,
  // including the query 0xffffffff — as runc compiles it.
  EXPECT_EQ(ExitCode(InChild(p, PersonalityProbe)), 0);
  // Distinct indexes are ANDed: arg0 == 8 && arg1 == 0.
  p.syscalls[0].args = {{0, 0, 0, SeccompOp::kNe}, {1, 0, 0, SeccompOp::kEq}};
  p.syscalls[0].args[0].value = 0x0008;
  p.syscalls[0].args[0].op = SeccompOp::kEq;
  EXPECT_EQ(ExitCode(InChild(p, PersonalityProbe)), 1);  // only 0x0008 denied
  // Default deny with an allow rule conditioned on arg0 == 0.
  SeccompProfile allow_list = DockerDefaultProfile(DockerDefaultCaps());
  for (SeccompSyscall& s : allow_list.syscalls) {
    std::erase(s.names, "personality");
  }
  std::erase_if(allow_list.syscalls, [](const SeccompSyscall& s) { return s.names.empty(); });
  allow_list.syscalls.push_back(
      {{"personality"}, SeccompAction::kAllow, std::nullopt, {{0, 0, 0, SeccompOp::kEq}}});
  int st = InChild(allow_list, [] {
    if (syscall(SYS_personality, 0UL, 0, 0, 0, 0, 0) < 0) return 10;
    return syscall(SYS_personality, 0x0008UL, 0, 0, 0, 0, 0) < 0 ? errno : 0;
  });
  EXPECT_EQ(ExitCode(st), EPERM);
}

TEST(SeccompProfileBehaviour, DefaultErrnoWithAllowList) {
  SeccompProfile p = DockerDefaultProfile(DockerDefaultCaps());
  for (SeccompSyscall& s : p.syscalls) std::erase(s.names, "mkdir");
  p.default_errno_ret = EACCES;
  EXPECT_EQ(ExitCode(InChild(p, MkdirErrno)), EACCES);
  EXPECT_EQ(ExitCode(InChild(p, [] { return getpid() > 0 ? 7 : 0; })), 7);
}

TEST(SeccompProfileBehaviour, KillTrapAndLogActions) {
  auto with = [](const char* action) {
    return MustParse({{"defaultAction", "SCMP_ACT_ALLOW"},
                      {"syscalls", {{{"names", {"mkdir"}}, {"action", action}}}}});
  };
  int st = InChild(with("SCMP_ACT_KILL_PROCESS"), MkdirErrno);
  EXPECT_TRUE(WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS) << st;
  st = InChild(with("SCMP_ACT_TRAP"), MkdirErrno);
  EXPECT_TRUE(WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS) << st;
  st = InChild(with("SCMP_ACT_KILL"), MkdirErrno);
  EXPECT_TRUE(WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS) << st;
  EXPECT_EQ(ExitCode(InChild(with("SCMP_ACT_LOG"), MkdirErrno)), ENOENT);  // logged, allowed
  // SCMP_ACT_TRACE without a tracer: the syscall fails with ENOSYS (seccomp(2)).
  EXPECT_EQ(ExitCode(InChild(with("SCMP_ACT_TRACE"), MkdirErrno)), ENOSYS);
}

TEST(SeccompProfileBehaviour, ExplicitFlagsAreUsed) {
  SeccompProfile p = MustParse({{"defaultAction", "SCMP_ACT_ALLOW"},
                                {"flags", {"SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_TSYNC",
                                           "SECCOMP_FILTER_FLAG_SPEC_ALLOW"}},
                                {"syscalls", {{{"names", {"mkdir"}}, {"action", "SCMP_ACT_ERRNO"}}}}});
  auto prog = CompileProfile(p);
  ASSERT_TRUE(prog.ok());
  EXPECT_TRUE(prog->flags_explicit);
  EXPECT_EQ(prog->flags, unsigned{SECCOMP_FILTER_FLAG_LOG | SECCOMP_FILTER_FLAG_TSYNC |
                                  SECCOMP_FILTER_FLAG_SPEC_ALLOW});
  EXPECT_EQ(ExitCode(InChild(p, MkdirErrno)), EPERM);
}

TEST(SeccompCacheTest, CompilesEachProfileOnce) {
  SeccompCache cache;
  SeccompProfile a = MustParse({{"defaultAction", "SCMP_ACT_ALLOW"},
                                {"syscalls", {{{"names", {"mkdir"}}, {"action", "SCMP_ACT_ERRNO"}}}}});
  SeccompProfile b = a;
  b.syscalls[0].errno_ret = 38;
  auto a1 = cache.Get(a);
  auto a2 = cache.Get(SeccompProfile(a));
  ASSERT_TRUE(a1.ok() && a2.ok());
  EXPECT_EQ(a1->get(), a2->get());
  EXPECT_EQ(cache.compilations(), 1);
  auto b1 = cache.Get(b);
  ASSERT_TRUE(b1.ok());
  EXPECT_NE(a1->get(), b1->get());
  EXPECT_EQ(cache.compilations(), 2);
  // Docker's default by capability set, and the same profile given explicitly: one compile.
  ASSERT_TRUE(cache.DockerDefault(DockerDefaultCaps()).ok());
  ASSERT_TRUE(cache.Get(DockerDefaultProfile(DockerDefaultCaps())).ok());
  EXPECT_EQ(cache.compilations(), 3);
}

TEST(SeccompCacheTest, DiskCacheSurvivesTheProcessAndRejectsGarbage) {
  std::string dir = absl::StrCat("/tmp/sec-cache-test-", getpid(), "/.cache/seccomp");
  SeccompProfile p = DockerDefaultProfile(DockerDefaultCaps());
  std::shared_ptr<const BpfProgram> first;
  {
    SeccompCache cache;
    cache.SetDiskCacheDir(dir);
    auto prog = cache.Get(p);
    ASSERT_TRUE(prog.ok()) << prog.status();
    first = *prog;
    EXPECT_EQ(cache.compilations(), 1);
  }
  ASSERT_EQ(std::distance(std::filesystem::directory_iterator(dir), {}), 1);
  EXPECT_EQ(std::filesystem::status(dir).permissions() & std::filesystem::perms::all,
            std::filesystem::perms::owner_all);
  {
    SeccompCache cache;  // a new process, in effect
    cache.SetDiskCacheDir(dir);
    auto prog = cache.Get(p);
    ASSERT_TRUE(prog.ok());
    EXPECT_EQ(cache.compilations(), 0);
    ASSERT_EQ((*prog)->insns.size(), first->insns.size());
    EXPECT_EQ(memcmp((*prog)->insns.data(), first->insns.data(),
                     first->insns.size() * sizeof(sock_filter)),
              0);
    EXPECT_EQ((*prog)->max_named_syscall, first->max_named_syscall);
  }
  // A truncated entry is a miss: recompiled, not loaded.
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    std::filesystem::resize_file(e.path(), 100);
  }
  {
    SeccompCache cache;
    cache.SetDiskCacheDir(dir);
    ASSERT_TRUE(cache.Get(p).ok());
    EXPECT_EQ(cache.compilations(), 1);
  }
  std::filesystem::remove_all(absl::StrCat("/tmp/sec-cache-test-", getpid()));
}

}  // namespace
}  // namespace shoal::kernel
