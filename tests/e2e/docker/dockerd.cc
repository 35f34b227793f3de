#include "tests/e2e/docker/dockerd.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "base/file.h"
#include "openssl/sha.h"

namespace shoal::testing {
namespace {

std::vector<std::string> CgroupHierarchies() {
  std::vector<std::string> out = {"/sys/fs/cgroup"};
  DIR* d = opendir("/sys/fs/cgroup");
  if (!d) return out;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    std::string p = absl::StrCat("/sys/fs/cgroup/", e->d_name);
    struct stat st;
    if (lstat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) out.push_back(p);
  }
  closedir(d);
  return out;
}

bool Alive(pid_t pid) {
  auto stat = base::ReadFile(absl::StrCat("/proc/", pid, "/stat"));
  if (!stat.ok()) return false;
  size_t close = stat->rfind(')');
  return close != std::string::npos && close + 2 < stat->size() && (*stat)[close + 2] != 'Z';
}

// Collects every descendant directory (deepest first) of `root`.
void SubdirsDeepestFirst(const std::string& root, std::vector<std::string>& out) {
  DIR* d = opendir(root.c_str());
  if (!d) return;
  std::vector<std::string> children;
  while (dirent* e = readdir(d)) {
    if (e->d_type == DT_DIR && e->d_name[0] != '.') children.push_back(root + "/" + e->d_name);
  }
  closedir(d);
  for (const std::string& c : children) SubdirsDeepestFirst(c, out);
  for (const std::string& c : children) out.push_back(c);
}

// containerd 1.6 shims listen on /run/containerd/s/<sha256(address/namespace/id)>
// (runtime/v2/shim SocketAddress); a killed shim leaves it behind.
std::string ShimSocket(const std::string& address, const std::string& id) {
  std::string key = absl::StrCat(address, "/moby/", id);
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(key.data()), key.size(), digest);
  std::string hex;
  for (unsigned char b : digest) absl::StrAppend(&hex, absl::Hex(b, absl::kZeroPad2));
  return "/run/containerd/s/" + hex;
}

// "-id <id>" of a shim's command line, "" for other processes.
std::string ShimId(pid_t pid) {
  auto cmdline = base::ReadFile(absl::StrCat("/proc/", pid, "/cmdline"));
  if (!cmdline.ok()) return "";
  std::vector<std::string> args = absl::StrSplit(*cmdline, '\0');
  for (size_t i = 0; i + 1 < args.size(); ++i) {
    if (args[i] == "-id") return args[i + 1];
  }
  return "";
}

}  // namespace

std::string Dockerd::MissingReason() {
  if (access(kDockerd, X_OK) != 0 || access(kDocker, X_OK) != 0 || access(kContainerd, X_OK) != 0) {
    return "docker.io is not installed (no dockerd, docker or containerd binary; scripts/setup "
           "installs it)";
  }
  return "";
}

Dockerd::Dockerd(std::string runtime_path)
    : runtime_path_(std::move(runtime_path)),
      dir_(absl::StrCat("/tmp/shdk-", getpid())),
      cgroup_parent_(absl::StrCat("shdk-", getpid())) {}

Dockerd::~Dockerd() { Stop(); }

std::string Dockerd::ContainerdAddress() const { return dir_ + "/containerd/containerd.sock"; }

pid_t Dockerd::Spawn(std::vector<std::string> args, const std::string& log) {
  pid_t pid = fork();
  if (pid != 0) return pid;
  setsid();
  int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  int null = open("/dev/null", O_RDONLY);
  dup2(null, 0);
  dup2(fd, 1);
  dup2(fd, 2);
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  execv(argv[0], argv.data());
  _exit(127);
}

void Dockerd::Terminate(pid_t& pid) {
  if (pid <= 0) return;
  kill(pid, SIGTERM);
  absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (waitpid(pid, nullptr, WNOHANG) == 0) {
    if (absl::Now() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
      break;
    }
    usleep(50000);
  }
  pid = -1;
}

