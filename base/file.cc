#include "base/file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "base/random.h"
#include "base/status.h"

namespace shoal::base {
namespace {

std::pair<std::string, std::string> SplitDir(const std::string& path) {
  auto slash = path.rfind('/');
  if (slash == std::string::npos) return {".", path};
  if (slash == 0) return {"/", path.substr(1)};
  return {path.substr(0, slash), path.substr(slash + 1)};
}

}  // namespace

absl::StatusOr<UniqueFd> Open(const std::string& path, int flags, mode_t mode) {
  int fd = ::open(path.c_str(), flags | O_CLOEXEC, mode);
  if (fd < 0) return ErrnoStatus(errno, "open ", path);
  return UniqueFd(fd);
}

absl::Status WriteAll(int fd, absl::string_view data, absl::string_view what) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "write ", what);
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

absl::Status FsyncDir(const std::string& dir) {
  ASSIGN_OR_RETURN(UniqueFd fd, Open(dir, O_RDONLY | O_DIRECTORY));
  if (::fsync(fd.get()) != 0) return ErrnoStatus(errno, "fsync ", dir);
  return absl::OkStatus();
}

absl::Status WriteFileAtomic(const std::string& path, absl::string_view data, mode_t mode) {
  if (path.empty() || path.back() == '/') {
    return absl::InvalidArgumentError(absl::StrCat("write file: invalid path '", path, "'"));
  }
  auto [dir, name] = SplitDir(path);
  ASSIGN_OR_RETURN(UniqueFd dirfd, Open(dir, O_RDONLY | O_DIRECTORY));
  SystemRandom random;
  const std::string tmp = absl::StrCat(".", name, ".tmp-", NewId(random).substr(0, 12));
  int raw = ::openat(dirfd.get(), tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (raw < 0) return ErrnoStatus(errno, "create ", dir, "/", tmp);
  UniqueFd fd(raw);
  auto cleanup_on_error = [&](absl::Status s) {
    ::unlinkat(dirfd.get(), tmp.c_str(), 0);
    return s;
  };
  // The mode given to openat is filtered by umask; callers asked for `mode` exactly.
  if (::fchmod(fd.get(), mode) != 0) {
    return cleanup_on_error(ErrnoStatus(errno, "chmod ", dir, "/", tmp));
  }
  if (auto s = WriteAll(fd.get(), data, path); !s.ok()) return cleanup_on_error(s);
  if (::fsync(fd.get()) != 0) return cleanup_on_error(ErrnoStatus(errno, "fsync ", path));
  fd.Reset();
  if (::renameat(dirfd.get(), tmp.c_str(), dirfd.get(), name.c_str()) != 0) {
    return cleanup_on_error(ErrnoStatus(errno, "rename ", tmp, " to ", path));
  }
  if (::fsync(dirfd.get()) != 0) return ErrnoStatus(errno, "fsync ", dir);
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  ASSIGN_OR_RETURN(UniqueFd fd, Open(path, O_RDONLY));
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "read ", path);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

}  // namespace shoal::base
