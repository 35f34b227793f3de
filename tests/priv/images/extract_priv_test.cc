// Layer extraction as root: ownership, devices, xattrs, overlay whiteouts — checked through a
// real overlayfs mount of two unpacked layers (what a container's rootfs will see).
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#include <filesystem>

#include "base/unique_fd.h"
#include "gtest/gtest.h"
#include "runtime/images/extract.h"
#include "tests/testing/priv.h"
#include "tests/unit/images/tar_builder.h"
#include "tests/unit/images/test_util.h"

namespace shoal::runtime::images {
namespace {

using testing::MemFd;
using testing::Slurp;
using testing::TarBuilder;
using testing::TempDir;

absl::StatusOr<ExtractStats> ExtractTo(const std::string& tar, const std::string& dir) {
  std::filesystem::create_directories(dir);
  base::UniqueFd blob(MemFd(tar));
  base::UniqueFd dest(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  return ExtractLayer(blob.get(), dest.get());
}

std::string GetXattr(const std::string& path, const char* name) {
  char buf[256];
  ssize_t n = ::lgetxattr(path.c_str(), name, buf, sizeof(buf));
  return n < 0 ? std::string("<errno ") + std::to_string(errno) + ">" : std::string(buf, n);
}

TEST(ExtractPrivTest, OwnershipDevicesAndXattrs) {
  SHOAL_REQUIRE_ROOT();
  TempDir t;
  std::string cap(
      "\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
      20);  // VFS_CAP_REVISION_2, cap_net_bind_service permitted
  auto stats = ExtractTo(TarBuilder()
                             .File("owned", "x", 0640, 1234, 5678)
                             .File("ping", "elf", 0755)
                             .Xattr("security.capability", cap)
                             .File("tagged", "t")
                             .Xattr("user.shoal", "v")
                             .Xattr("trusted.overlay.redirect", "/etc")
                             .Device("dev/null", AE_IFCHR, 1, 3)
                             .Device("dev/loopx", AE_IFBLK, 7, 200, 0660)
                             .Device("fifo", AE_IFIFO, 0, 0, 0600)
                             .Build(),
                         t / "l");
  ASSERT_TRUE(stats.ok()) << stats.status();
  struct stat st;
  ASSERT_EQ(::lstat((t / "l/owned").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 1234u);
  EXPECT_EQ(st.st_gid, 5678u);
  EXPECT_EQ(st.st_mode & 07777, 0640u);
  EXPECT_EQ(GetXattr(t / "l/ping", "security.capability"), cap);
  EXPECT_EQ(GetXattr(t / "l/tagged", "user.shoal"), "v");
  EXPECT_EQ(GetXattr(t / "l/tagged", "trusted.overlay.redirect"), "<errno 61>");  // ENODATA
  ASSERT_EQ(::lstat((t / "l/dev/null").c_str(), &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_EQ(st.st_rdev, makedev(1, 3));
  EXPECT_EQ(st.st_mode & 07777, 0666u);
  ASSERT_EQ(::lstat((t / "l/dev/loopx").c_str(), &st), 0);
  EXPECT_TRUE(S_ISBLK(st.st_mode));
  EXPECT_EQ(st.st_rdev, makedev(7, 200));
  ASSERT_EQ(::lstat((t / "l/fifo").c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
}

TEST(ExtractPrivTest, WhiteoutsAndOpaqueDirsWorkInARealOverlayMount) {
  SHOAL_REQUIRE_ROOT();
  TempDir t;
  ASSERT_TRUE(ExtractTo(TarBuilder()
                            .File("etc/keep", "k")
                            .File("etc/gone", "g")
                            .Dir("var/cache")
                            .File("var/cache/old1", "1")
                            .File("var/cache/old2", "2")
                            .Build(),
                        t / "lower0")
                  .ok());
  auto upper = ExtractTo(TarBuilder()
                             .File("etc/.wh.gone", "")
                             .File("var/cache/.wh..wh..opq", "")
                             .File("var/cache/new", "n")
                             .Build(),
                         t / "lower1");
  ASSERT_TRUE(upper.ok()) << upper.status();
  // The on-disk form overlayfs expects.
  struct stat st;
  ASSERT_EQ(::lstat((t / "lower1/etc/gone").c_str(), &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_EQ(st.st_rdev, makedev(0, 0));
  EXPECT_EQ(GetXattr(t / "lower1/var/cache", "trusted.overlay.opaque"), "y");
  EXPECT_FALSE(std::filesystem::exists(t / "lower1/etc/.wh.gone"));
  EXPECT_FALSE(std::filesystem::exists(t / "lower1/var/cache/.wh..wh..opq"));

  // And what a container sees through overlayfs.
  std::filesystem::create_directories(t / "merged");
  std::string opts = "lowerdir=" + (t / "lower1") + ":" + (t / "lower0");
  ASSERT_EQ(::mount("overlay", (t / "merged").c_str(), "overlay", 0, opts.c_str()), 0)
      << strerror(errno);
  struct Unmount {
    std::string p;
    ~Unmount() { ::umount2(p.c_str(), MNT_DETACH); }
  } unmount{t / "merged"};
  EXPECT_EQ(Slurp(t / "merged/etc/keep"), "k");
  EXPECT_FALSE(std::filesystem::exists(t / "merged/etc/gone"));
  EXPECT_TRUE(std::filesystem::exists(t / "merged/var/cache/new"));
  EXPECT_FALSE(std::filesystem::exists(t / "merged/var/cache/old1"));
  EXPECT_FALSE(std::filesystem::exists(t / "merged/var/cache/old2"));
}

}  // namespace
}  // namespace shoal::runtime::images