absl::Status Dockerd::Start(absl::Duration timeout) {
  std::filesystem::remove_all(dir_);
  std::filesystem::create_directories(dir_ + "/cli");
  stopped_ = false;  // from here on Stop() cleans up
  run_docker_existed_ = access("/run/docker", F_OK) == 0;
  run_containerd_existed_ = access("/run/containerd", F_OK) == 0;
  // deprecated-key-path keeps dockerd 20.10 from creating /etc/docker/key.json.
  auto s = base::WriteFileAtomic(
      dir_ + "/daemon.json", absl::StrCat("{\"deprecated-key-path\": \"", dir_, "/key.json\"}\n"));
  if (!s.ok()) return s;
  // Our own containerd: dockerd 20.10 would use a system containerd at
  // /run/containerd/containerd.sock if one were running (systemContainerdRunning) and only
  // otherwise start a managed one, so we start ours and point dockerd at it.
  std::string ctd = dir_ + "/containerd";
  std::filesystem::create_directories(ctd);
  s = base::WriteFileAtomic(
      ctd + "/config.toml",
      absl::StrCat("version = 2\nroot = \"", ctd, "/root\"\nstate = \"", ctd,
                   "/state\"\ndisabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n"
                   "[grpc]\n  address = \"",
                   ContainerdAddress(), "\"\n[ttrpc]\n  address = \"", ctd,
                   "/containerd.sock.ttrpc\"\n[debug]\n  address = \"", ctd,
                   "/debug.sock\"\n[metrics]\n  address = \"\"\n"));
  if (!s.ok()) return s;
  containerd_pid_ = Spawn({kContainerd, "--config", ctd + "/config.toml"}, ctd + "/containerd.log");
  if (containerd_pid_ < 0) return absl::InternalError("fork containerd");
  absl::Time ctd_deadline = absl::Now() + timeout;
  while (access(ContainerdAddress().c_str(), F_OK) != 0) {
    if (waitpid(containerd_pid_, nullptr, WNOHANG) == containerd_pid_ ||
        absl::Now() > ctd_deadline) {
      containerd_pid_ = -1;
      auto log = base::ReadFile(ctd + "/containerd.log");
      return absl::InternalError(absl::StrCat("containerd did not start:\n", log.ok() ? *log : ""));
    }
    usleep(20000);
  }
  std::vector<std::string> args = {kDockerd,
                                   "--containerd=" + ContainerdAddress(),
                                   "--config-file=" + dir_ + "/daemon.json",
                                   "--data-root=" + dir_ + "/data",
                                   "--exec-root=" + dir_ + "/exec",
                                   "--pidfile=" + dir_ + "/docker.pid",
                                   "-H",
                                   "unix://" + dir_ + "/docker.sock",
                                   "--iptables=false",
                                   "--ip6tables=false",
                                   "--bridge=none",
                                   "--ip-forward=false",
                                   "--ip-masq=false",
                                   "--userland-proxy=false",
                                   "--exec-opt=native.cgroupdriver=cgroupfs",
                                   "--cgroup-parent=" + cgroup_parent_,
                                   "--add-runtime=shoal=" + runtime_path_};
  pid_ = Spawn(args, dir_ + "/dockerd.log");
  if (pid_ < 0) return absl::InternalError("fork dockerd");
  absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (waitpid(pid_, nullptr, WNOHANG) == pid_) {
      pid_ = -1;
      return absl::InternalError(absl::StrCat("dockerd exited during start:\n", LogTail()));
    }
    if (Docker("version --format '{{.Server.Version}}'").code == 0) return absl::OkStatus();
    usleep(100000);
  }
  return absl::DeadlineExceededError(absl::StrCat("dockerd did not answer:\n", LogTail()));
}

Dockerd::Result Dockerd::Docker(const std::string& args) const {
  std::string out = dir_ + "/cli.out", err = dir_ + "/cli.err";
  std::string cmd =
      absl::StrCat("DOCKER_CONFIG=", dir_, "/cli timeout 120 ", kDocker, " -H unix://", dir_,
                   "/docker.sock ", args, " </dev/null >", out, " 2>", err);
  int status = system(cmd.c_str());
  Result r;
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  auto o = base::ReadFile(out), e = base::ReadFile(err);
  r.out = o.ok() ? *o : "";
  r.err = e.ok() ? *e : "";
  unlink(out.c_str());
  unlink(err.c_str());
  return r;
}

