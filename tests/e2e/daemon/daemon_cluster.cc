#include "tests/e2e/daemon/daemon_cluster.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace shoal::daemon::e2e {
namespace {

int FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa));
  socklen_t len = sizeof(sa);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
  ::close(fd);
  return ntohs(sa.sin_port);
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// fork + exec with stdout/stderr redirected to files; returns the pid.
pid_t Spawn(const std::vector<std::string>& args, const std::string& out, const std::string& err) {
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid == 0) {
    int o = ::open(out.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    int e = out == err ? o : ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int null = ::open("/dev/null", O_RDONLY);
    ::dup2(null, 0);
    ::dup2(o, 1);
    ::dup2(e, 2);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  return pid;
}

}  // namespace

std::vector<pid_t> PidsInCgroup(const std::string& parent) {
  std::vector<pid_t> pids;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/proc", ec)) {
    std::string name = e.path().filename().string();
    if (name.empty() || !absl::ascii_isdigit(name[0])) continue;
    std::ifstream in(e.path() / "cgroup");
    std::string line;
    while (std::getline(in, line)) {
      if (absl::StrContains(line, ":/" + parent + "/")) {
        pids.push_back(std::stoi(name));
        break;
      }
    }
  }
  return pids;
}

DaemonCluster::DaemonCluster(int nodes, std::vector<std::string> extra_args)
    : extra_(std::move(extra_args)) {
  char tmpl[] = "/tmp/dc-e2e-XXXXXX";
  if (::mkdtemp(tmpl) != nullptr) dir_ = tmpl;
  for (int i = 0; i < nodes; ++i) {
    ports_.push_back(FreePort());
    pids_.push_back(0);
  }
}

DaemonCluster::~DaemonCluster() {
  for (size_t i = 0; i < pids_.size(); ++i) {
    if (pids_[i] > 0) Kill9(static_cast<int>(i));
  }
  // Containers a node's agent left running (live restore keeps them past shoald): kill every
  // process in the nodes' cgroups (their shoal-monitor parents included), then unmount what
  // lies under the test directory (container rootfs overlays), then remove the cgroups.
  for (int round = 0; round < 50; ++round) {
    int left = 0;
    for (size_t i = 0; i < pids_.size(); ++i) {
      for (pid_t p : PidsInCgroup(CgroupParent(static_cast<int>(i)))) {
        ::kill(p, SIGKILL);
        ++left;
      }
    }
    if (left == 0) break;
    absl::SleepFor(absl::Milliseconds(100));
  }
  if (!dir_.empty()) {
    std::ifstream mounts("/proc/self/mountinfo");
    std::vector<std::string> targets;
    std::string line;
    while (std::getline(mounts, line)) {
      std::vector<std::string> f = absl::StrSplit(line, ' ');
      if (f.size() > 4 && absl::StartsWith(f[4], dir_ + "/")) targets.push_back(f[4]);
    }
    std::sort(targets.rbegin(), targets.rend());
    for (const auto& t : targets) ::umount2(t.c_str(), MNT_DETACH);
  }
  // Cgroups a node's agent may have created under its --cgroup-parent (every hierarchy).
  std::error_code ec;
  for (const auto& hierarchy : std::filesystem::directory_iterator("/sys/fs/cgroup", ec)) {
    for (size_t i = 0; i < pids_.size(); ++i) {
      std::string parent = hierarchy.path().string() + "/" + CgroupParent(static_cast<int>(i));
      if (!std::filesystem::exists(parent, ec)) continue;
      // Children first (rmdir of a cgroup with children fails).
      std::vector<std::string> dirs;
      for (const auto& d : std::filesystem::recursive_directory_iterator(parent, ec)) {
        if (d.is_directory(ec)) dirs.push_back(d.path().string());
      }
      std::sort(dirs.rbegin(), dirs.rend());
      for (const auto& d : dirs) ::rmdir(d.c_str());
      ::rmdir(parent.c_str());
    }
  }
  if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
}

std::string DaemonCluster::CgroupParent(int i) const {
  return absl::StrCat("dc-e2e-", ::getpid(), "-", i);
}

std::string DaemonCluster::Addr(int i) const { return absl::StrCat("127.0.0.1:", ports_[i]); }
std::string DaemonCluster::Socket(int i) const {
  return absl::StrCat(dir_, "/n", i, "/run/shoald.sock");
}
std::string DaemonCluster::Log(int i) const { return ReadAll(absl::StrCat(dir_, "/n", i, ".log")); }

