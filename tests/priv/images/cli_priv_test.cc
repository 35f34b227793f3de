// The shoal-image command line as a user runs it: import, ls, inspect, tag, rm, prune, lowerdirs,
// and clear errors with a non-zero exit code.
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>

#include "gtest/gtest.h"
#include "tests/unit/images/image_builder.h"

namespace shoal::runtime::images {
namespace {

using testing::Spit;
using testing::TempDir;

struct Result {
  int exit_code;
  std::string out;  // stdout + stderr
};

Result Cli(const std::string& root, const std::string& args) {
  std::string cmd = std::string(SHOAL_IMAGE_BIN) + " --root " + root + " " + args + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  Result r{-1, ""};
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), p)) > 0) r.out.append(buf, n);
  int status = ::pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

TEST(ImageCliTest, ImportListInspectTagRemovePrune) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root (priv test tier)";
  TempDir t;
  std::string root = t / "store";
  auto img = testing::BusyboxImage("cli\n", testing::Compression::kNone);
  Spit(t / "save.tar", testing::DockerSaveTar(img, "cli/app:1.0"));

  Result imp = Cli(root, "import " + (t / "save.tar"));
  ASSERT_EQ(imp.exit_code, 0) << imp.out;
  EXPECT_NE(imp.out.find("Loaded image " + img.config_digest.String()), std::string::npos)
      << imp.out;

  Result ls = Cli(root, "ls");
  ASSERT_EQ(ls.exit_code, 0) << ls.out;
  EXPECT_NE(ls.out.find("cli/app:1.0"), std::string::npos) << ls.out;
  EXPECT_NE(ls.out.find(img.config_digest.hex.substr(0, 12)), std::string::npos) << ls.out;

  Result inspect = Cli(root, "inspect cli/app:1.0");
  ASSERT_EQ(inspect.exit_code, 0) << inspect.out;
  EXPECT_NE(inspect.out.find("\"Id\": \"" + img.config_digest.String() + "\""), std::string::npos)
      << inspect.out;

  ASSERT_EQ(Cli(root, "tag cli/app:1.0 cli/app:latest").exit_code, 0);
  Result lower = Cli(root, "lowerdirs cli/app");
  ASSERT_EQ(lower.exit_code, 0) << lower.out;
  EXPECT_NE(lower.out.find("/layers/"), std::string::npos) << lower.out;

  Result untag = Cli(root, "rm cli/app:1.0");
  ASSERT_EQ(untag.exit_code, 0) << untag.out;
  EXPECT_NE(untag.out.find("Untagged: docker.io/cli/app:1.0"), std::string::npos) << untag.out;
  Result rm = Cli(root, "rm cli/app");
  ASSERT_EQ(rm.exit_code, 0) << rm.out;
  EXPECT_NE(rm.out.find("Deleted: " + img.config_digest.String()), std::string::npos) << rm.out;
  EXPECT_NE(rm.out.find("Deleted layer: "), std::string::npos) << rm.out;

  Result prune = Cli(root, "prune");
  ASSERT_EQ(prune.exit_code, 0) << prune.out;
  EXPECT_TRUE(std::filesystem::is_empty(root + "/layers"));
  EXPECT_TRUE(std::filesystem::is_empty(root + "/blobs/sha256"));
}

TEST(ImageCliTest, ErrorsAreClearAndExitNonZero) {
  TempDir t;
  std::string root = t / "store";
  Result bad_ref = Cli(root, "pull 'Bad/Name'");
  EXPECT_EQ(bad_ref.exit_code, 1);
  EXPECT_NE(bad_ref.out.find("error: invalid reference \"Bad/Name\""), std::string::npos)
      << bad_ref.out;
  Result missing = Cli(root, "inspect nope:1");
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.out.find("no such image: nope:1"), std::string::npos) << missing.out;
  Result refused = Cli(root, "--insecure-registry 127.0.0.1:1 pull 127.0.0.1:1/x:1");
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_NE(refused.out.find("pull 127.0.0.1:1/x:1"), std::string::npos) << refused.out;
}

}  // namespace
}  // namespace shoal::runtime::images
