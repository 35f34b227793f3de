// config.json linux.seccomp -> ContainerSpec (runtime/oci/config.h), and the custom profile
// through the state directory's spec.json (runtime/spec_json.h) and exec's process.json.
#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "kernel/seccomp/oci_json.h"
#include "nlohmann/json.hpp"
#include "runtime/oci/config.h"
#include "runtime/spec_json.h"

namespace shoal::runtime {
namespace {

using nlohmann::json;

json Config(const json& seccomp) {
  json c = {{"ociVersion", "1.0.2"},
            {"process", {{"args", {"true"}}, {"cwd", "/"}}},
            {"root", {{"path", "rootfs"}}},
            {"linux",
             {{"namespaces",
               {{{"type", "pid"}},
                {{"type", "network"}},
                {{"type", "mount"}},
                {{"type", "ipc"}},
                {{"type", "uts"}}}}}}};
  if (!seccomp.is_null()) c["linux"]["seccomp"] = seccomp;
  return c;
}

const json kProfile = {
    {"defaultAction", "SCMP_ACT_ERRNO"},
    {"defaultErrnoRet", 1},
    {"architectures", {"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"}},
    {"syscalls",
     {{{"names", {"read", "write", "exit_group"}}, {"action", "SCMP_ACT_ALLOW"}},
      {{"names", {"clone3"}}, {"action", "SCMP_ACT_ERRNO"}, {"errnoRet", 38}},
      {{"names", {"personality"}},
       {"action", "SCMP_ACT_ALLOW"},
       {"args", {{{"index", 0}, {"value", 0}, {"op", "SCMP_CMP_EQ"}}}}}}}};

TEST(SeccompConfig, ProfileIsTakenExactly) {
  auto b = ParseOciConfig(Config(kProfile).dump(), "/b", "c1");
  ASSERT_TRUE(b.ok()) << b.status();
  const ProcessSpec& p = b->spec.process;
  EXPECT_TRUE(p.seccomp);
  ASSERT_TRUE(p.seccomp_profile.has_value());
  EXPECT_EQ(p.seccomp_profile->default_action, kernel::SeccompAction::kErrno);
  ASSERT_EQ(p.seccomp_profile->syscalls.size(), 3u);
  EXPECT_EQ(p.seccomp_profile->syscalls[1].errno_ret, 38u);
  EXPECT_EQ(p.seccomp_profile->syscalls[2].args.size(), 1u);
  EXPECT_EQ(*p.seccomp_profile, *kernel::SeccompProfileFromOciJson(kProfile, "x"));
}

TEST(SeccompConfig, NoSeccompObjectIsUnconfined) {
  json absent = Config(json());
  json null_member = absent;
  null_member["linux"]["seccomp"] = nullptr;
  json empty = absent;  // runc: neither defaultAction nor syscalls = seccomp disabled
  empty["linux"]["seccomp"] = json::object();
  for (const json& c : {absent, null_member, empty}) {
    auto b = ParseOciConfig(c.dump(), "/b", "c1");
    ASSERT_TRUE(b.ok()) << b.status();
    EXPECT_FALSE(b->spec.process.seccomp);
    EXPECT_FALSE(b->spec.process.seccomp_profile.has_value());
  }
}

TEST(SeccompConfig, ErrorsNameTheOciField) {
  struct Case {
    json seccomp;
    std::string message;
  };
  json bad_action = kProfile;
  bad_action["syscalls"].push_back({{"names", {"mkdir"}}, {"action", "X"}});
  json bad_op = kProfile;
  bad_op["syscalls"][2]["args"][0]["op"] = "SCMP_CMP_ABOUT";
  json bad_arch = kProfile;
  bad_arch["architectures"][1] = "SCMP_ARCH_Z80";
  json notify = kProfile;
  notify["syscalls"][0]["action"] = "SCMP_ACT_NOTIFY";
  std::vector<Case> cases = {
      {bad_action, "linux.seccomp.syscalls[3].action: unknown action \"X\""},
      {bad_op, "linux.seccomp.syscalls[2].args[0].op: unknown operator \"SCMP_CMP_ABOUT\""},
      {bad_arch, "linux.seccomp.architectures[1]: unknown architecture \"SCMP_ARCH_Z80\""},
      {notify, "linux.seccomp.syscalls[0].action: SCMP_ACT_NOTIFY is not supported"},
      {json("default"), "linux.seccomp: must be an object"},
  };
  for (const Case& c : cases) {
    auto b = ParseOciConfig(Config(c.seccomp).dump(), "/b", "c1");
    ASSERT_FALSE(b.ok()) << c.seccomp.dump();
    EXPECT_TRUE(absl::StartsWith(b.status().message(), c.message))
        << "got: " << b.status().message() << "\nwant: " << c.message;
  }
}

TEST(SeccompConfig, ProfileSurvivesTheStateDirectoryAndExec) {
  auto b = ParseOciConfig(Config(kProfile).dump(), "/b", "c1");
  ASSERT_TRUE(b.ok()) << b.status();
  auto back = SpecFromJson(SpecToJson(b->spec));
  ASSERT_TRUE(back.ok()) << back.status();
  ASSERT_TRUE(back->process.seccomp_profile.has_value());
  EXPECT_EQ(*back->process.seccomp_profile, *b->spec.process.seccomp_profile);
  // Docker's default (no custom profile) stays without one.
  ContainerSpec plain;
  plain.id = "p";
  auto plain_back = SpecFromJson(SpecToJson(plain));
  ASSERT_TRUE(plain_back.ok());
  EXPECT_TRUE(plain_back->process.seccomp);
  EXPECT_FALSE(plain_back->process.seccomp_profile.has_value());
  // A corrupted profile in spec.json is an error, not a silently different filter.
  json j = json::parse(SpecToJson(b->spec));
  j["process"]["seccomp_profile"]["defaultAction"] = "SCMP_ACT_NOPE";
  auto bad = SpecFromJson(j.dump());
  ASSERT_FALSE(bad.ok());
  EXPECT_TRUE(absl::StrContains(bad.status().message(), "process.seccomp_profile.defaultAction"))
      << bad.status();
  // exec --process: the process object carries no seccomp; the container's profile stays.
  auto exec = ParseOciProcess(R"({"args": ["sh"], "cwd": "/"})", b->spec.process);
  ASSERT_TRUE(exec.ok()) << exec.status();
  ASSERT_TRUE(exec->seccomp_profile.has_value());
  EXPECT_EQ(*exec->seccomp_profile, *b->spec.process.seccomp_profile);
}

}  // namespace
}  // namespace shoal::runtime
