#include "runtime/images/safe_path.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "base/status.h"

namespace shoal::runtime::images {
namespace {

using base::UniqueFd;

constexpr int kDirFlags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;

// One component, never following a symlink. Distinguishes "is a symlink" for a clear error.
absl::StatusOr<UniqueFd> OpenChildDir(int dir_fd, const std::string& name, bool create,
                                      const std::string& shown) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    int fd = ::openat(dir_fd, name.c_str(), kDirFlags);
    if (fd >= 0) return UniqueFd(fd);
    int err = errno;
    if (err == ENOENT && create) {
      if (::mkdirat(dir_fd, name.c_str(), 0755) != 0 && errno != EEXIST) {
        return base::ErrnoStatus(errno, "mkdir ", shown);
      }
      continue;
    }
    if (err == ELOOP || err == ENOTDIR) {
      struct stat st;
      if (::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode)) {
        return absl::InvalidArgumentError(
            absl::StrCat("\"", shown, "\" is a symlink; refusing to follow it"));
      }
      return absl::FailedPreconditionError(absl::StrCat("\"", shown, "\" is not a directory"));
    }
    return base::ErrnoStatus(err, "open ", shown);
  }
  return absl::InternalError(absl::StrCat("mkdir ", shown, ": raced with removal"));
}

}  // namespace

absl::StatusOr<std::vector<std::string>> SplitEntryPath(absl::string_view name) {
  if (!name.empty() && name.front() == '/') {
    return absl::InvalidArgumentError(absl::StrCat("\"", name, "\" is an absolute path"));
  }
  std::vector<std::string> out;
  for (absl::string_view c : absl::StrSplit(name, '/')) {
    if (c.empty() || c == ".") continue;
    if (c == "..") {
      return absl::InvalidArgumentError(
          absl::StrCat("\"", name, "\" contains \"..\" (would escape the layer directory)"));
    }
    out.emplace_back(c);
  }
  return out;
}

std::string JoinComponents(const std::vector<std::string>& comps, size_t n) {
  return absl::StrJoin(comps.begin(), comps.begin() + n, "/");
}

absl::StatusOr<UniqueFd> OpenDirBeneath(int root_fd, const std::vector<std::string>& comps,
                                        size_t n, bool create) {
  if (n == 0) {
    int fd = ::openat(root_fd, ".", kDirFlags);
    if (fd < 0) return base::ErrnoStatus(errno, "reopen layer root");
    return UniqueFd(fd);
  }
  // Fast path: one openat2 resolving the whole path beneath the root, no symlinks at all.
  std::string rel = JoinComponents(comps, n);
  struct open_how how = {};
  how.flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  long fd = ::syscall(SYS_openat2, root_fd, rel.c_str(), &how, sizeof(how));
  if (fd >= 0) return UniqueFd(static_cast<int>(fd));
  // Slow path (missing directory, a symlink to report, or no openat2): walk one component at a
  // time with O_NOFOLLOW, which is equally safe because no component is "..".
  UniqueFd cur;
  int at = root_fd;
  for (size_t i = 0; i < n; ++i) {
    ASSIGN_OR_RETURN(UniqueFd next,
                     OpenChildDir(at, comps[i], create, JoinComponents(comps, i + 1)));
    cur = std::move(next);
    at = cur.get();
  }
  return cur;
}

absl::Status RemoveTreeAt(int dir_fd, const std::string& name, bool* removed_dir) {
  if (::unlinkat(dir_fd, name.c_str(), 0) == 0 || errno == ENOENT) return absl::OkStatus();
  if (errno != EISDIR) return base::ErrnoStatus(errno, "unlink ", name);
  if (removed_dir != nullptr) *removed_dir = true;
  int fd = ::openat(dir_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return base::ErrnoStatus(errno, "open ", name);
  DIR* d = ::fdopendir(fd);
  if (d == nullptr) {
    ::close(fd);
    return base::ErrnoStatus(errno, "fdopendir ", name);
  }
  std::vector<std::string> children;
  while (struct dirent* e = ::readdir(d)) {
    if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) {
      children.emplace_back(e->d_name);
    }
  }
  absl::Status st;
  for (const auto& c : children) {
    st.Update(RemoveTreeAt(::dirfd(d), c, nullptr));
  }
  ::closedir(d);
  RETURN_IF_ERROR(st);
  if (::unlinkat(dir_fd, name.c_str(), AT_REMOVEDIR) != 0) {
    return base::ErrnoStatus(errno, "rmdir ", name);
  }
  return absl::OkStatus();
}

}  // namespace shoal::runtime::images
