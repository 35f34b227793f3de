// Layer extraction without privileges: content, modes, links, compression, DiffID, and
// malicious layers that must be refused without writing anything outside the layer directory.
#include "runtime/images/extract.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <filesystem>

#include "base/unique_fd.h"
#include "gtest/gtest.h"
#include "tests/unit/images/tar_builder.h"
#include "tests/unit/images/test_util.h"

namespace shoal::runtime::images {
namespace {

using testing::Compression;
using testing::MemFd;
using testing::Slurp;
using testing::Snapshot;
using testing::Spit;
using testing::TarBuilder;
using testing::TempDir;

class ExtractTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::filesystem::create_directories(tmp_ / "outside");
    std::filesystem::create_directories(tmp_ / "layer");
    Spit(tmp_ / "outside/secret", "original");
  }

  absl::StatusOr<ExtractStats> Extract(const std::string& tar) {
    base::UniqueFd blob(MemFd(tar));
    base::UniqueFd dest(::open((tmp_ / "layer").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    ExtractOptions opts;
    opts.preserve_owner = ::geteuid() == 0;
    return ExtractLayer(blob.get(), dest.get(), opts);
  }

  TempDir tmp_;
};

TEST_F(ExtractTest, UnpacksFilesDirsLinksWithModesAndTimes) {
  std::string tar = TarBuilder()
                        .Dir("bin", 0755)
                        .File("bin/tool", "#!/bin/sh\n", 04755)
                        .MTime(1600000000)
                        .Symlink("bin/sh", "busybox")
                        .Hardlink("bin/tool2", "bin/tool")
                        .File("etc/deep/conf", "x=1", 0600)  // parents implied
                        .Dir("empty", 01777)
                        .Build();
  auto stats = Extract(tar);
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->diff_id, Sha256Of(tar));
  EXPECT_EQ(stats->tar_bytes, tar.size());
  struct stat st;
  ASSERT_EQ(::lstat((tmp_ / "layer/bin/tool").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 04755u);
  EXPECT_EQ(st.st_mtime, 1600000000);
  EXPECT_EQ(st.st_nlink, 2u);
  struct stat st2;
  ASSERT_EQ(::lstat((tmp_ / "layer/bin/tool2").c_str(), &st2), 0);
  EXPECT_EQ(st.st_ino, st2.st_ino);
  EXPECT_EQ(std::filesystem::read_symlink(tmp_ / "layer/bin/sh"), "busybox");
  EXPECT_EQ(Slurp(tmp_ / "layer/etc/deep/conf"), "x=1");
  ASSERT_EQ(::lstat((tmp_ / "layer/empty").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 01777u);
}

TEST_F(ExtractTest, GzipAndZstdGiveSameTreeAndUncompressedDiffId) {
  TarBuilder b;
  b.File("a", std::string(100000, 'a')).File("d/b", "bee");
  std::string plain = b.Build();
  for (Compression c : {Compression::kGzip, Compression::kZstd}) {
    TempDir t;
    std::string blob = b.Build(c);
    ASSERT_NE(blob, plain);
    base::UniqueFd fd(MemFd(blob));
    base::UniqueFd dest(::open(t.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    auto stats = ExtractLayer(fd.get(), dest.get(), {.preserve_owner = false});
    ASSERT_TRUE(stats.ok()) << stats.status();
    EXPECT_EQ(stats->diff_id, Sha256Of(plain));
    EXPECT_EQ(Slurp(t / "a"), std::string(100000, 'a'));
    EXPECT_EQ(Slurp(t / "d/b"), "bee");
  }
}

TEST_F(ExtractTest, LaterEntryReplacesEarlierOneWithoutFollowingIt) {
  // A symlink to a host file, then a regular file of the same name: the symlink is replaced,
  // the host file is never written.
  auto stats = Extract(TarBuilder()
                           .Symlink("s", "../outside/secret")
                           .File("s", "pwned")
                           .Symlink("d", "../outside")
                           .Dir("d")
                           .File("d/inside", "ok")
                           .Build());
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(Slurp(tmp_ / "outside/secret"), "original");
  EXPECT_EQ(Slurp(tmp_ / "layer/s"), "pwned");
  EXPECT_TRUE(std::filesystem::is_directory(std::filesystem::symlink_status(tmp_ / "layer/d")));
  EXPECT_FALSE(std::filesystem::exists(tmp_ / "outside/inside"));
}

struct Malicious {
  const char* name;
  TarBuilder tar;
  const char* reason;
};

TEST_F(ExtractTest, MaliciousLayersAreRefusedAndWriteNothingOutside) {
  const std::string abs_outside = tmp_ / "outside";
  Malicious cases[] = {
      {"dotdot", TarBuilder().File("../escape", "x"), "contains \"..\""},
      {"dotdot-nested", TarBuilder().File("a/b/../../../escape", "x"), "contains \"..\""},
      {"absolute", TarBuilder().File(abs_outside + "/escape", "x"), "absolute path"},
      {"symlinked-parent", TarBuilder().Symlink("link", "../outside").File("link/escape", "x"),
       "is a symlink"},
      {"absolute-symlinked-parent",
       TarBuilder().Symlink("link", abs_outside).File("link/escape", "x"), "is a symlink"},
      {"symlinked-grandparent",
       TarBuilder().Dir("a").Symlink("a/b", abs_outside).File("a/b/c/escape", "x"), "is a symlink"},
      {"hardlink-dotdot", TarBuilder().Hardlink("hl", "../outside/secret"), "contains \"..\""},
      {"hardlink-absolute", TarBuilder().Hardlink("hl", abs_outside + "/secret"), "absolute path"},
      {"hardlink-through-symlink",
       TarBuilder().Symlink("d", abs_outside).Hardlink("hl", "d/secret"), "is a symlink"},
      {"hardlink-missing", TarBuilder().Hardlink("hl", "nope"), "not in this layer"},
      {"symlink-then-whiteout-through-it",
       TarBuilder().Symlink("d", abs_outside).File("d/.wh.secret", ""), "is a symlink"},
      {"symlink-then-opaque-through-it",
       TarBuilder().Symlink("d", abs_outside).File("d/.wh..wh..opq", ""), "is a symlink"},
  };
  for (Malicious& c : cases) {
    SCOPED_TRACE(c.name);
    std::filesystem::remove_all(tmp_ / "layer");
    std::filesystem::create_directories(tmp_ / "layer");
    auto before = Snapshot(tmp_ / "outside");
    auto stats = Extract(c.tar.Build());
    ASSERT_FALSE(stats.ok());
    EXPECT_EQ(stats.status().code(), absl::StatusCode::kInvalidArgument) << stats.status();
    EXPECT_NE(std::string(stats.status().message()).find(c.reason), std::string::npos)
        << stats.status();
    EXPECT_NE(std::string(stats.status().message()).find("layer entry"), std::string::npos);
    EXPECT_EQ(Snapshot(tmp_ / "outside"), before);
    EXPECT_FALSE(std::filesystem::exists(tmp_ / "escape"));
    EXPECT_FALSE(std::filesystem::exists("/escape"));
    EXPECT_EQ(Slurp(tmp_ / "outside/secret"), "original");
  }
}

TEST_F(ExtractTest, CorruptOrTruncatedInputIsDataLoss) {
  std::string gz = TarBuilder().File("a", std::string(1 << 20, 'q')).Build(Compression::kGzip);
  auto truncated = Extract(gz.substr(0, gz.size() / 2));
  ASSERT_FALSE(truncated.ok());
  EXPECT_EQ(truncated.status().code(), absl::StatusCode::kDataLoss) << truncated.status();
  auto garbage = Extract(std::string(4096, '\x7f'));
  ASSERT_FALSE(garbage.ok());
  EXPECT_EQ(garbage.status().code(), absl::StatusCode::kDataLoss) << garbage.status();
}

}  // namespace
}  // namespace shoal::runtime::images
