#include "base/file.h"

#include <dirent.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "gtest/gtest.h"

namespace shoal::base {
namespace {

class FileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/shoal-file-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  int CountEntries() {
    int n = 0;
    for (auto& e : std::filesystem::directory_iterator(dir_)) (void)e, ++n;
    return n;
  }
  std::string dir_;
};

TEST_F(FileTest, WriteThenReadRoundTrips) {
  std::string path = dir_ + "/state.json";
  ASSERT_TRUE(WriteFileAtomic(path, "{\"a\":1}").ok());
  EXPECT_EQ(*ReadFile(path), "{\"a\":1}");
  ASSERT_TRUE(WriteFileAtomic(path, "second").ok());
  EXPECT_EQ(*ReadFile(path), "second");
  EXPECT_EQ(CountEntries(), 1) << "temp file left behind";
}

TEST_F(FileTest, WriteAppliesExactModeRegardlessOfUmask) {
  std::string path = dir_ + "/secret";
  mode_t old = ::umask(0077);
  auto s = WriteFileAtomic(path, "x", 0644);
  ::umask(old);
  ASSERT_TRUE(s.ok()) << s;
  struct stat st;
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0644u);
}

TEST_F(FileTest, LargeContent) {
  std::string big(3 << 20, 'z');
  big[12345] = 'q';
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/big", big).ok());
  EXPECT_EQ(*ReadFile(dir_ + "/big"), big);
}

TEST_F(FileTest, FailureLeavesOldContentAndNoTemp) {
  std::string path = dir_ + "/target";
  ASSERT_TRUE(WriteFileAtomic(path, "old").ok());
  // Renaming a file over a non-empty directory fails: the write must fail cleanly.
  std::string blocker = dir_ + "/blocker";
  ASSERT_EQ(::mkdir(blocker.c_str(), 0755), 0);
  ASSERT_TRUE(WriteFileAtomic(blocker + "/f", "x").ok());
  absl::Status s = WriteFileAtomic(blocker, "new");
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find(blocker), std::string::npos) << s;
  EXPECT_EQ(*ReadFile(path), "old");
  EXPECT_EQ(CountEntries(), 2) << "temp file left behind";
}

TEST_F(FileTest, ErrorsNameThePath) {
  auto r = ReadFile(dir_ + "/missing");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(r.status().message().find(dir_ + "/missing"), std::string::npos);
  absl::Status w = WriteFileAtomic(dir_ + "/no/such/dir/f", "x");
  EXPECT_EQ(w.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(WriteFileAtomic("", "x").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(WriteFileAtomic(dir_ + "/", "x").code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(FileTest, RelativePathUsesCurrentDirectory) {
  char cwd[4096];
  ASSERT_NE(::getcwd(cwd, sizeof(cwd)), nullptr);
  ASSERT_EQ(::chdir(dir_.c_str()), 0);
  absl::Status s = WriteFileAtomic("rel.txt", "r");
  ASSERT_EQ(::chdir(cwd), 0);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(*ReadFile(dir_ + "/rel.txt"), "r");
}

}  // namespace
}  // namespace shoal::base
