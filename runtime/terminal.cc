#include "runtime/terminal.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "base/status.h"
#include "kernel/mount/mount.h"
#include "runtime/sync.h"

namespace shoal::runtime {
namespace {

// One frame with one fd attached.
int SendFrameWithFd(int sock, Msg type, int fd) {
  Frame f;
  memset(&f, 0, sizeof(f));
  f.type = type;
  return SendWithFd(sock, &f, sizeof(f), fd);
}

absl::Status FrameError(const Frame& f) {
  std::string text(f.text, strnlen(f.text, sizeof(f.text)));
  if (f.err == 0) return absl::InternalError(text);
  return base::ErrnoStatus(f.err, text);
}

}  // namespace

int SetupTerminalRaw(const ProcessPlan& p, int sock, bool bind_console, const char** what) {
  *what = nullptr;
  auto fail = [&](const char* step, int err) {
    *what = step;
    return -err;
  };
  // devpts gives a new slave to the caller's fsuid. A process exec'd into a user namespace
  // still has the host's root as fsuid, unmapped there, so it could not chown the slave to the
  // process's uid afterwards: create it as the namespace's root (a no-op outside one). The
  // final setresuid of the process sets the fsuid again.
  syscall(SYS_setfsuid, 0);
  syscall(SYS_setfsgid, 0);
  int root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (root < 0) return fail("open /", errno);
  // In-root resolution: an exec'd process must not be led out of the container by a symlink
  // the container planted at /dev/pts.
  int master = kernel::OpenInRootRaw(root, "dev/pts/ptmx", O_RDWR | O_NOCTTY);
  if (master < 0) {
    close(root);
    return fail("open /dev/pts/ptmx", -master);
  }
  struct stat st;
  struct statfs sfs;
  if (fstat(master, &st) != 0 || !S_ISCHR(st.st_mode) || st.st_rdev != makedev(5, 2) ||
      fstatfs(master, &sfs) != 0 || sfs.f_type != DEVPTS_SUPER_MAGIC) {
    close(master);
    close(root);
    return fail("/dev/pts/ptmx is not a devpts ptmx", EPERM);
  }
  int unlock = 0;
  int slave = -1;
  if (ioctl(master, TIOCSPTLCK, &unlock) != 0) {
    *what = "unlockpt";
  } else if ((slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC)) < 0) {
    *what = "open pty slave (TIOCGPTPEER)";
  } else if (p.terminal_rows || p.terminal_cols) {
    struct winsize ws = {p.terminal_rows, p.terminal_cols, 0, 0};
    if (ioctl(master, TIOCSWINSZ, &ws) != 0) *what = "set window size";
  }
  int err = *what ? errno : 0;
  // The slave belongs to the process's user (devpts gave it to our fsuid), group tty (gid=5).
  if (!err && fchown(slave, p.uid, static_cast<gid_t>(-1)) != 0) {
    err = errno;
    *what = "chown pty slave";
  }
  if (!err && ioctl(slave, TIOCSCTTY, 0) != 0) {
    err = errno;
    *what = "make the pty the controlling terminal (TIOCSCTTY)";
  }
  for (int i = 0; !err && i < 3; ++i) {
    if (dup2(slave, i) < 0) {
      err = errno;
      *what = "dup2 pty slave";
    }
  }
  if (!err && bind_console) {
    // runc mountConsole: /dev/console is the container's terminal. /dev is the container's
    // own fresh tmpfs, so the placeholder file is created there.
    char a[32], b[32];
    int target = kernel::MkdirAllInRootRaw(root, "dev/console", true, p.scratch.data());
    if (target < 0) {
      err = -target;
      *what = "create /dev/console";
    } else {
      if (mount(FdPath(a, slave), FdPath(b, target), nullptr, MS_BIND, nullptr) != 0) {
        err = errno;
        *what = "bind pty on /dev/console";
      }
      close(target);
    }
  }
  if (!err) {
    int rc = SendFrameWithFd(sock, Msg::kConsole, master);
    if (rc < 0) {
      err = -rc;
      *what = "send pty master";
    }
  }
  if (slave >= 0) close(slave);
  close(master);
  close(root);
  return -err;
}

