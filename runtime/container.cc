#include "runtime/container.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <climits>
#include <cstring>
#include <set>

#include "absl/strings/str_cat.h"
#include "base/check.h"
#include "base/status.h"
#include "kernel/mount/mount.h"
#include "kernel/ns/ns.h"
#include "runtime/init.h"
#include "runtime/sync.h"
#include "runtime/terminal.h"

namespace shoal::runtime {
namespace {

struct SocketPair {
  base::UniqueFd parent, child;
};

absl::StatusOr<SocketPair> MakeSocketPair() {
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) != 0) {
    return base::ErrnoStatus(errno, "socketpair");
  }
  return SocketPair{base::UniqueFd(fds[0]), base::UniqueFd(fds[1])};
}

ExitStatus FromSiginfo(const siginfo_t& info) {
  ExitStatus s;
  if (info.si_code == CLD_EXITED) {
    s.code = info.si_status;
  } else {
    s.signal = info.si_status;
    s.code = 128 + info.si_status;
  }
  return s;
}

absl::StatusOr<siginfo_t> WaitPidfd(int pidfd, int extra_flags = 0) {
  siginfo_t info = {};
  while (waitid(P_PIDFD, pidfd, &info, WEXITED | extra_flags) != 0) {
    if (errno != EINTR) return base::ErrnoStatus(errno, "waitid");
  }
  return info;
}

// v1 hierarchy directory names to mount inside the container ("cpu,cpuacct", "memory", ...).
std::vector<std::string> V1MountNames(const std::string& root) {
  std::vector<std::string> names;
  std::set<std::string> seen;
  for (const std::string& c : kernel::V1Controllers()) {
    std::string path = absl::StrCat(root, "/", c);
    char target[PATH_MAX];
    ssize_t n = readlink(path.c_str(), target, sizeof(target) - 1);
    std::string name = c;
    if (n > 0) {
      name.assign(target, n);
      if (name.find('/') != std::string::npos) name = name.substr(name.rfind('/') + 1);
    }
    struct stat st;
    if (stat(path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) continue;
    if (seen.insert(name).second) names.push_back(name);
  }
  return names;
}

struct InitChildArgs {
  const InitPlan* plan;
  int parent_sock, child_sock;
};

int InitChild(void* p) {
  const InitChildArgs* a = static_cast<const InitChildArgs*>(p);
  close(a->parent_sock);
  RunInit(*a->plan, a->child_sock);
}

absl::StatusOr<base::UniqueFd> OpenDevNull() {
  base::UniqueFd fd(open("/dev/null", O_RDWR | O_CLOEXEC));
  if (!fd) return base::ErrnoStatus(errno, "open /dev/null");
  return fd;
}

void FillStdio(const Stdio& stdio, int devnull, int out[3]) {
  out[0] = stdio.in >= 0 ? stdio.in : devnull;
  out[1] = stdio.out >= 0 ? stdio.out : devnull;
  out[2] = stdio.err >= 0 ? stdio.err : devnull;
}

}  // namespace

absl::StatusOr<ExitStatus> Process::Wait() {
  ASSIGN_OR_RETURN(siginfo_t info, WaitPidfd(pidfd_.get()));
  return FromSiginfo(info);
}

absl::Status Process::Signal(int sig) {
  int rc = kernel::PidfdSignal(pidfd_.get(), sig);
  return rc < 0 ? base::ErrnoStatus(-rc, "signal exec process") : absl::OkStatus();
}

Runtime::Runtime(RuntimeOptions options) : options_(std::move(options)) {
  if (options_.cgroup.mode != kernel::CgroupMode::kV2) {
    cgroup_mounts_ = V1MountNames(options_.cgroup.root);
  }
  if (options_.netns_pool > 0) {
    // Without a pool (e.g. netns creation not permitted) clone makes each netns, as before.
    auto pool = kernel::NetnsPool::Create(options_.netns_pool);
    if (pool.ok()) netns_pool_ = std::move(*pool);
  }
  if (options_.cgroup_pool > 0 && options_.cgroup.mode != kernel::CgroupMode::kV2) {
    auto pool = kernel::CgroupPool::Create(options_.cgroup, options_.cgroup_parent,
                                           options_.cgroup_pool);
    if (pool.ok()) cgroup_pool_ = std::move(*pool);
  }
}

