#include "tests/e2e/cluster/lab_cluster.h"

#include <signal.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"

namespace shoal::cluster::e2e {
namespace {

std::string Quote(const std::string& s) {
  return "'" + absl::StrReplaceAll(s, {{"'", "'\\''"}}) + "'";
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

lab::CommandResult Run(const std::string& cmd) {
  auto r = lab::RunIn(-1, cmd, std::chrono::seconds(180));
  if (r.ok()) return *r;
  lab::CommandResult failed;
  failed.output.assign(r.status().message().data(), r.status().message().size());
  return failed;
}

}  // namespace

LabCluster::LabCluster(std::string prefix, int hosts, int managers)
    : prefix_(std::move(prefix)), hosts_(hosts), managers_(managers) {}

LabCluster::~LabCluster() { Down(); }

lab::CommandResult LabCluster::Script(const std::string& verb,
                                      const std::vector<std::string>& args) {
  std::string cmd = absl::StrCat(SHOAL_SOURCE_DIR, "/scripts/lab-cluster ", verb, " --prefix ",
                                 prefix_, " --build ", SHOAL_BUILD_DIR);
  for (const auto& a : args) absl::StrAppend(&cmd, " ", Quote(a));
  return Run(cmd + " 2>&1");
}

lab::CommandResult LabCluster::Up() {
  return Script("up", {"--hosts", std::to_string(hosts_), "--managers", std::to_string(managers_)});
}

lab::CommandResult LabCluster::Down() { return Script("down", {}); }

lab::CommandResult LabCluster::Shoal(int i, const std::vector<std::string>& args) {
  std::vector<std::string> all = {std::to_string(i)};
  all.insert(all.end(), args.begin(), args.end());
  return Script("shoal", all);
}

lab::CommandResult LabCluster::InHost(int i, const std::string& cmd) {
  std::string ns = i == 0 ? prefix_ + "out" : Hostname(i);
  return Run(absl::StrCat("nsenter --net=/run/netns/", ns, " -- sh -c ", Quote(cmd), " 2>&1"));
}

pid_t LabCluster::DaemonPid(int i) {
  int pid = 0;
  std::string s(absl::StripAsciiWhitespace(ReadAll(absl::StrCat(StateDir(), "/n", i, ".pid"))));
  return absl::SimpleAtoi(s, &pid) ? pid : 0;
}

void LabCluster::Kill9(int i) {
  pid_t pid = DaemonPid(i);
  if (pid <= 0) return;
  ::kill(pid, SIGKILL);
  // shoald is not our child (the script started it): wait until it is gone.
  WaitFor([&] { return ::kill(pid, 0) != 0; }, absl::Seconds(10));
}

std::string LabCluster::Hostname(int i) const { return absl::StrCat(prefix_, "h", i); }
std::string LabCluster::CgroupParent(int i) const { return absl::StrCat(prefix_, "n", i); }
std::string LabCluster::Ip(int i) const { return absl::StrCat("192.168.77.", i); }
std::string LabCluster::StateDir() const { return "/tmp/" + prefix_ + "cluster"; }
std::string LabCluster::Log(int i) const {
  std::string log = ReadAll(absl::StrCat(StateDir(), "/n", i, ".log"));
  return log.size() > 6000 ? "..." + log.substr(log.size() - 6000) : log;
}

std::map<pid_t, std::string> ProcsInCgroup(const std::string& parent) {
  std::map<pid_t, std::string> procs;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/proc", ec)) {
    std::string name = e.path().filename().string();
    int pid = 0;
    if (!absl::SimpleAtoi(name, &pid)) continue;
    std::ifstream in(e.path() / "cgroup");
    std::string line;
    while (std::getline(in, line)) {
      if (absl::StrContains(line, ":/" + parent + "/")) {
        procs[pid] = std::string(absl::StripAsciiWhitespace(ReadAll(e.path() / "comm")));
        break;
      }
    }
  }
  return procs;
}

std::vector<pid_t> ProcsMentioning(const std::string& text) {
  std::vector<pid_t> pids;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/proc", ec)) {
    int pid = 0;
    if (!absl::SimpleAtoi(e.path().filename().string(), &pid)) continue;
    std::string cmdline = ReadAll(e.path() / "cmdline");
    if (absl::StrContains(cmdline, text)) pids.push_back(pid);
  }
  return pids;
}

}  // namespace shoal::cluster::e2e
