// The runtime library: create/start/wait/kill/stop/exec/stats/delete of containers built
// directly from namespaces, cgroups, seccomp and capabilities (DESIGN.md §4).
//
// The process calling Create() becomes the parent of the container's PID 1 (the agent, or
// shoal-monitor). Runtime is thread-safe; a Container is used by one thread at a time.
// Failures leave no cgroup, mount or process behind.
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "base/unique_fd.h"
#include "kernel/cgroup/cgroup.h"
#include "kernel/cgroup/pool.h"
#include "kernel/features.h"
#include "kernel/ns/netns_pool.h"
#include "kernel/seccomp/seccomp.h"
#include "runtime/spec.h"

namespace shoal::runtime {

struct RuntimeOptions {
  kernel::CgroupConfig cgroup;          // root (injectable) and v1/hybrid/v2 mode
  std::string cgroup_parent = "shoal";  // containers live in <parent>/<id>
  absl::Duration setup_timeout = absl::Seconds(30);
  // Fresh network namespaces a background thread keeps ready (kernel/ns/netns_pool.h), used
  // by containers with a new netns and no user namespace; 0 = none, clone makes each one.
  // For long-lived callers (the agent): a short-lived CLI would create them for nothing.
  size_t netns_pool = 0;
  // cgroup v1/hybrid: cgroups prepared ahead (kernel/cgroup/pool.h) and renamed to the
  // container's; 0 = none. Same trade-off as netns_pool. Ignored on cgroup2 (no rename).
  size_t cgroup_pool = 0;
};

struct ExitStatus {
  int code = 0;    // exit code, or 128 + signal
  int signal = 0;  // terminating signal, 0 if it exited
  bool oom_killed = false;
};

// A process started with Exec(): the caller's child.
class Process {
 public:
  Process(pid_t pid, base::UniqueFd pidfd) : pid_(pid), pidfd_(std::move(pidfd)) {}
  pid_t pid() const { return pid_; }
  int pidfd() const { return pidfd_.get(); }
  absl::StatusOr<ExitStatus> Wait();
  absl::Status Signal(int sig);
  // The pty master when the process was started with ProcessSpec::terminal (else -1).
  int console() const { return console_.get(); }
  base::UniqueFd TakeConsole() { return std::move(console_); }

 private:
  friend class Container;
  pid_t pid_;
  base::UniqueFd pidfd_;
  base::UniqueFd console_;
};

class Runtime;

class Container {
 public:
  ~Container();  // kills and removes what is left (like Delete), unless attached
  const std::string& id() const { return id_; }
  pid_t pid() const { return pid_; }          // PID 1 of the container, as seen from the host
  int pidfd() const { return pidfd_.get(); }  // readable when PID 1 exits (-1 after Wait)
  bool started() const { return started_; }
  kernel::Cgroup& cgroup() { return *cgroup_; }
  // The pty master of PID 1 when spec.process.terminal (else -1); available right after
  // Create/Run. TakeConsole() hands it over (the Container then no longer holds it).
  int console() const { return console_.get(); }
  base::UniqueFd TakeConsole() { return std::move(console_); }

  // Lets PID 1 exec the process. The error of a failed exec (e.g. ENOENT) is returned.
  absl::Status Start();
  // Blocks until PID 1 exits; reaps it. Records OOM kills (cgroup oom_kill counter rose and
  // PID 1 died by SIGKILL).
  absl::StatusOr<ExitStatus> Wait();
  // Waits at most `timeout`; DEADLINE_EXCEEDED if still running.
  absl::StatusOr<ExitStatus> WaitFor(absl::Duration timeout);
  absl::Status Signal(int sig);
  // Stop signal, up to `grace`, then SIGKILL of the whole cgroup; returns the exit status.
  absl::StatusOr<ExitStatus> Stop(int sig, absl::Duration grace);
  // Runs another process inside the same namespaces, cgroup, capabilities and seccomp.
  absl::StatusOr<std::unique_ptr<Process>> Exec(const ProcessSpec& process, const Stdio& stdio);
  absl::StatusOr<kernel::CgroupStats> Stats() const { return cgroup_->Stats(); }
  // Kills everything left and removes the cgroup. Idempotent.
  absl::Status Delete();

 private:
  friend class Runtime;
  Container(Runtime* runtime, std::string id, const ContainerSpec& spec);
  absl::StatusOr<ExitStatus> Collect(const siginfo_t& info);

  Runtime* runtime_;
  std::string id_;
  ContainerSpec spec_;
  pid_t pid_ = -1;
  base::UniqueFd pidfd_;
  base::UniqueFd sock_;
  base::UniqueFd console_;
  std::unique_ptr<kernel::Cgroup> cgroup_;
  uint64_t oom_baseline_ = 0;
  bool started_ = false;
  bool exited_ = false;
  ExitStatus exit_;
  bool deleted_ = false;
  bool owned_ = true;  // false for Attach(): the destructor leaves the container alone
};

class Runtime {
 public:
  explicit Runtime(RuntimeOptions options);
  // Validates, renders, creates the cgroup with limits, clones PID 1 with new mnt, pid, uts,
  // ipc, cgroup and (unless netns_path) net namespaces, places it in the cgroup, and lets it
  // set up its rootfs and security; returns when it waits for Start(). Errors name the field.
  absl::StatusOr<std::unique_ptr<Container>> Create(const ContainerSpec& spec, const Stdio& stdio);
  // Create + Start in one round trip (`run`): the setup child execs as soon as it is set up
  // instead of reporting and waiting for Start, saving two parent/child wake-ups. Returns a
  // started container, or the setup/exec error (with nothing left behind).
  absl::StatusOr<std::unique_ptr<Container>> Run(const ContainerSpec& spec, const Stdio& stdio);
  // A handle on a running container created by another process (e.g. a shoal-monitor), for
  // Exec/Stats/Signal. `pid` is its PID 1. The handle never deletes the container on its own.
  absl::StatusOr<std::unique_ptr<Container>> Attach(const ContainerSpec& spec, pid_t pid);
  const RuntimeOptions& options() const { return options_; }
  kernel::SeccompCache& seccomp() { return seccomp_; }
  kernel::NetnsPool* netns_pool() { return netns_pool_.get(); }  // null without options
  kernel::CgroupPool* cgroup_pool() { return cgroup_pool_.get(); }  // null without / on v2

 private:
  friend class Container;
  absl::StatusOr<std::unique_ptr<Container>> CreateInternal(const ContainerSpec& spec,
                                                            const Stdio& stdio, bool start);
  RuntimeOptions options_;
  kernel::SeccompCache seccomp_;
  std::vector<std::string> cgroup_mounts_;  // v1 hierarchy names to mount inside
  std::unique_ptr<kernel::NetnsPool> netns_pool_;
  std::unique_ptr<kernel::CgroupPool> cgroup_pool_;
};

}  // namespace shoal::runtime
