#include "tests/lab/process.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/status.h"
#include "base/unique_fd.h"

namespace shoal::lab {
namespace {

using Clock = std::chrono::steady_clock;

// Child side: only async-signal-safe calls between fork and exec.
[[noreturn]] void ExecIn(int netns_fd, const char* cmd, int out_fd) {
  ::setpgid(0, 0);
  if (netns_fd >= 0 && ::setns(netns_fd, CLONE_NEWNET) != 0) ::_exit(126);
  if (out_fd >= 0) {
    ::dup2(out_fd, 1);
    ::dup2(out_fd, 2);
  }
  int devnull = ::open("/dev/null", O_RDONLY);
  if (devnull >= 0) ::dup2(devnull, 0);
  ::execl("/bin/sh", "sh", "-c", cmd, static_cast<char*>(nullptr));
  ::_exit(127);
}

int DecodeStatus(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

}  // namespace

absl::StatusOr<CommandResult> RunIn(int netns_fd, const std::string& cmd,
                                    std::chrono::milliseconds timeout) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return base::ErrnoStatus(errno, "pipe");
  base::UniqueFd rd(p[0]), wr(p[1]);
  pid_t pid = ::fork();
  if (pid < 0) return base::ErrnoStatus(errno, "fork");
  if (pid == 0) ExecIn(netns_fd, cmd.c_str(), wr.get());
  wr.Reset();
  CommandResult r;
  auto deadline = Clock::now() + timeout;
  char buf[4096];
  bool timed_out = false;
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    struct pollfd pfd {
      rd.get(), POLLIN, 0
    };
    int n = ::poll(&pfd, 1, static_cast<int>(left.count()));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) continue;
    ssize_t got = ::read(rd.get(), buf, sizeof(buf));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;  // EOF: every writer (the command and its children) is gone
    r.output.append(buf, static_cast<size_t>(got));
  }
  if (timed_out) ::kill(-pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  r.exit_code = DecodeStatus(status);
  if (timed_out) {
    return absl::DeadlineExceededError("command timed out: " + cmd + "\n" + r.output);
  }
  return r;
}

Process::~Process() { Kill(); }

void Process::Kill() {
  if (reaped_) return;
  ::kill(-pid_, SIGKILL);
  ::kill(pid_, SIGKILL);
  int status;
  while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  reaped_ = true;
}

absl::StatusOr<int> Process::Wait(std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  while (true) {
    int status = 0;
    pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      reaped_ = true;
      return DecodeStatus(status);
    }
    if (r < 0) return base::ErrnoStatus(errno, "waitpid");
    if (Clock::now() >= deadline) return absl::DeadlineExceededError("process still running");
    ::usleep(10000);
  }
}

absl::StatusOr<std::unique_ptr<Process>> Spawn(int netns_fd, const std::string& cmd,
                                               const std::string& log_path) {
  std::string path = log_path.empty() ? "/dev/null" : log_path;
  int out = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (out < 0) return base::ErrnoStatus(errno, "open ", path);
  base::UniqueFd out_fd(out);
  pid_t pid = ::fork();
  if (pid < 0) return base::ErrnoStatus(errno, "fork");
  if (pid == 0) ExecIn(netns_fd, cmd.c_str(), out_fd.get());
  ::setpgid(pid, pid);
  return std::make_unique<Process>(pid);
}

}  // namespace shoal::lab
