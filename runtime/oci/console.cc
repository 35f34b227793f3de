#include "runtime/oci/console.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "base/status.h"
#include "runtime/terminal.h"

namespace shoal::runtime {

absl::Status CheckConsoleArgs(const ProcessSpec& process, const std::string& console_socket,
                              bool can_relay) {
  if (process.terminal && console_socket.empty() && !can_relay) {
    return absl::InvalidArgumentError(
        "process.terminal: true needs --console-socket <path> (an AF_UNIX socket that receives "
        "the pty master)");
  }
  if (!process.terminal && !console_socket.empty()) {
    return absl::InvalidArgumentError(
        "--console-socket: given but process.terminal is false (no terminal to send)");
  }
  return absl::OkStatus();
}

void InheritTerminalSize(ProcessSpec& process) {
  if (!process.terminal || process.terminal_rows || process.terminal_cols) return;
  auto size = GetTerminalSize(0);
  if (size.ok()) {
    process.terminal_rows = size->rows;
    process.terminal_cols = size->cols;
  }
}

absl::Status HandOffConsole(base::UniqueFd sock, base::UniqueFd master) {
  return SendConsole(sock.get(), master.get(), "/dev/ptmx");
}

namespace {

bool CopyOnce(int from, int to) {
  char buf[8192];
  ssize_t n = read(from, buf, sizeof(buf));
  if (n < 0 && (errno == EINTR || errno == EAGAIN)) return true;
  if (n <= 0) return false;
  for (ssize_t off = 0; off < n;) {
    ssize_t w = write(to, buf + off, n - off);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return true;  // the reader went away: drop output, keep draining
    off += w;
  }
  return true;
}

}  // namespace

void RelayTerminal(int master, int pidfd) {
  struct termios saved;
  bool raw = tcgetattr(0, &saved) == 0;
  if (raw) {
    struct termios t = saved;
    cfmakeraw(&t);
    raw = tcsetattr(0, TCSANOW, &t) == 0;
  }
  sigset_t winch;
  sigemptyset(&winch);
  sigaddset(&winch, SIGWINCH);
  sigset_t old_mask;
  sigprocmask(SIG_BLOCK, &winch, &old_mask);
  base::UniqueFd sigfd(signalfd(-1, &winch, SFD_CLOEXEC));
  bool in_open = true, exited = false;
  while (true) {
    struct pollfd p[4] = {{master, POLLIN, 0},
                          {in_open ? 0 : -1, POLLIN, 0},
                          {exited ? -1 : pidfd, POLLIN, 0},
                          {sigfd.get(), POLLIN, 0}};
    // After the exit, drain what is buffered; a pty whose slave is gone reads EIO.
    int rc = poll(p, 4, exited ? 1000 : -1);
    if (rc < 0 && errno == EINTR) continue;
    if (rc <= 0) break;
    if (p[0].revents && !CopyOnce(master, 1)) break;
    if (p[1].revents && !CopyOnce(0, master)) in_open = false;
    if (p[2].revents) exited = true;
    if (p[3].revents) {
      struct signalfd_siginfo si;
      (void)!read(sigfd.get(), &si, sizeof(si));
      auto size = GetTerminalSize(0);
      if (size.ok()) (void)ResizeTerminal(master, size->rows, size->cols);
    }
  }
  sigprocmask(SIG_SETMASK, &old_mask, nullptr);
  if (raw) tcsetattr(0, TCSANOW, &saved);
}

absl::StatusOr<ConsoleTarget> ConsoleTarget::Open(ProcessSpec& process,
                                                  const std::string& console_socket,
                                                  bool can_relay) {
  RETURN_IF_ERROR(CheckConsoleArgs(process, console_socket, can_relay));
  ConsoleTarget t;
  t.terminal_ = process.terminal;
  t.socket_path_ = console_socket;
  struct stat st;
  if (!console_socket.empty() && stat(console_socket.c_str(), &st) != 0) {
    return base::ErrnoStatus(errno, "--console-socket: ", console_socket);
  }
  if (!console_socket.empty() && !S_ISSOCK(st.st_mode)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--console-socket: ", console_socket, " is not a unix socket"));
  }
  if (console_socket.empty()) InheritTerminalSize(process);
  return t;
}

absl::Status ConsoleTarget::HandOff(base::UniqueFd master) {
  if (!terminal_ || socket_path_.empty()) {
    kept_ = std::move(master);
    return absl::OkStatus();
  }
  ASSIGN_OR_RETURN(base::UniqueFd sock, ConnectConsoleSocket(socket_path_));
  return HandOffConsole(std::move(sock), std::move(master));
}

void ConsoleTarget::Relay(int pidfd) {
  if (kept_) RelayTerminal(kept_.get(), pidfd);
  kept_.Reset();
}

}  // namespace shoal::runtime
