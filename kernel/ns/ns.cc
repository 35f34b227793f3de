#include "kernel/ns/ns.h"

#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "base/status.h"

namespace shoal::kernel {

uint64_t NamespaceFlag(absl::string_view name) {
  if (name == "pid") return CLONE_NEWPID;
  if (name == "net" || name == "network") return CLONE_NEWNET;
  if (name == "uts") return CLONE_NEWUTS;
  if (name == "ipc") return CLONE_NEWIPC;
  if (name == "mnt" || name == "mount") return CLONE_NEWNS;
  if (name == "cgroup") return CLONE_NEWCGROUP;
  if (name == "user") return CLONE_NEWUSER;
  return 0;
}

CloneResult Clone(uint64_t flags, int cgroup_fd) {
  CloneResult result;
  struct clone_args args = {};
  args.flags = flags | CLONE_PIDFD;
  if (cgroup_fd >= 0) {
    args.flags |= CLONE_INTO_CGROUP;
    args.cgroup = static_cast<uint64_t>(cgroup_fd);
  }
  args.pidfd = reinterpret_cast<uint64_t>(&result.pidfd);
  args.exit_signal = SIGCHLD;
  long rc = syscall(SYS_clone3, &args, sizeof(args));
  result.pid = rc < 0 ? -errno : static_cast<pid_t>(rc);
  if (rc == 0) result.pidfd = -1;
  return result;
}

namespace {

struct VforkStart {
  int (*fn)(void*);
  void* arg;
  uint64_t mask;  // the caller's signal mask, restored in the child
};

// Kernel layout of struct sigaction for rt_sigaction (x86_64/aarch64: 8-byte sigset).
struct KernelSigaction {
  void* handler;
  unsigned long flags;
  void* restorer;
  uint64_t mask;
};

int VforkChild(void* p) {
  const VforkStart* start = static_cast<const VforkStart*>(p);
  for (int sig = 1; sig <= 64; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    KernelSigaction old;
    if (syscall(SYS_rt_sigaction, sig, nullptr, &old, sizeof(uint64_t)) != 0) continue;
    if (old.handler == reinterpret_cast<void*>(SIG_DFL) ||
        old.handler == reinterpret_cast<void*>(SIG_IGN)) {
      continue;
    }
    KernelSigaction dfl = {reinterpret_cast<void*>(SIG_DFL), 0, nullptr, 0};
    syscall(SYS_rt_sigaction, sig, &dfl, nullptr, sizeof(uint64_t));
  }
  syscall(SYS_rt_sigprocmask, SIG_SETMASK, &start->mask, nullptr, sizeof(uint64_t));
  return start->fn(start->arg);
}

#if defined(__x86_64__)
// clone3 whose child switches to the stack in `args` and calls fn(arg), then exits with its
// value; never returns in the child. rax/rcx/r11 are the only registers syscall clobbers, so
// fn and arg survive in the child's copy of r12/r13.
long Clone3Call(struct clone_args* args, int (*fn)(void*), void* arg) {
  long ret;
  register int (*r12)(void*) __asm__("r12") = fn;
  register void* r13 __asm__("r13") = arg;
  __asm__ volatile(
      "syscall\n\t"
      "testq %%rax, %%rax\n\t"
      "jnz 1f\n\t"
      "xorl %%ebp, %%ebp\n\t"
      "movq %%r13, %%rdi\n\t"
      "callq *%%r12\n\t"
      "movl %%eax, %%edi\n\t"
      "movl $60, %%eax\n\t"  // SYS_exit
      "syscall\n\t"
      "hlt\n\t"
      "1:\n\t"
      : "=a"(ret)
      : "0"(static_cast<long>(SYS_clone3)), "D"(args), "S"(sizeof(*args)), "r"(r12), "r"(r13)
      : "rcx", "r11", "memory", "cc");
  return ret;
}
#endif

}  // namespace

CloneResult CloneVfork(uint64_t flags, int cgroup_fd, int (*fn)(void*), void* arg) {
  CloneResult result;
#if defined(__x86_64__)
  // The child's stack: setup code with a few path buffers; a guard page below.
  constexpr size_t kStack = 256 * 1024, kGuard = 4096;
  void* map = mmap(nullptr, kStack + kGuard, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK | MAP_NORESERVE, -1, 0);
  if (map == MAP_FAILED) {
    result.pid = -errno;
    return result;
  }
  mprotect(map, kGuard, PROT_NONE);
  VforkStart start = {fn, arg, 0};
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  memcpy(&start.mask, &old, sizeof(start.mask));
  const int dumpable = prctl(PR_GET_DUMPABLE, 0, 0, 0, 0);
  struct clone_args args = {};
  args.flags = flags | CLONE_VM | CLONE_VFORK | CLONE_PIDFD;
  if (cgroup_fd >= 0) {
    args.flags |= CLONE_INTO_CGROUP;
    args.cgroup = static_cast<uint64_t>(cgroup_fd);
  }
  args.pidfd = reinterpret_cast<uint64_t>(&result.pidfd);
  args.exit_signal = SIGCHLD;
  args.stack = reinterpret_cast<uint64_t>(map) + kGuard;
  args.stack_size = kStack;
  long rc = Clone3Call(&args, VforkChild, &start);
  // The child has exec'd (its own mm now) or exited: the stack is ours again.
  if (dumpable >= 0 && prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) != dumpable) {
    prctl(PR_SET_DUMPABLE, dumpable, 0, 0, 0);
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  munmap(map, kStack + kGuard);
  result.pid = rc < 0 ? static_cast<pid_t>(rc) : static_cast<pid_t>(rc);
  if (rc < 0) result.pidfd = -1;
#else
  (void)flags, (void)cgroup_fd, (void)fn, (void)arg;
  result.pid = -ENOSYS;
#endif
  return result;
}

pid_t CloneParent() {
  struct clone_args args = {};
  args.flags = CLONE_PARENT;
  long rc = syscall(SYS_clone3, &args, sizeof(args));
  return rc < 0 ? -errno : static_cast<pid_t>(rc);
}

int PidfdOpen(pid_t pid) {
  long rc = syscall(SYS_pidfd_open, pid, 0);
  return rc < 0 ? -errno : static_cast<int>(rc);
}

int PidfdSignal(int pidfd, int sig) {
  return syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0) < 0 ? -errno : 0;
}