absl::StatusOr<std::unique_ptr<Container>> Runtime::Create(const ContainerSpec& spec,
                                                           const Stdio& stdio) {
  return CreateInternal(spec, stdio, /*start=*/false);
}

absl::StatusOr<std::unique_ptr<Container>> Runtime::Run(const ContainerSpec& spec,
                                                        const Stdio& stdio) {
  return CreateInternal(spec, stdio, /*start=*/true);
}

absl::StatusOr<std::unique_ptr<Container>> Runtime::CreateInternal(const ContainerSpec& spec,
                                                                   const Stdio& stdio, bool start) {
  RETURN_IF_ERROR(ValidateSpec(spec));
  ASSIGN_OR_RETURN(std::unique_ptr<InitPlan> plan,
                   RenderInit(spec, options_.cgroup.mode, cgroup_mounts_, seccomp_));
  plan->exec_when_ready = start;
  base::UniqueFd netns;
  if (!spec.netns_path.empty()) {
    netns.Reset(open(spec.netns_path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!netns) return base::ErrnoStatus(errno, "netns_path: open ", spec.netns_path);
    plan->netns_fd = netns.get();
  }
  ASSIGN_OR_RETURN(base::UniqueFd devnull, OpenDevNull());
  // A terminal replaces the stdio: the caller's must not stay open in the waiting child (an
  // OCI caller like containerd-shim waits for EOF on the pipes it gave `create`).
  FillStdio(spec.process.terminal ? Stdio{} : stdio, devnull.get(), plan->process.stdio);
  const bool userns = spec.user_namespace();
  // A pooled netns is owned by the host's user namespace: only for containers without one
  // (a user namespace must own its netns to mount sysfs and manage its devices).
  base::UniqueFd pooled_net;
  if (netns_pool_ && spec.netns_path.empty() && !userns) {
    pooled_net = netns_pool_->Take();
    if (pooled_net) plan->netns_fd = pooled_net.get();
  }
  base::UniqueFd overlay;
  if (userns && !spec.overlay.lower_dirs.empty()) {
    auto mnt = kernel::OpenOverlayMount(spec.overlay.lower_dirs, spec.overlay.upper_dir,
                                        spec.overlay.work_dir);
    if (!mnt.ok()) return base::Annotate(mnt.status(), "overlay");
    overlay = std::move(*mnt);
    plan->overlay_fd = overlay.get();
  }

  absl::StatusOr<std::unique_ptr<kernel::Cgroup>> cgroup = std::unique_ptr<kernel::Cgroup>();
  if (cgroup_pool_) cgroup = cgroup_pool_->Take(spec.id, spec.resources);
  if (cgroup.ok() && !*cgroup) {
    cgroup = kernel::Cgroup::Create(
        options_.cgroup, absl::StrCat(options_.cgroup_parent, "/", spec.id), spec.resources);
  }
  if (absl::IsAlreadyExists(cgroup.status())) {
    return absl::AlreadyExistsError(absl::StrCat("id: container \"", spec.id, "\" already exists"));
  }
  if (!cgroup.ok()) return cgroup.status();
  std::unique_ptr<Container> c(new Container(this, spec.id, spec));
  c->cgroup_ = std::move(*cgroup);

  ASSIGN_OR_RETURN(SocketPair sp, MakeSocketPair());
  uint64_t flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC;
  if (spec.netns_path.empty() && !pooled_net) flags |= CLONE_NEWNET;
  if (userns) flags |= CLONE_NEWUSER;
  // A child born in a new user namespace can no longer join a netns owned by the host's:
  // clone it from this thread while the thread sits in that netns (setns is per thread).
  base::UniqueFd thread_net;
  if (userns && netns) {
    thread_net.Reset(open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
    if (!thread_net) return base::ErrnoStatus(errno, "open /proc/thread-self/ns/net");
    if (setns(netns.get(), CLONE_NEWNET) != 0) {
      return base::ErrnoStatus(errno, "netns_path: join ", spec.netns_path);
    }
  }
  // The cgroup is new (Create refuses an existing one): its OOM-kill counter starts at 0.
  c->oom_baseline_ = 0;
  // v2: clone straight into the cgroup (its limits apply from the first instruction, no
  // migration). Without maps to write the child then has nothing to wait for.
  base::UniqueFd cgroup_dir;
  if (options_.cgroup.mode == kernel::CgroupMode::kV2) {
    auto dir = c->cgroup_->OpenDir();
    if (dir.ok()) cgroup_dir = std::move(*dir);
  }
  // Otherwise, without a user namespace, the child joins the cgroup itself first thing.
  std::vector<base::UniqueFd> procs;
  if (!cgroup_dir && !userns) {
    ASSIGN_OR_RETURN(procs, c->cgroup_->OpenProcs());
    for (const base::UniqueFd& fd : procs) plan->cgroup_procs.push_back(fd.get());
  }
  plan->wait_for_go = userns;
  kernel::CloneResult r;
  bool cloned = false;
  if (start && !plan->wait_for_go) {
    // Run with nothing for this side to do before the child execs: clone vfork-style (no
    // copy of this process's page tables, no copy-on-write faults after). This thread sleeps
    // until the child has exec'd or failed; the outcome then waits in the socket.
    InitChildArgs args = {plan.get(), sp.parent.get(), sp.child.get()};
    r = kernel::CloneVfork(flags, cgroup_dir.get(), InitChild, &args);
    cloned = r.pid != -ENOSYS;
  }
  if (!cloned) {
    r = kernel::Clone(flags, cgroup_dir.get());
    if (r.pid == 0) {
      close(sp.parent.get());
      RunInit(*plan, sp.child.get());
    }
  }
  if (r.pid < 0 && cgroup_dir) {
    // Kernel without CLONE_INTO_CGROUP (< 5.7) or a cgroup it refuses: place it by hand.
    cgroup_dir.Reset();
    plan->wait_for_go = true;
    plan->cgroup_procs.clear();
    r = kernel::Clone(flags);
    if (r.pid == 0) {
      close(sp.parent.get());
      RunInit(*plan, sp.child.get());
    }
  }
  if (thread_net) {
    CHECK(setns(thread_net.get(), CLONE_NEWNET) == 0)
        << "cannot return to this thread's network namespace: " << strerror(errno);
  }
  if (r.pid < 0) {
    c->exited_ = true;  // nothing to kill; the destructor removes the cgroup
    return base::ErrnoStatus(-r.pid, "clone3 container init");
  }
  c->pid_ = r.pid;
  c->pidfd_.Reset(r.pidfd);
  sp.child.Reset();
  overlay.Reset();  // the child holds its own copy
  c->sock_ = std::move(sp.parent);
  procs.clear();
  pooled_net.Reset();  // the child joined it (or failed); the namespace lives with it
  if (userns) {
    // The child waits for kGo before it uses an id. A privileged writer may keep setgroups
    // allowed (additional_gids); an unprivileged one must deny it first (CVE-2014-8989).
    absl::Status s = kernel::WriteIdMaps(r.pid, kernel::RenderIdMap(spec.uid_mappings),
                                         kernel::RenderIdMap(spec.gid_mappings),
                                         /*deny_setgroups=*/geteuid() != 0);
    if (!s.ok()) return base::Annotate(s, "uid_mappings/gid_mappings: kernel rejected the maps");
    // Raising a hard limit needs CAP_SYS_RESOURCE in the initial user namespace, which the
    // child no longer has: set the limits from here (runc prlimits from the parent too); the
    // child's setrlimit of the same values is then no raise.
    for (const ProcessPlan::Limit& l : plan->process.rlimits) {
      struct rlimit rl = {l.soft, l.hard};
      if (prlimit(r.pid, static_cast<__rlimit_resource>(l.resource), &rl, nullptr) != 0) {
        return base::ErrnoStatus(errno, "process.rlimits: prlimit of the container");
      }
    }
    RETURN_IF_ERROR(c->cgroup_->Delegate(*kernel::MapToHost(spec.uid_mappings, 0),
                                         *kernel::MapToHost(spec.gid_mappings, 0)));
  }
  if (plan->wait_for_go) {
    // Limits are in place before the child runs a single instruction of its own setup.
    if (!cgroup_dir) {
      RETURN_IF_ERROR(base::Annotate(c->cgroup_->AddProcess(r.pid), "place container in cgroup"));
    }
    RETURN_IF_ERROR(SendFrame(c->sock_.get(), Msg::kGo));
  }
  if (spec.process.terminal) {  // sent by the child before it reports ready (or execs)
    auto master = RecvConsole(c->sock_.get(), options_.setup_timeout);
    if (!master.ok()) {
      return base::Annotate(master.status(), absl::StrCat("create container ", spec.id));
    }
    c->console_ = std::move(*master);
  }
  if (start) {
    c->started_ = true;
    absl::Status s = AwaitExec(c->sock_.get(), options_.setup_timeout);
    c->sock_.Reset();
    if (!s.ok()) return base::Annotate(s, absl::StrCat("run container ", spec.id));
    return c;
  }
  auto ready = RecvFrame(c->sock_.get(), options_.setup_timeout, "create");
  if (!ready.ok()) {
    return base::Annotate(ready.status(), absl::StrCat("create container ", spec.id));
  }
  return c;
}

Container::Container(Runtime* runtime, std::string id, const ContainerSpec& spec)
    : runtime_(runtime), id_(std::move(id)), spec_(spec) {}

Container::~Container() {
  if (owned_) (void)Delete();
}

absl::StatusOr<std::unique_ptr<Container>> Runtime::Attach(const ContainerSpec& spec, pid_t pid) {
  RETURN_IF_ERROR(ValidateId(spec.id));
  std::unique_ptr<Container> c(new Container(this, spec.id, spec));
  c->owned_ = false;
  c->started_ = true;
  c->pid_ = pid;
  int pidfd = kernel::PidfdOpen(pid);
  if (pidfd < 0) return base::ErrnoStatus(-pidfd, "attach: pidfd_open ", pid);
  c->pidfd_.Reset(pidfd);
  ASSIGN_OR_RETURN(
      c->cgroup_,
      kernel::Cgroup::Open(options_.cgroup, absl::StrCat(options_.cgroup_parent, "/", spec.id)));
  return c;
}

absl::Status Container::Start() {
  if (started_) return absl::FailedPreconditionError("container already started");
  started_ = true;
  RETURN_IF_ERROR(SendFrame(sock_.get(), Msg::kStart));
  absl::Status s = AwaitExec(sock_.get(), runtime_->options_.setup_timeout);
  sock_.Reset();
  return base::Annotate(s, absl::StrCat("start container ", id_));
}

absl::StatusOr<ExitStatus> Container::Collect(const siginfo_t& info) {
  exit_ = FromSiginfo(info);
  auto oom = cgroup_->OomKills();
  exit_.oom_killed = oom.ok() && *oom > oom_baseline_ && exit_.signal == SIGKILL;
  exited_ = true;
  pidfd_.Reset();
  return exit_;
}

absl::StatusOr<ExitStatus> Container::Wait() {
  if (exited_) return exit_;
  ASSIGN_OR_RETURN(siginfo_t info, WaitPidfd(pidfd_.get()));
  return Collect(info);
}

absl::StatusOr<ExitStatus> Container::WaitFor(absl::Duration timeout) {
  if (exited_) return exit_;
  struct pollfd p = {pidfd_.get(), POLLIN, 0};
  absl::Time deadline = absl::Now() + timeout;
  while (true) {
    int64_t ms = std::max<int64_t>(0, absl::ToInt64Milliseconds(deadline - absl::Now()));
    int rc = poll(&p, 1, static_cast<int>(ms));
    if (rc > 0) return Wait();
    if (rc == 0) return absl::DeadlineExceededError("container still running");
    if (errno != EINTR) return base::ErrnoStatus(errno, "poll pidfd");
  }
}

absl::Status Container::Signal(int sig) {
  if (exited_) return absl::FailedPreconditionError("container has exited");
  int rc = kernel::PidfdSignal(pidfd_.get(), sig);
  return rc < 0 ? base::ErrnoStatus(-rc, "signal container ", id_) : absl::OkStatus();
}

absl::StatusOr<ExitStatus> Container::Stop(int sig, absl::Duration grace) {
  if (exited_) return exit_;
  (void)Signal(sig);
  auto status = WaitFor(grace);
  if (!absl::IsDeadlineExceeded(status.status())) return status;
  RETURN_IF_ERROR(cgroup_->KillAll());
  return Wait();
}

absl::StatusOr<std::unique_ptr<Process>> Container::Exec(const ProcessSpec& process,
                                                         const Stdio& stdio) {
  if (exited_ || !started_) return absl::FailedPreconditionError("container is not running");
  RETURN_IF_ERROR(ValidateProcess(process, "process"));
  if (spec_.user_namespace()) {
    ContainerSpec check = spec_;
    check.process = process;
    RETURN_IF_ERROR(ValidateIdMappings(check));
  }
  std::deque<std::string> strings;
  ProcessPlan plan;
  std::string hostname = spec_.hostname.empty() ? id_.substr(0, 12) : spec_.hostname;
  ProcessSpec with_profile = process;  // an exec'd process inherits a custom seccomp profile
  if (!with_profile.seccomp_profile) with_profile.seccomp_profile = spec_.process.seccomp_profile;
  RETURN_IF_ERROR(RenderProcess(with_profile, hostname, strings, runtime_->seccomp_, &plan));
  ASSIGN_OR_RETURN(base::UniqueFd devnull, OpenDevNull());
  FillStdio(process.terminal ? Stdio{} : stdio, devnull.get(), plan.stdio);
  // setns order: user first, mnt last (runtime.md §1.5); pid applies to the helper's
  // children.
  const char* names[] = {"user", "ipc", "uts", "net", "cgroup", "pid", "mnt"};
  const int types[] = {CLONE_NEWUSER,   CLONE_NEWIPC, CLONE_NEWUTS, CLONE_NEWNET,
                       CLONE_NEWCGROUP, CLONE_NEWPID, CLONE_NEWNS};
  const int first = spec_.user_namespace() ? 0 : 1;
  const int count = 7 - first;
  std::vector<base::UniqueFd> ns;
  int ns_fds[7];
  for (int i = 0; i < count; ++i) {
    std::string path = absl::StrCat("/proc/", pid_, "/ns/", names[first + i]);
    ns.emplace_back(open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!ns.back()) return base::ErrnoStatus(errno, "exec: open ", path);
    ns_fds[i] = ns.back().get();
  }
  ASSIGN_OR_RETURN(SocketPair sp, MakeSocketPair());
  kernel::CloneResult helper = kernel::Clone(0);
  if (helper.pid == 0) {
    close(sp.parent.get());
    RunExecHelper(plan, ns_fds, types + first, count, sp.child.get());
  }
  if (helper.pid < 0) return base::ErrnoStatus(-helper.pid, "clone3 exec helper");
  base::UniqueFd helper_fd(helper.pidfd);
  sp.child.Reset();
  auto pid_frame = RecvFrame(sp.parent.get(), runtime_->options_.setup_timeout, "exec");
  (void)WaitPidfd(helper_fd.get());  // reap the helper; it exits right after reporting
  if (!pid_frame.ok()) return base::Annotate(pid_frame.status(), "exec");
  pid_t pid = static_cast<pid_t>(pid_frame->value);
  int pidfd = kernel::PidfdOpen(pid);
  if (pidfd < 0) return base::ErrnoStatus(-pidfd, "pidfd_open exec process");
  auto proc = std::make_unique<Process>(pid, base::UniqueFd(pidfd));
  absl::Status s = cgroup_->AddProcess(pid);
  if (s.ok()) s = SendFrame(sp.parent.get(), Msg::kGo);
  if (s.ok() && process.terminal) {
    auto master = RecvConsole(sp.parent.get(), runtime_->options_.setup_timeout);
    if (master.ok()) proc->console_ = std::move(*master);
    s = master.status();
  }
  if (s.ok()) s = AwaitExec(sp.parent.get(), runtime_->options_.setup_timeout);
  if (!s.ok()) {
    (void)proc->Signal(SIGKILL);
    (void)proc->Wait();
    return base::Annotate(s, "exec");
  }
  return proc;
}

absl::Status Container::Delete() {
  if (deleted_) return absl::OkStatus();
  if (!exited_ && pidfd_) {
    (void)kernel::PidfdSignal(pidfd_.get(), SIGKILL);
    if (cgroup_) (void)cgroup_->KillAll();
    auto info = WaitPidfd(pidfd_.get());
    if (info.ok()) (void)Collect(*info);
  }
  exited_ = true;
  sock_.Reset();
  absl::Status s = absl::OkStatus();
  if (cgroup_) {
    // PID 1's exit killed its pid namespace, and every process of the container lives in
    // it: the cgroup is normally empty now. Only when it is not (EBUSY), kill what is left
    // and wait for it.
    s = cgroup_->Remove(absl::ZeroDuration());
    if (!s.ok()) {
      (void)cgroup_->KillAll();
      s = cgroup_->Remove();
    }
  }
  deleted_ = true;
  return s;
}

}  // namespace shoal::runtime
