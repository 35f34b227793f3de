#include "kernel/netlink/sysctl.h"

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "base/status.h"

namespace shoal::kernel {
namespace {

// Opens /proc/sys/<key> from a short-lived thread inside the namespace; the open file keeps
// referring to that namespace's value afterwards.
absl::StatusOr<int> OpenIn(int netns_fd, absl::string_view key, int flags) {
  std::string path = absl::StrCat("/proc/sys/", std::string(key));
  if (key.find("..") != absl::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat("sysctl key \"", std::string(key), "\""));
  }
  absl::StatusOr<int> result = absl::InternalError("not run");
  auto body = [&] {
    if (netns_fd >= 0 && ::setns(netns_fd, CLONE_NEWNET) != 0) {
      result = base::ErrnoStatus(errno, "setns for sysctl ", path);
      return;
    }
    int fd = ::open(path.c_str(), flags | O_CLOEXEC);
    result = fd >= 0 ? absl::StatusOr<int>(fd) : base::ErrnoStatus(errno, "open ", path);
  };
  if (netns_fd < 0) {
    body();
  } else {
    std::thread(body).join();
  }
  return result;
}

}  // namespace

absl::Status WriteSysctl(int netns_fd, absl::string_view key, absl::string_view value) {
  ASSIGN_OR_RETURN(int fd, OpenIn(netns_fd, key, O_WRONLY));
  ssize_t n = ::write(fd, value.data(), value.size());
  int err = errno;
  ::close(fd);
  if (n < 0) return base::ErrnoStatus(err, "write sysctl ", std::string(key));
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadSysctl(int netns_fd, absl::string_view key) {
  ASSIGN_OR_RETURN(int fd, OpenIn(netns_fd, key, O_RDONLY));
  char buf[256];
  ssize_t n = ::read(fd, buf, sizeof(buf));
  int err = errno;
  ::close(fd);
  if (n < 0) return base::ErrnoStatus(err, "read sysctl ", std::string(key));
  return std::string(absl::StripTrailingAsciiWhitespace(absl::string_view(buf, n)));
}

}  // namespace shoal::kernel
