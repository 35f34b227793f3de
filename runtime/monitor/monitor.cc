#include "runtime/monitor/monitor.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/file.h"
#include "base/status.h"
#include "nlohmann/json.hpp"
#include "runtime/monitor/log_writer.h"
#include "runtime/spec_json.h"
#include "runtime/terminal.h"

namespace shoal::runtime {

std::string StateFile(const std::string& dir) { return dir + "/state.json"; }
std::string ExitFile(const std::string& dir) { return dir + "/exit.json"; }
std::string SocketFile(const std::string& dir) { return dir + "/monitor.sock"; }
std::string SpecFile(const std::string& dir) { return dir + "/spec.json"; }
std::string LogFile(const std::string& dir) { return dir + "/container.log"; }

namespace {

std::string Now() { return absl::FormatTime(absl::RFC3339_full, absl::Now(), absl::UTCTimeZone()); }

class Monitor {
 public:
  explicit Monitor(const MonitorConfig& config)
      : config_(config),
        runtime_(config.runtime),
        log_(LogFile(config.state_dir), config.log_max_size, config.log_max_files) {}

  absl::Status Setup();
  absl::Status Loop();
  absl::Status Started();

 private:
  absl::Status WriteState(const std::string& status);
  absl::Status Listen();
  void HandleClient(int fd);
  std::string Command(const std::string& line);
  void Pump(base::UniqueFd& fd, const char* stream);

  MonitorConfig config_;
  Runtime runtime_;
  LogWriter log_;
  ContainerSpec spec_;
  std::unique_ptr<Container> container_;
  base::UniqueFd out_, err_, listen_;  // out_: the pty master with a terminal
  bool terminal_ = false;
  std::string created_, started_;
  absl::Time kill_deadline_ = absl::InfiniteFuture();
};

absl::Status Monitor::WriteState(const std::string& status) {
  nlohmann::json j = {{"id", spec_.id},
                      {"pid", container_ ? container_->pid() : 0},
                      {"monitor_pid", getpid()},
                      {"status", status},
                      {"rootfs", spec_.rootfs},
                      {"cgroup", container_ ? container_->cgroup().path() : ""},
                      {"created", created_},
                      {"started", started_}};
  return base::WriteFileAtomic(StateFile(config_.state_dir), j.dump(2), 0600);
}

absl::Status Monitor::Setup() {
  ASSIGN_OR_RETURN(std::string text, base::ReadFile(SpecFile(config_.state_dir)));
  ASSIGN_OR_RETURN(spec_, SpecFromJson(text));
  Stdio stdio{0, 1, 2};
  base::UniqueFd out_w, err_w;
  terminal_ = spec_.process.terminal;
  if (terminal_) {
    // The container's stdio is its pty; we hold the master (logged, or copied to our stdout).
    if (config_.log_stdio) RETURN_IF_ERROR(log_.Open());
  } else if (config_.log_stdio) {
    RETURN_IF_ERROR(log_.Open());
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) return base::ErrnoStatus(errno, "pipe");
    out_.Reset(p[0]);
    out_w.Reset(p[1]);
    if (pipe2(p, O_CLOEXEC) != 0) return base::ErrnoStatus(errno, "pipe");
    err_.Reset(p[0]);
    err_w.Reset(p[1]);
    stdio = Stdio{-1, out_w.get(), err_w.get()};
  }
  ASSIGN_OR_RETURN(container_, runtime_.Create(spec_, stdio));
  if (terminal_) out_ = container_->TakeConsole();
  created_ = Now();
  RETURN_IF_ERROR(Listen());
  RETURN_IF_ERROR(WriteState("created"));
  if (!config_.wait_for_start) RETURN_IF_ERROR(Started());
  return absl::OkStatus();
}

absl::Status Monitor::Started() {
  RETURN_IF_ERROR(container_->Start());
  started_ = Now();
  return WriteState("running");
}

absl::Status Monitor::Listen() {
  std::string path = SocketFile(config_.state_dir);
  unlink(path.c_str());
  listen_.Reset(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!listen_) return base::ErrnoStatus(errno, "socket");
  sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) return absl::InvalidArgumentError("state dir too long");
  memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  // CVE-2020-15257: a filesystem socket, owner-only, never an abstract one.
  mode_t old = umask(0077);
  int rc = bind(listen_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  umask(old);
  if (rc != 0) return base::ErrnoStatus(errno, "bind ", path);
  if (listen(listen_.get(), 8) != 0) return base::ErrnoStatus(errno, "listen ", path);
  return absl::OkStatus();
}

std::string Monitor::Command(const std::string& line) {
  std::vector<std::string> w = absl::StrSplit(line, ' ', absl::SkipEmpty());
  if (w.empty()) return "error empty command";
  auto err = [](const absl::Status& s) { return absl::StrCat("error ", s.message()); };
  if (w[0] == "state") {
    auto state = base::ReadFile(StateFile(config_.state_dir));
    return state.ok() ? "ok " + *state : err(state.status());
  }
  if (w[0] == "start") {
    if (container_->started()) return "error container already started";
    absl::Status s = Started();
    return s.ok() ? "ok" : err(s);
  }
  int sig = 0, grace_ms = 0;
  uint32_t rows = 0, cols = 0;
  if (w[0] == "resize" && w.size() == 3 && absl::SimpleAtoi(w[1], &rows) &&
      absl::SimpleAtoi(w[2], &cols) && rows <= 65535 && cols <= 65535) {
    if (!terminal_) return "error resize: the container has no terminal (process.terminal)";
    if (!out_) return "error resize: the container's terminal is closed";
    absl::Status s = ResizeTerminal(out_.get(), static_cast<uint16_t>(rows),
                                    static_cast<uint16_t>(cols));
    return s.ok() ? "ok" : err(s);
  }
  if (w[0] == "kill" && w.size() == 2 && absl::SimpleAtoi(w[1], &sig)) {
    absl::Status s = container_->Signal(sig);
    return s.ok() ? "ok" : err(s);
  }
  if (w[0] == "stop" && w.size() == 3 && absl::SimpleAtoi(w[1], &sig) &&
      absl::SimpleAtoi(w[2], &grace_ms)) {
    (void)container_->Signal(sig);
    kill_deadline_ = std::min(kill_deadline_, absl::Now() + absl::Milliseconds(grace_ms));
    return "ok";
  }
  return "error unknown command \"" + line + "\"";
}

void Monitor::HandleClient(int fd) {
  // One short command per connection; the peer must be root or our uid (SO_PEERCRED).
  ucred cred;
  socklen_t len = sizeof(cred);
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 ||
      (cred.uid != 0 && cred.uid != getuid())) {
    return;
  }
  struct pollfd p = {fd, POLLIN, 0};
  if (poll(&p, 1, 1000) <= 0) return;
  char buf[256];
  ssize_t n = read(fd, buf, sizeof(buf) - 1);
  if (n <= 0) return;
  std::string line(buf, n);
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
  std::string reply = Command(line) + "\n";
  (void)base::WriteAll(fd, reply, "monitor reply");
}

