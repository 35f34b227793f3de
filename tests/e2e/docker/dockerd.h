// An isolated dockerd (Debian's docker.io 20.10) for e2e tests of shoal-runtime as an added
// runtime: own --data-root/--exec-root/pidfile/socket under /tmp/shdk-<pid>, its own containerd
// (started here with root/state/sockets under the same directory, passed as --containerd), no
// iptables, no bridge, no forwarding/masquerade, the cgroupfs driver with a unique "shdk-<pid>"
// cgroup parent, and `--add-runtime shoal=<shoal-runtime>`. Stop() removes every container, stops
// dockerd, then containerd (the shims exit with their containers), kills whatever is left in our
// cgroups or refers to our directory (and a killed shim's socket), unmounts what is under it and
// deletes it, and the /run/docker and /run/containerd directories if it created them; the
// destructor calls Stop(), so nothing is left behind on failure either.
#pragma once

#include <sys/types.h>

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace shoal::testing {

class Dockerd {
 public:
  static constexpr const char* kDockerd = "/usr/sbin/dockerd";
  static constexpr const char* kDocker = "/usr/bin/docker";  // Debian's CLI, not /usr/local
  static constexpr const char* kContainerd = "/usr/bin/containerd";

  // Empty when docker.io is installed; otherwise the reason to skip.
  static std::string MissingReason();

  Dockerd(std::string runtime_path);
  ~Dockerd();
  absl::Status Start(absl::Duration timeout = absl::Seconds(90));
  void Stop();

  struct Result {
    int code = -1;
    std::string out;  // stdout
    std::string err;  // stderr
  };
  // Runs `docker <args>` (a shell fragment) against this daemon, with a timeout.
  Result Docker(const std::string& args) const;

  const std::string& dir() const { return dir_; }
  const std::string& cgroup_parent() const { return cgroup_parent_; }
  // shoal-runtime's state directory (--root <exec-root>/runtime-runc + moby/<id>).
  std::string RuntimeStateDir(const std::string& id) const;
  // Leaf cgroup directories under our parent, in every hierarchy.
  std::vector<std::string> CgroupLeaves() const;
  // Host mount points under dir().
  std::vector<std::string> MountsUnderDir() const;
  // Pids of processes whose command line contains `needle`.
  static std::vector<pid_t> ProcessesMatching(const std::string& needle);
  std::string LogTail() const;

 private:
  std::string ContainerdAddress() const;
  // fork + setsid + exec with stdout/stderr to `log`; -1 on failure.
  static pid_t Spawn(std::vector<std::string> args, const std::string& log);
  // SIGTERM, up to 30 s, then SIGKILL; reaps; sets pid to -1.
  static void Terminate(pid_t& pid);

  std::string runtime_path_;
  std::string dir_;
  std::string cgroup_parent_;
  pid_t pid_ = -1;
  pid_t containerd_pid_ = -1;
  bool run_docker_existed_ = true;
  bool run_containerd_existed_ = true;
  bool stopped_ = true;
};

}  // namespace shoal::testing