std::string RenderIdMap(const std::vector<IdMapping>& maps) {
  std::string out;
  for (const IdMapping& m : maps) {
    absl::StrAppend(&out, m.container_id, " ", m.host_id, " ", m.size, "\n");
  }
  return out;
}

std::optional<uint32_t> MapToHost(const std::vector<IdMapping>& maps, uint32_t container_id) {
  for (const IdMapping& m : maps) {
    if (container_id >= m.container_id && container_id - m.container_id < m.size) {
      return m.host_id + (container_id - m.container_id);
    }
  }
  return std::nullopt;
}

namespace {

absl::Status WriteProcFile(pid_t pid, const char* name, const std::string& text) {
  std::string path = absl::StrCat("/proc/", pid, "/", name);
  int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return base::ErrnoStatus(errno, "open ", path);
  ssize_t n = write(fd, text.data(), text.size());
  int err = errno;
  close(fd);
  if (n != static_cast<ssize_t>(text.size())) {
    return base::ErrnoStatus(n < 0 ? err : EIO, "write ", path);
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status WriteIdMaps(pid_t pid, const std::string& uid_map, const std::string& gid_map,
                         bool deny_setgroups) {
  if (deny_setgroups) RETURN_IF_ERROR(WriteProcFile(pid, "setgroups", "deny"));
  RETURN_IF_ERROR(WriteProcFile(pid, "gid_map", gid_map));
  return WriteProcFile(pid, "uid_map", uid_map);
}

absl::StatusOr<uint64_t> NamespaceInode(pid_t pid, absl::string_view name) {
  std::string path = absl::StrCat("/proc/", pid, "/ns/", name);
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return base::ErrnoStatus(errno, "stat ", path);
  return static_cast<uint64_t>(st.st_ino);
}

}  // namespace shoal::kernel
