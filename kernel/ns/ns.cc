#include "kernel/ns/ns.h"

#include <fcntl.h>
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
