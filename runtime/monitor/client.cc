#include "runtime/monitor/client.h"

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/file.h"
#include "base/status.h"
#include "kernel/ns/ns.h"
#include "nlohmann/json.hpp"
#include "runtime/monitor/monitor.h"
#include "runtime/spec_json.h"

extern char** environ;

namespace shoal::runtime {

absl::StatusOr<std::unique_ptr<MonitorClient>> MonitorClient::Launch(const LaunchOptions& o,
                                                                     const ContainerSpec& spec) {
  RETURN_IF_ERROR(ValidateSpec(spec));
  std::error_code ec;
  std::filesystem::create_directories(o.state_dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("create ", o.state_dir, ": ", ec.message()));
  if (access(StateFile(o.state_dir).c_str(), F_OK) == 0 &&
      access(ExitFile(o.state_dir).c_str(), F_OK) != 0) {
    return absl::AlreadyExistsError(absl::StrCat("id: container \"", spec.id,
                                                 "\" already exists in ", o.state_dir));
  }
  for (const std::string& f : {StateFile(o.state_dir), ExitFile(o.state_dir),
                               o.state_dir + "/error"}) {
    unlink(f.c_str());
  }
  RETURN_IF_ERROR(base::WriteFileAtomic(SpecFile(o.state_dir), SpecToJson(spec), 0600));
  const char* mode = o.cgroup.mode == kernel::CgroupMode::kV2   ? "v2"
                     : o.cgroup.mode == kernel::CgroupMode::kV1 ? "v1"
                                                                : "hybrid";
  std::vector<std::string> args = {o.monitor_path,     "--state-dir",     o.state_dir,
                                   "--cgroup-root",    o.cgroup.root,     "--cgroup-mode",
                                   mode,               "--cgroup-parent", o.cgroup_parent,
                                   "--stdio",          o.log_stdio ? "log" : "inherit",
                                   "--log-max-size",   absl::StrCat(o.log_max_size),
                                   "--log-max-files",  absl::StrCat(o.log_max_files)};
  if (o.wait_for_start) args.push_back("--wait-start");
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  int err_pipe[2];
  if (pipe2(err_pipe, O_CLOEXEC) != 0) return base::ErrnoStatus(errno, "pipe");
  base::UniqueFd err_r(err_pipe[0]), err_w(err_pipe[1]);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, err_w.get(), 2);
  pid_t pid;
  int rc = posix_spawn(&pid, o.monitor_path.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return base::ErrnoStatus(rc, "spawn ", o.monitor_path);
  err_w.Reset();
  // The launcher process exits once the daemonized monitor is ready; the daemon may keep the
  // pipe open (inherit mode), so wait for the exit, then read what is buffered.
  int wstatus = 0;
  while (waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
  }
  std::string err;
  char buf[512];
  ssize_t n;
  fcntl(err_r.get(), F_SETFL, O_NONBLOCK);
  while ((n = read(err_r.get(), buf, sizeof(buf))) > 0) err.append(buf, n);
  if (!WIFEXITED(wstatus) || WEXITSTATUS(wstatus) != 0) {
    while (!err.empty() && err.back() == '\n') err.pop_back();
    // The monitor prints the runtime's message, which names the offending field.
    absl::StatusCode code = absl::StrContains(err, "already exists")
                                ? absl::StatusCode::kAlreadyExists
                            : absl::StrContains(err, ": ") ? absl::StatusCode::kInvalidArgument
                                                           : absl::StatusCode::kInternal;
    if (absl::StrContains(err, "exec \"")) code = absl::StatusCode::kNotFound;
    return absl::Status(code, err.empty() ? "shoal-monitor failed" : err);
  }
  return std::unique_ptr<MonitorClient>(new MonitorClient(o.state_dir));
}

absl::StatusOr<std::unique_ptr<MonitorClient>> MonitorClient::Adopt(const std::string& dir) {
  if (access(StateFile(dir).c_str(), F_OK) != 0) {
    return absl::NotFoundError(absl::StrCat("no container state in ", dir));
  }
  return std::unique_ptr<MonitorClient>(new MonitorClient(dir));
}

absl::StatusOr<MonitorState> MonitorClient::State() const {
  ASSIGN_OR_RETURN(std::string text, base::ReadFile(StateFile(state_dir_)));
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded()) return absl::DataLossError("state.json is not JSON");
  MonitorState s;
  s.id = j.value("id", "");
  s.status = j.value("status", "");
  s.pid = j.value("pid", 0);
  s.monitor_pid = j.value("monitor_pid", 0);
  auto exit = base::ReadFile(ExitFile(state_dir_));
  if (exit.ok()) {
    nlohmann::json e = nlohmann::json::parse(*exit, nullptr, false);
    if (!e.is_discarded()) {
      s.has_exit = true;
      s.status = "stopped";
      s.exit.code = e.value("code", 0);
      s.exit.signal = e.value("signal", 0);
      s.exit.oom_killed = e.value("oom_killed", false);
    }
  } else if (s.monitor_pid > 0 && kill(s.monitor_pid, 0) != 0) {
    s.status = "stopped";  // the monitor died without recording an exit (killed -9)
  }
  return s;
}

absl::StatusOr<std::string> MonitorClient::Call(const std::string& command) const {
  base::UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return base::ErrnoStatus(errno, "socket");
  sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  std::string path = SocketFile(state_dir_);
  memcpy(addr.sun_path, path.c_str(), std::min(path.size() + 1, sizeof(addr.sun_path) - 1));
  if (connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    return base::ErrnoStatus(errno, "connect to monitor ", path);
  }
  RETURN_IF_ERROR(base::WriteAll(fd.get(), command + "\n", "monitor command"));
  std::string reply;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd.get(), buf, sizeof(buf))) > 0) reply.append(buf, n);
  if (absl::StartsWith(reply, "ok")) return reply.size() > 3 ? reply.substr(3) : "";
  return absl::FailedPreconditionError(reply.empty() ? "monitor closed the connection"
                                                     : reply.substr(6));
}

absl::Status MonitorClient::Start() { return Call("start").status(); }
absl::Status MonitorClient::Resize(uint16_t rows, uint16_t cols) {
  return Call(absl::StrCat("resize ", rows, " ", cols)).status();
}
absl::Status MonitorClient::Signal(int sig) { return Call(absl::StrCat("kill ", sig)).status(); }
absl::Status MonitorClient::Stop(int sig, absl::Duration grace) {
  return Call(absl::StrCat("stop ", sig, " ", absl::ToInt64Milliseconds(grace))).status();
}

absl::StatusOr<ExitStatus> MonitorClient::Wait(absl::Duration timeout) {
  ASSIGN_OR_RETURN(MonitorState s, State());
  // The monitor is not our child: its pidfd becomes readable when it exits, after it removed
  // the cgroup and wrote exit.json.
  int pidfd = s.monitor_pid > 0 ? kernel::PidfdOpen(s.monitor_pid) : -ESRCH;
  if (pidfd >= 0) {
    base::UniqueFd fd(pidfd);
    struct pollfd p = {fd.get(), POLLIN, 0};
    int rc;
    do {
      rc = poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(timeout)));
    } while (rc < 0 && errno == EINTR);
    if (rc == 0) return absl::DeadlineExceededError("container still running");
  }
  ASSIGN_OR_RETURN(s, State());
  if (!s.has_exit) return absl::DataLossError("monitor exited without recording an exit status");
  return s.exit;
}

}  // namespace shoal::runtime