std::string Dockerd::RuntimeStateDir(const std::string& id) const {
  // dockerd 20.10 gives every runtime the runc root (defaultV2ShimConfig: runtime-runc).
  return absl::StrCat(dir_, "/exec/runtime-runc/moby/", id);
}

std::vector<std::string> Dockerd::CgroupLeaves() const {
  std::vector<std::string> out;
  for (const std::string& h : CgroupHierarchies()) {
    SubdirsDeepestFirst(absl::StrCat(h, "/", cgroup_parent_), out);
  }
  return out;
}

std::vector<std::string> Dockerd::MountsUnderDir() const {
  std::vector<std::string> out;
  auto info = base::ReadFile("/proc/self/mountinfo");
  if (!info.ok()) return out;
  for (absl::string_view line : absl::StrSplit(*info, '\n')) {
    std::vector<absl::string_view> f = absl::StrSplit(line, ' ');
    if (f.size() > 4 && absl::StartsWith(f[4], dir_ + "/")) out.emplace_back(f[4]);
  }
  return out;
}

std::vector<pid_t> Dockerd::ProcessesMatching(const std::string& needle) {
  std::vector<pid_t> out;
  DIR* d = opendir("/proc");
  if (!d) return out;
  while (dirent* e = readdir(d)) {
    pid_t pid = atoi(e->d_name);
    if (pid <= 0 || pid == getpid()) continue;
    auto cmdline = base::ReadFile(absl::StrCat("/proc/", pid, "/cmdline"));
    if (!cmdline.ok()) continue;
    std::replace(cmdline->begin(), cmdline->end(), '\0', ' ');
    if (cmdline->find(needle) != std::string::npos && Alive(pid)) out.push_back(pid);
  }
  closedir(d);
  return out;
}

std::string Dockerd::LogTail() const {
  auto log = base::ReadFile(dir_ + "/dockerd.log");
  if (!log.ok()) return "(no dockerd.log)";
  return log->size() > 4000 ? log->substr(log->size() - 4000) : *log;
}

void Dockerd::Stop() {
  if (stopped_) return;
  stopped_ = true;
  if (pid_ > 0) {
    Result ids = Docker("ps -aq");
    for (absl::string_view id : absl::StrSplit(ids.out, '\n', absl::SkipEmpty())) {
      Docker(absl::StrCat("rm -f ", id));
    }
    Terminate(pid_);
  }
  Terminate(containerd_pid_);
  // Whatever survived: the managed containerd and shims name our directory on their command
  // line; container processes sit in our cgroups.
  for (int round = 0; round < 50; ++round) {
    std::vector<pid_t> left = ProcessesMatching(dir_);
    for (const std::string& leaf : CgroupLeaves()) {
      auto procs = base::ReadFile(leaf + "/cgroup.procs");
      if (!procs.ok()) continue;
      for (absl::string_view p : absl::StrSplit(*procs, '\n', absl::SkipEmpty())) {
        left.push_back(atoi(std::string(p).c_str()));
      }
    }
    if (left.empty()) break;
    for (pid_t p : left) {
      std::string shim = ShimId(p);
      if (!shim.empty()) {
        unlink(ShimSocket(ContainerdAddress(), shim).c_str());
      }
      kill(p, SIGKILL);
    }
    while (waitpid(-1, nullptr, WNOHANG) > 0) {
    }
    usleep(100000);
  }
  std::vector<std::string> mounts = MountsUnderDir();
  std::sort(mounts.begin(), mounts.end(),
            [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  for (const std::string& m : mounts) umount2(m.c_str(), MNT_DETACH);
  for (const std::string& leaf : CgroupLeaves()) rmdir(leaf.c_str());
  for (const std::string& h : CgroupHierarchies()) {
    rmdir(absl::StrCat(h, "/", cgroup_parent_).c_str());
  }
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
  if (!run_docker_existed_) {  // dockerd 20.10 always creates /run/docker/plugins
    rmdir("/run/docker/plugins");
    rmdir("/run/docker");
  }
  if (!run_containerd_existed_) {  // the shims' socket directory (fails if not empty)
    rmdir("/run/containerd/s");
    rmdir("/run/containerd");
  }
}

}  // namespace shoal::testing