absl::StatusOr<base::UniqueFd> RecvConsole(int sock, absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  while (true) {
    int64_t ms = std::max<int64_t>(0, absl::ToInt64Milliseconds(deadline - absl::Now()));
    struct pollfd p = {sock, POLLIN, 0};
    int rc = poll(&p, 1, static_cast<int>(ms));
    if (rc < 0 && errno == EINTR) continue;
    if (rc < 0) return base::ErrnoStatus(errno, "poll setup socket");
    if (rc == 0) return absl::DeadlineExceededError("terminal: container setup timed out");
    break;
  }
  Frame f;
  struct iovec iov = {&f, sizeof(f)};
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } control;
  struct msghdr msg = {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.buf;
  msg.msg_controllen = sizeof(control.buf);
  ssize_t n;
  do {
    n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n < 0 && errno != ECONNRESET) return base::ErrnoStatus(errno, "receive pty master");
  base::UniqueFd fd;
  for (struct cmsghdr* c = CMSG_FIRSTHDR(&msg); n > 0 && c; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
        c->cmsg_len == CMSG_LEN(sizeof(int))) {
      int got;
      memcpy(&got, CMSG_DATA(c), sizeof(int));
      fd.Reset(got);
    }
  }
  if (n <= 0) return absl::UnavailableError("terminal: setup process exited");
  if (n != sizeof(f)) return absl::InternalError("terminal: short frame from setup process");
  if (f.type == Msg::kError) return FrameError(f);
  if (f.type != Msg::kConsole || !fd) {
    return absl::InternalError("terminal: expected the pty master from the setup process");
  }
  return fd;
}

absl::Status ResizeTerminal(int fd, uint16_t rows, uint16_t cols) {
  struct winsize ws = {rows, cols, 0, 0};
  if (ioctl(fd, TIOCSWINSZ, &ws) != 0) return base::ErrnoStatus(errno, "resize terminal");
  return absl::OkStatus();
}

absl::StatusOr<TerminalSize> GetTerminalSize(int fd) {
  struct winsize ws = {};
  if (ioctl(fd, TIOCGWINSZ, &ws) != 0) return base::ErrnoStatus(errno, "terminal size");
  return TerminalSize{ws.ws_row, ws.ws_col};
}

absl::StatusOr<base::UniqueFd> ConnectConsoleSocket(const std::string& path) {
  size_t slash = path.rfind('/');
  std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
  if (name.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--console-socket: \"", path, "\" is not a socket path"));
  }
  // The path may exceed sun_path (108 bytes): connect through /proc/self/fd/<dir>/<name>.
  base::UniqueFd dirfd(open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!dirfd) return base::ErrnoStatus(errno, "--console-socket: open ", dir);
  sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  std::string via = absl::StrCat("/proc/self/fd/", dirfd.get(), "/", name);
  if (via.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--console-socket: socket name \"", name, "\" is too long"));
  }
  memcpy(addr.sun_path, via.c_str(), via.size() + 1);
  base::UniqueFd sock(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!sock) return base::ErrnoStatus(errno, "--console-socket: socket");
  if (connect(sock.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    return base::ErrnoStatus(errno, "--console-socket: connect ", path);
  }
  return sock;
}

absl::Status SendConsole(int sock, int master, const std::string& name) {
  if (name.empty() || name.size() >= 4096) {
    return absl::InvalidArgumentError("console name must be 1 to 4095 bytes");
  }
  int rc = SendWithFd(sock, name.data(), name.size(), master);
  if (rc < 0) return base::ErrnoStatus(-rc, "--console-socket: send the pty master");
  return absl::OkStatus();
}

}  // namespace shoal::runtime