void DaemonCluster::Start(int i) {
  ASSERT_FALSE(dir_.empty()) << "mkdtemp failed";
  std::string node = absl::StrCat(dir_, "/n", i);
  std::vector<std::string> args = {SHOALD_PATH,
                                   "--root=" + node + "/root",
                                   "--exec-root=" + node + "/run",
                                   "--cgroup-parent=" + CgroupParent(i),
                                   absl::StrCat("--hostname=dc-node-", i),
                                   "--listen-addr=" + Addr(i),
                                   "--log-level=debug"};
  args.insert(args.end(), extra_.begin(), extra_.end());
  std::string log = absl::StrCat(dir_, "/n", i, ".log");
  pids_[i] = Spawn(args, log, log);
  ASSERT_GT(pids_[i], 0);
  bool up = WaitFor(
      [&] {
        int status = 0;
        if (::waitpid(pids_[i], &status, WNOHANG) == pids_[i]) {
          pids_[i] = 0;
          return true;  // exited: reported below
        }
        return Shoal(i, {"swarm", "info"}).exit_code == 0;
      },
      absl::Seconds(30));
  ASSERT_TRUE(up && pids_[i] > 0) << "shoald " << i << " did not come up:\n" << Log(i);
}

void DaemonCluster::Kill9(int i) {
  if (pids_[i] <= 0) return;
  ::kill(pids_[i], SIGKILL);
  ::waitpid(pids_[i], nullptr, 0);
  pids_[i] = 0;
}

int DaemonCluster::Terminate(int i) {
  if (pids_[i] <= 0) return -1;
  ::kill(pids_[i], SIGTERM);
  int status = 0;
  bool exited =
      WaitFor([&] { return ::waitpid(pids_[i], &status, WNOHANG) == pids_[i]; }, absl::Seconds(30));
  if (!exited) {
    Kill9(i);
    return -1;
  }
  pids_[i] = 0;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

CliResult DaemonCluster::Shoal(int i, const std::vector<std::string>& args) {
  std::string out = absl::StrCat(dir_, "/cli-", ::getpid(), "-", ++cli_seq_, ".out");
  std::string err = out + ".err";
  std::vector<std::string> argv = {SHOAL_CLI_PATH, "-H", Socket(i)};
  argv.insert(argv.end(), args.begin(), args.end());
  ::unlink(out.c_str());
  pid_t pid = Spawn(argv, out, err);
  int status = 0;
  ::waitpid(pid, &status, 0);
  CliResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = ReadAll(out);
  r.err = ReadAll(err);
  ::unlink(out.c_str());
  ::unlink(err.c_str());
  return r;
}

// The non-empty cells of the MANAGER STATUS column of `node ls` (columns are aligned, so the
// header gives the cell's offset).
std::vector<std::string> ManagerStatuses(const std::string& out) {
  std::vector<std::string> statuses;
  std::vector<std::string> lines = absl::StrSplit(out, '\n', absl::SkipEmpty());
  if (lines.empty()) return statuses;
  size_t col = lines[0].find("MANAGER STATUS");
  size_t end = lines[0].find("ENGINE VERSION");
  if (col == std::string::npos) return statuses;
  for (size_t i = 1; i < lines.size(); ++i) {
    if (lines[i].size() <= col) continue;
    std::string cell(absl::StripAsciiWhitespace(lines[i].substr(col, end - col)));
    if (!cell.empty()) statuses.push_back(cell);
  }
  return statuses;
}

// `service ls` on node i lists `name` with `replicas` desired, and `service ps` shows that many
// tasks.
bool ServiceVisible(DaemonCluster& c, int i, const std::string& name, int replicas) {
  CliResult ls = c.Shoal(i, {"service", "ls"});
  if (ls.exit_code != 0) return false;
  bool listed = false;
  for (const auto& row : Rows(ls.out)) {
    if (row.size() >= 5 && row[1] == name &&
        absl::EndsWith(row[3], "/" + std::to_string(replicas))) {
      listed = true;
    }
  }
  if (!listed) return false;
  CliResult ps = c.Shoal(i, {"service", "ps", name});
  if (ps.exit_code != 0) return false;
  int tasks = 0;
  for (const auto& row : Rows(ps.out))
    tasks += row.size() > 1 && absl::StartsWith(row[1], name + ".");
  return tasks == replicas;
}

int LeaderIndex(DaemonCluster& c, const std::vector<int>& among) {
  for (int i : among) {
    CliResult r = c.Shoal(i, {"swarm", "info"});
    if (r.exit_code == 0 && absl::StrContains(r.out, "Is Leader: true")) return i;
  }
  return -1;
}

}  // namespace shoal::daemon::e2e
