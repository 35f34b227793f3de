#include "runtime/oci/state.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/file.h"
#include "base/status.h"
#include "kernel/ns/ns.h"

namespace shoal::runtime {
namespace {

using nlohmann::json;

// The state directory can be deep (docker: <exec-root>/runtime-<name>/moby/<64 hex id>), past
// sun_path's 108 bytes; reach the socket through an O_PATH fd of the directory instead.
struct SocketAddr {
  base::UniqueFd dir;
  sockaddr_un addr = {};
};

absl::StatusOr<SocketAddr> StartSocketAddr(const std::string& dir) {
  SocketAddr a;
  a.dir.Reset(open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!a.dir) return base::ErrnoStatus(errno, "open state directory ", dir);
  a.addr.sun_family = AF_UNIX;
  std::string path = absl::StrCat("/proc/self/fd/", a.dir.get(), "/start.sock");
  memcpy(a.addr.sun_path, path.c_str(), path.size() + 1);
  return a;
}

void WriteReply(int fd, const absl::Status& s) {
  std::string reply = s.ok() ? "ok\n" : absl::StrCat("error ", s.message(), "\n");
  (void)!write(fd, reply.data(), reply.size());
}

[[noreturn]] void RunHolder(const std::string& dir, int listen_fd, Container* c) {
  int null = open("/dev/null", O_RDWR);  // hold none of the caller's pipes
  for (int i = 0; i < 3 && null >= 0; ++i) dup2(null, i);
  if (null > 2) close(null);
  setsid();
  struct pollfd p[2] = {{listen_fd, POLLIN, 0}, {c->pidfd(), POLLIN, 0}};
  while (true) {
    int rc = poll(p, 2, -1);
    if (rc < 0 && errno == EINTR) continue;
    if (rc < 0 || (p[1].revents & POLLIN)) _exit(0);  // PID 1 died before start
    int conn = accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (conn < 0) continue;
    char buf[16] = {};
    ssize_t n = read(conn, buf, sizeof(buf) - 1);
    if (n <= 0 || strncmp(buf, "start", 5) != 0) {
      WriteReply(conn, absl::InvalidArgumentError("unknown request"));
      close(conn);
      continue;
    }
    absl::Status s = c->Start();
    if (s.ok()) s = base::WriteFileAtomic(dir + "/started", "", 0600);
    if (!s.ok()) {
      // A failed start (exec error) must read as "stopped" as soon as `start` returns, or
      // containerd sees a "created" task with a pid it refuses to delete: make sure PID 1 is
      // gone (dead; its reaper collects it) before replying.
      (void)kernel::PidfdSignal(c->pidfd(), SIGKILL);
      struct pollfd dead = {c->pidfd(), POLLIN, 0};
      while (poll(&dead, 1, 10000) < 0 && errno == EINTR) {
      }
    }
    WriteReply(conn, s);
    close(conn);
    _exit(s.ok() ? 0 : 1);
  }
}

}  // namespace

absl::Status WriteOciState(const std::string& dir, const OciState& s) {
  json j = {{"id", s.id},
            {"bundle", s.bundle},
            {"cgroup_parent", s.cgroup_parent},
            {"pid", s.pid},
            {"start_time", s.start_time},
            {"created", s.created},
            {"poststart", s.poststart},
            {"poststop", s.poststop}};
  return base::WriteFileAtomic(dir + "/state.json", j.dump(), 0600);
}

absl::StatusOr<OciState> ReadOciState(const std::string& dir) {
  auto text = base::ReadFile(dir + "/state.json");
  if (!text.ok()) return absl::NotFoundError("no state");
  json j = json::parse(*text, nullptr, false);
  if (j.is_discarded()) return absl::DataLossError(absl::StrCat(dir, "/state.json: not JSON"));
  OciState s;
  s.id = j.value("id", "");
  s.bundle = j.value("bundle", "");
  s.cgroup_parent = j.value("cgroup_parent", "");
  s.created = j.value("created", "");
  s.pid = j.value("pid", 0);
  s.start_time = j.value("start_time", uint64_t{0});
  s.poststart = j.value("poststart", json::array());
  s.poststop = j.value("poststop", json::array());
  return s;
}

std::optional<uint64_t> ProcStartTime(pid_t pid) {
  auto stat = base::ReadFile(absl::StrCat("/proc/", pid, "/stat"));
  if (!stat.ok()) return std::nullopt;
  // "pid (comm) S ppid ...": comm may hold spaces and parentheses; split after the last ')'.
  size_t close = stat->rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::vector<std::string> f = absl::StrSplit(stat->substr(close + 2), ' ');
  if (f.size() < 20 || f[0] == "Z" || f[0] == "X") return std::nullopt;
  uint64_t t = 0;
  if (!absl::SimpleAtoi(f[19], &t)) return std::nullopt;  // field 22 overall
  return t;
}

bool SameProcessAlive(pid_t pid, uint64_t start_time) {
  auto t = pid > 0 ? ProcStartTime(pid) : std::nullopt;
  return t && *t == start_time;
}

std::string OciStatus(const std::string& dir, const OciState& s) {
  if (!SameProcessAlive(s.pid, s.start_time)) return "stopped";
  return access((dir + "/started").c_str(), F_OK) == 0 ? "running" : "created";
}

json OciStateJson(const OciState& s, const std::string& status) {
  return {{"ociVersion", "1.2.0"},
          {"id", s.id},
          {"status", status},
          {"pid", status == "stopped" ? 0 : s.pid},
          {"bundle", s.bundle},
          {"created", s.created},
          {"annotations", json::object()}};
}

absl::Status SpawnHolder(const std::string& dir, Container* c) {
  ASSIGN_OR_RETURN(SocketAddr a, StartSocketAddr(dir));
  base::UniqueFd listen_fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!listen_fd) return base::ErrnoStatus(errno, "socket");
  if (bind(listen_fd.get(), reinterpret_cast<sockaddr*>(&a.addr), sizeof(a.addr)) != 0) {
    return base::ErrnoStatus(errno, "bind ", dir, "/start.sock");
  }
  (void)fchmodat(a.dir.get(), "start.sock", 0600, 0);
  if (listen(listen_fd.get(), 4) != 0) return base::ErrnoStatus(errno, "listen");
  pid_t pid = fork();
  if (pid < 0) return base::ErrnoStatus(errno, "fork holder");
  if (pid == 0) RunHolder(dir, listen_fd.get(), c);
  return absl::OkStatus();
}

absl::Status RequestStart(const std::string& dir) {
  ASSIGN_OR_RETURN(SocketAddr a, StartSocketAddr(dir));
  base::UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return base::ErrnoStatus(errno, "socket");
  if (connect(fd.get(), reinterpret_cast<sockaddr*>(&a.addr), sizeof(a.addr)) != 0) {
    return base::ErrnoStatus(errno, "connect to the container's holder (", dir, "/start.sock)");
  }
  RETURN_IF_ERROR(base::WriteAll(fd.get(), "start\n", "start request"));
  std::string reply;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd.get(), buf, sizeof(buf))) > 0) reply.append(buf, n);
  while (!reply.empty() && reply.back() == '\n') reply.pop_back();
  if (reply == "ok") return absl::OkStatus();
  if (reply.rfind("error ", 0) == 0) return absl::FailedPreconditionError(reply.substr(6));
  return absl::InternalError("the container's holder exited without replying");
}

}  // namespace shoal::runtime
