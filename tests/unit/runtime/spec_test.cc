#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "runtime/spec.h"

namespace shoal::runtime {
namespace {

TEST(Spec, IdRules) {
  EXPECT_TRUE(ValidateId("web.1_a-b").ok());
  EXPECT_FALSE(ValidateId("").ok());
  EXPECT_FALSE(ValidateId("-x").ok());
  EXPECT_FALSE(ValidateId("a/b").ok());
  EXPECT_FALSE(ValidateId(std::string(129, 'a')).ok());
}

TEST(Spec, ProcessErrorsNameTheField) {
  ProcessSpec p;
  EXPECT_TRUE(absl::StrContains(ValidateProcess(p, "process").message(), "process.args"));
  p.args = {"sh"};
  p.cwd = "rel";
  EXPECT_TRUE(absl::StrContains(ValidateProcess(p, "process").message(), "process.cwd"));
  p.cwd = "/";
  p.env = {"NOEQUALS"};
  EXPECT_TRUE(absl::StrContains(ValidateProcess(p, "process").message(), "process.env[0]"));
  p.env = {};
  p.rlimits = {{"RLIMIT_BOGUS", 1, 1}};
  EXPECT_TRUE(absl::StrContains(ValidateProcess(p, "process").message(), "rlimits[0]"));
  p.rlimits = {{"nofile", 10, 5}};
  EXPECT_TRUE(absl::StrContains(ValidateProcess(p, "process").message(), "soft must be"));
  p.rlimits = {{"nofile", 5, 10}};
  EXPECT_TRUE(ValidateProcess(p, "process").ok());
}

TEST(Spec, RlimitNames) {
  EXPECT_GE(RlimitResource("RLIMIT_NOFILE"), 0);
  EXPECT_EQ(RlimitResource("nofile"), RlimitResource("RLIMIT_NOFILE"));
  EXPECT_EQ(RlimitResource("nope"), -1);
}

}  // namespace
}  // namespace shoal::runtime
