#include "kernel/ns/ns.h"

#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

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

CloneResult Clone(uint64_t flags) {
  CloneResult result;
  struct clone_args args = {};
  args.flags = flags | CLONE_PIDFD;
  args.pidfd = reinterpret_cast<uint64_t>(&result.pidfd);
  args.exit_signal = SIGCHLD;
  long rc = syscall(SYS_clone3, &args, sizeof(args));
  result.pid = rc < 0 ? -errno : static_cast<pid_t>(rc);
  if (rc == 0) result.pidfd = -1;
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

absl::StatusOr<uint64_t> NamespaceInode(pid_t pid, absl::string_view name) {
  std::string path = absl::StrCat("/proc/", pid, "/ns/", name);
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return base::ErrnoStatus(errno, "stat ", path);
  return static_cast<uint64_t>(st.st_ino);
}

}  // namespace shoal::kernel
