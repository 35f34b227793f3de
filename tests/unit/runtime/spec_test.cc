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

ContainerSpec MappedSpec() {
  ContainerSpec s;
  s.process.args = {"sh"};
  s.uid_mappings = {{0, 100000, 65536}};
  s.gid_mappings = {{0, 100000, 65536}};
  return s;
}

std::string MapError(void (*mutate)(ContainerSpec&)) {
  ContainerSpec s = MappedSpec();
  mutate(s);
  absl::Status st = ValidateIdMappings(s);
  EXPECT_TRUE(absl::IsInvalidArgument(st)) << st;
  return std::string(st.message());
}

TEST(IdMaps, RenderAndMap) {
  std::vector<kernel::IdMapping> maps = {{0, 100000, 1000}, {1000, 5000, 1}};
  EXPECT_EQ(kernel::RenderIdMap(maps), "0 100000 1000\n1000 5000 1\n");
  EXPECT_EQ(kernel::MapToHost(maps, 0), 100000u);
  EXPECT_EQ(kernel::MapToHost(maps, 999), 100999u);
  EXPECT_EQ(kernel::MapToHost(maps, 1000), 5000u);
  EXPECT_EQ(kernel::MapToHost(maps, 1001), std::nullopt);
  EXPECT_EQ(kernel::MapToHost({{4294967294u, 7, 1}}, 4294967294u), 7u);
}

TEST(IdMaps, ValidMapsAndNoUserNamespace) {
  EXPECT_TRUE(ValidateIdMappings(MappedSpec()).ok());
  ContainerSpec none;
  EXPECT_FALSE(none.user_namespace());
  EXPECT_TRUE(ValidateIdMappings(none).ok());
  ContainerSpec two = MappedSpec();
  two.uid_mappings = {{1, 200001, 10}, {0, 200000, 1}};  // adjacent ranges are fine
  two.process.uid = 5;
  EXPECT_TRUE(ValidateIdMappings(two).ok()) << ValidateIdMappings(two);
}

TEST(IdMaps, ErrorsNameTheFieldAndReason) {
  EXPECT_TRUE(absl::StrContains(MapError([](ContainerSpec& s) { s.gid_mappings.clear(); }),
                                "gid_mappings: must be set with uid_mappings"));
  EXPECT_TRUE(absl::StrContains(MapError([](ContainerSpec& s) { s.uid_mappings.clear(); }),
                                "uid_mappings: must be set with gid_mappings"));
  EXPECT_TRUE(absl::StrContains(
      MapError([](ContainerSpec& s) { s.uid_mappings[0].size = 0; }),
      "uid_mappings[0].size: must be > 0"));
  EXPECT_TRUE(absl::StrContains(
      MapError([](ContainerSpec& s) { s.gid_mappings[0].host_id = 4294967000u; }),
      "gid_mappings[0]: host_id 4294967000 + size 65536 goes past"));
  EXPECT_TRUE(absl::StrContains(
      MapError([](ContainerSpec& s) { s.uid_mappings.push_back({65535, 300000, 10}); }),
      "uid_mappings[1]: container ids 65535-65544 overlap uid_mappings[0]"));
  EXPECT_TRUE(absl::StrContains(
      MapError([](ContainerSpec& s) { s.gid_mappings.push_back({70000, 99999, 2}); }),
      "gid_mappings[1]: host ids 99999-100000 overlap gid_mappings[0]"));
  EXPECT_TRUE(absl::StrContains(
      MapError([](ContainerSpec& s) { s.uid_mappings = {{1, 100000, 10}}; }),
      "uid_mappings: must map container id 0"));
  EXPECT_TRUE(absl::StrContains(MapError([](ContainerSpec& s) { s.process.uid = 70000; }),
                                "process.uid: 70000 is not mapped by uid_mappings"));
  EXPECT_TRUE(absl::StrContains(MapError([](ContainerSpec& s) { s.process.gid = 70000; }),
                                "process.gid: 70000 is not mapped"));
  EXPECT_TRUE(absl::StrContains(
      MapError([](ContainerSpec& s) { s.process.additional_gids = {5, 70000}; }),
      "process.additional_gids[1]: 70000 is not mapped"));
  EXPECT_TRUE(absl::StrContains(MapError([](ContainerSpec& s) {
                                  s.uid_mappings.clear();
                                  for (uint32_t i = 0; i < 341; ++i) {
                                    s.uid_mappings.push_back({i, 100000 + i, 1});
                                  }
                                }),
                                "uid_mappings: 341 lines; the kernel accepts at most 340"));
}

}  // namespace
}  // namespace shoal::runtime
