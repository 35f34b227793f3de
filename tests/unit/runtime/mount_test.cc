#include <sys/mount.h>
#include <unistd.h>

#include <stdlib.h>

#include <filesystem>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "kernel/mount/mount.h"

namespace shoal::kernel {
namespace {

TEST(MountOptions, FlagsAndData) {
  auto o = ParseMountOptions({"ro", "nosuid", "nodev", "size=64m", "mode=1777", "rprivate"});
  ASSERT_TRUE(o.ok());
  EXPECT_TRUE(o->readonly);
  EXPECT_EQ(o->flags, static_cast<unsigned long>(MS_NOSUID | MS_NODEV));
  EXPECT_EQ(o->data, "size=64m,mode=1777");
  EXPECT_EQ(o->propagation, static_cast<unsigned long>(MS_PRIVATE | MS_REC));
  auto bad = ParseMountOptions({"ro", "frobnicate"});
  EXPECT_TRUE(absl::StrContains(bad.status().message(), "options[1]")) << bad.status();
}

TEST(MountPaths, DockerLists) {
  EXPECT_EQ(DockerMaskedPaths().size(), 12u);
  EXPECT_EQ(DockerReadonlyPaths().size(), 5u);
}

class InRoot : public ::testing::Test {
 protected:
  void SetUp() override {
    // A directory of its own: ctest runs these tests as parallel processes.
    std::string tmpl = ::testing::TempDir() + "/inroot-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    root_ = tmpl;
    std::filesystem::create_directories(root_ + "/etc");
    std::filesystem::create_directories(root_ + "/real");
    std::filesystem::create_directories(root_ + "/tmp");
    symlink("/etc", (root_ + "/abs").c_str());
    symlink("../../../../../../../../tmp", (root_ + "/up").c_str());
    symlink("real", (root_ + "/rel").c_str());
  }
  void TearDown() override { std::filesystem::remove_all(root_); }
  std::string root_;
};

TEST_F(InRoot, CheckRejectsEscapesAndAllowsInside) {
  EXPECT_TRUE(CheckInsideRoot(root_, "/etc/x/y", "f").ok());
  EXPECT_TRUE(CheckInsideRoot(root_, "/rel/new", "f").ok());
  auto up = CheckInsideRoot(root_, "/up/x", "mounts[0].destination");
  EXPECT_TRUE(absl::IsInvalidArgument(up)) << up;
  EXPECT_TRUE(absl::StrContains(up.message(), "mounts[0].destination")) << up;
  EXPECT_FALSE(CheckInsideRoot(root_, "/abs/x", "f").ok());  // absolute symlink
}

TEST_F(InRoot, MkdirAllStaysInsideTheRoot) {
  int root = open(root_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  ASSERT_GE(root, 0);
  char scratch[256];
  // An absolute symlink resolves against the container root, never the host's /etc.
  int fd = MkdirAllInRootRaw(root, "abs/shoaltest-created/deeper", false, scratch);
  ASSERT_GE(fd, 0) << strerror(-fd);
  close(fd);
  EXPECT_TRUE(std::filesystem::is_directory(root_ + "/etc/shoaltest-created/deeper"));
  EXPECT_FALSE(std::filesystem::exists("/etc/shoaltest-created"));
  fd = MkdirAllInRootRaw(root, "up/shoaltest-file", true, scratch);
  ASSERT_GE(fd, 0) << strerror(-fd);
  close(fd);
  // "../../..../tmp" climbs no higher than the container root: it lands on <root>/tmp.
  EXPECT_TRUE(std::filesystem::is_regular_file(root_ + "/tmp/shoaltest-file"));
  EXPECT_FALSE(std::filesystem::exists("/tmp/shoaltest-file"));
  close(root);
}

}  // namespace
}  // namespace shoal::kernel
