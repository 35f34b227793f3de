#include "kernel/mount/mount.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/status.h"
#include "base/unique_fd.h"

namespace shoal::kernel {
namespace {

int OpenAt2(int dirfd, const char* path, int flags, uint64_t resolve) {
  struct open_how how = {};
  how.flags = static_cast<uint64_t>(flags | O_CLOEXEC);
  how.resolve = resolve;
  long rc;
  do {
    rc = syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
  } while (rc < 0 && errno == EAGAIN);  // a concurrent rename raced the lookup; retry
  return rc < 0 ? -errno : static_cast<int>(rc);
}

}  // namespace

int OpenInRootRaw(int root, const char* path, int flags) {
  while (*path == '/') ++path;
  if (*path == '\0') path = ".";
  return OpenAt2(root, path, flags, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS);
}

int MkdirAllInRootRaw(int root, const char* path, bool last_is_file, char* scratch) {
  while (*path == '/') ++path;
  size_t len = strlen(path);
  memcpy(scratch, path, len + 1);
  int fd = OpenInRootRaw(root, scratch, O_PATH);
  if (fd >= 0 || fd != -ENOENT) return fd;
  // Walk the prefixes: open each, creating it when missing, always resolving in-root.
  for (size_t i = 0; i <= len; ++i) {
    if (scratch[i] != '/' && scratch[i] != '\0') continue;
    bool last = scratch[i] == '\0';
    char saved = scratch[i];
    scratch[i] = '\0';
    int cur = OpenInRootRaw(root, scratch, O_PATH);
    if (cur == -ENOENT) {
      // Create the component in its (in-root resolved) parent directory.
      char* slash = strrchr(scratch, '/');
      int parent = slash ? (*slash = '\0', OpenInRootRaw(root, scratch, O_PATH | O_DIRECTORY))
                         : OpenInRootRaw(root, ".", O_PATH | O_DIRECTORY);
      const char* name = slash ? slash + 1 : scratch;
      if (parent < 0) return parent;
      int rc;
      if (last && last_is_file) {
        rc = mknodat(parent, name, S_IFREG | 0644, 0);
      } else {
        rc = mkdirat(parent, name, 0755);
      }
      int err = errno;
      close(parent);
      if (slash) *slash = '/';
      if (rc < 0 && err != EEXIST) return -err;
      cur = OpenInRootRaw(root, scratch, O_PATH);
    }
    scratch[i] = saved;
    if (cur < 0) return cur;
    if (last) return cur;
    close(cur);
  }
  return -ENOENT;
}

absl::Status CheckInsideRoot(const std::string& rootfs, const std::string& path,
                             const std::string& field) {
  base::UniqueFd root(open(rootfs.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!root) return base::ErrnoStatus(errno, "open rootfs ", rootfs);
  std::string prefix;
  for (absl::string_view part : absl::StrSplit(path, '/', absl::SkipEmpty())) {
    prefix = prefix.empty() ? std::string(part) : absl::StrCat(prefix, "/", part);
    int fd = OpenAt2(root.get(), prefix.c_str(), O_PATH, RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS);
    if (fd >= 0) {
      close(fd);
      continue;
    }
    if (fd == -ENOENT) return absl::OkStatus();
    if (fd == -EXDEV || fd == -ELOOP) {
      return absl::InvalidArgumentError(absl::StrCat(
          field, ": \"", path, "\" escapes the rootfs at \"/", prefix,
          "\" (symlink or .. pointing outside)"));
    }
    return base::ErrnoStatus(-fd, field, ": resolve ", prefix, " in rootfs");
  }
  return absl::OkStatus();
}

}  // namespace shoal::kernel
