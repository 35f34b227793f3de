#include "kernel/netlink/netns.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <thread>

#include "absl/strings/str_cat.h"
#include "base/status.h"
#include "kernel/netlink/libnl_netlink.h"

namespace shoal::kernel {

absl::StatusOr<std::string> BindMountNetnsStore::PathOf(absl::string_view name) const {
  if (name.empty() || name == "." || name == ".." || name.find('/') != absl::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("netns name \"", std::string(name), "\" must be one path component"));
  }
  return absl::StrCat(dir_, "/", std::string(name));
}

absl::StatusOr<base::UniqueFd> BindMountNetnsStore::Create(absl::string_view name) {
  ASSIGN_OR_RETURN(std::string path, PathOf(name));
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  if (ec) return base::ErrnoStatus(ec.value(), "create netns dir ", dir_);
  int fd = ::open(path.c_str(), O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
  if (fd < 0) return base::ErrnoStatus(errno, "create netns file ", path);
  ::close(fd);
  // A dedicated thread unshares so the caller's namespace never changes; the bind mount keeps
  // the new namespace alive after the thread exits.
  absl::Status st;
  std::thread([&] {
    if (::unshare(CLONE_NEWNET) != 0) {
      st = base::ErrnoStatus(errno, "unshare(CLONE_NEWNET)");
      return;
    }
    std::string self = absl::StrCat("/proc/self/task/", ::syscall(SYS_gettid), "/ns/net");
    if (::mount(self.c_str(), path.c_str(), nullptr, MS_BIND, nullptr) != 0) {
      st = base::ErrnoStatus(errno, "bind-mount netns onto ", path);
    }
  }).join();
  if (!st.ok()) {
    ::unlink(path.c_str());
    return st;
  }
  auto opened = Open(name);
  absl::Status lo_status = opened.status();
  if (opened.ok()) {
    LibnlNetlinkFactory factory;
    auto nl = factory.Open(opened->get());
    lo_status = nl.status();
    if (nl.ok()) {
      auto lo = (*nl)->GetLink("lo");
      lo_status = lo.ok() ? (*nl)->SetLinkUp(lo->index, true) : lo.status();
    }
  }
  if (!lo_status.ok()) {
    (void)Delete(name);
    return base::Annotate(lo_status, absl::StrCat("set up lo in netns ", std::string(name)));
  }
  return opened;
}

absl::StatusOr<base::UniqueFd> BindMountNetnsStore::Open(absl::string_view name) {
  ASSIGN_OR_RETURN(std::string path, PathOf(name));
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return base::ErrnoStatus(errno, "open netns ", path);
  base::UniqueFd owned(fd);
  // A file that exists but is not a mounted namespace (a crash between create and mount).
  struct statfs fs {};
  if (::fstatfs(fd, &fs) != 0) return base::ErrnoStatus(errno, "fstatfs ", path);
  if (fs.f_type != NSFS_MAGIC) {
    return absl::NotFoundError(absl::StrCat("netns ", path, " is not a mounted namespace"));
  }
  return owned;
}

absl::Status BindMountNetnsStore::Delete(absl::string_view name) {
  ASSIGN_OR_RETURN(std::string path, PathOf(name));
  if (::access(path.c_str(), F_OK) != 0) return base::ErrnoStatus(errno, "delete netns ", path);
  if (::umount2(path.c_str(), MNT_DETACH) != 0 && errno != EINVAL) {
    return base::ErrnoStatus(errno, "unmount netns ", path);
  }
  if (::unlink(path.c_str()) != 0) return base::ErrnoStatus(errno, "remove netns file ", path);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> BindMountNetnsStore::List() {
  std::vector<std::string> out;
  std::error_code ec;
  if (!std::filesystem::exists(dir_, ec)) return out;
  for (const auto& e : std::filesystem::directory_iterator(dir_, ec)) {
    out.push_back(e.path().filename().string());
  }
  if (ec) return base::ErrnoStatus(ec.value(), "list netns dir ", dir_);
  std::sort(out.begin(), out.end());
  return out;
}

absl::StatusOr<base::UniqueFd> OpenCurrentNetns() {
  std::string self = absl::StrCat("/proc/self/task/", ::syscall(SYS_gettid), "/ns/net");
  int fd = ::open(self.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return base::ErrnoStatus(errno, "open ", self);
  return base::UniqueFd(fd);
}

absl::StatusOr<uint64_t> NetnsId(int fd) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return base::ErrnoStatus(errno, "fstat netns fd ", fd);
  return static_cast<uint64_t>(st.st_ino);
}

}  // namespace shoal::kernel