void Monitor::Pump(base::UniqueFd& fd, const char* stream) {
  char buf[8192];
  ssize_t n = read(fd.get(), buf, sizeof(buf));
  if (n > 0) {
    if (config_.log_stdio) {
      (void)log_.Write(stream, absl::string_view(buf, n), absl::Now());
    } else {
      (void)base::WriteAll(1, absl::string_view(buf, n), "stdout");  // terminal, inherit mode
    }
  } else if (n == 0 || errno != EINTR) {
    fd.Reset();  // EOF: every writer (all container processes) is gone
  }
}

absl::Status Monitor::Loop() {
  bool exited = false;
  ExitStatus status;
  while (!exited || out_ || err_) {
    std::vector<pollfd> fds;
    if (out_) fds.push_back({out_.get(), POLLIN, 0});
    if (err_) fds.push_back({err_.get(), POLLIN, 0});
    if (!exited) fds.push_back({container_->pidfd(), POLLIN, 0});
    if (!exited) fds.push_back({listen_.get(), POLLIN, 0});
    int timeout = -1;
    if (kill_deadline_ != absl::InfiniteFuture()) {
      timeout = static_cast<int>(
          std::max<int64_t>(0, absl::ToInt64Milliseconds(kill_deadline_ - absl::Now())));
    }
    if (exited) timeout = 5000;  // drain: EOF follows once the pid namespace is torn down
    int rc = poll(fds.data(), fds.size(), timeout);
    if (rc < 0 && errno != EINTR) return base::ErrnoStatus(errno, "poll");
    if (rc == 0 && exited) break;
    if (!exited && absl::Now() >= kill_deadline_) {
      (void)container_->cgroup().KillAll();  // grace period over: the whole cgroup
      kill_deadline_ = absl::InfiniteFuture();
    }
    for (const pollfd& p : fds) {
      if (!p.revents) continue;
      if (out_ && p.fd == out_.get()) Pump(out_, "stdout");
      else if (err_ && p.fd == err_.get()) Pump(err_, "stderr");
      else if (!exited && p.fd == listen_.get()) {
        base::UniqueFd client(accept4(listen_.get(), nullptr, nullptr, SOCK_CLOEXEC));
        if (client) HandleClient(client.get());
      } else if (!exited && p.fd == container_->pidfd()) {
        ASSIGN_OR_RETURN(status, container_->Wait());
        exited = true;
      }
    }
  }
  (void)log_.Flush(absl::Now());
  // Tear down first, record last: once exit.json exists the container is fully gone.
  unlink(SocketFile(config_.state_dir).c_str());
  absl::Status deleted = container_->Delete();
  RETURN_IF_ERROR(WriteState("stopped"));
  nlohmann::json j = {{"code", status.code},
                      {"signal", status.signal},
                      {"oom_killed", status.oom_killed},
                      {"finished", Now()}};
  RETURN_IF_ERROR(base::WriteFileAtomic(ExitFile(config_.state_dir), j.dump(2), 0600));
  return deleted;
}

}  // namespace

absl::Status RunMonitor(const MonitorConfig& config, int ready_fd) {
  Monitor monitor(config);
  absl::Status s = monitor.Setup();
  if (!s.ok()) (void)base::WriteFileAtomic(config.state_dir + "/error", s.message(), 0600);
  if (ready_fd >= 0) {
    std::string msg = s.ok() ? "ok\n" : std::string(s.message()) + "\n";
    (void)base::WriteAll(ready_fd, msg, "ready pipe");
    close(ready_fd);
  }
  if (!s.ok()) return s;
  return monitor.Loop();
}

}  // namespace shoal::runtime
