#include "runtime/oci/sysctl.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "base/status.h"

namespace shoal::runtime {
namespace {

// CLONE_NEWNET or CLONE_NEWIPC for a namespaced key, 0 otherwise (runc validateSysctl).
int NamespaceOf(const std::string& key) {
  if (absl::StartsWith(key, "net.")) return CLONE_NEWNET;
  if (absl::StartsWith(key, "fs.mqueue.")) return CLONE_NEWIPC;
  for (const char* k :
       {"kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall",
        "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced"}) {
    if (key == k) return CLONE_NEWIPC;
  }
  return 0;
}

std::string ProcPath(const std::string& key) {
  return absl::StrCat("/proc/sys/", absl::StrReplaceAll(key, {{".", "/"}}));
}

}  // namespace

absl::Status ValidateSysctls(const std::map<std::string, std::string>& sysctls) {
  for (const auto& [key, value] : sysctls) {
    std::string field = absl::StrCat("linux.sysctl[\"", key, "\"]");
    for (absl::string_view part : absl::StrSplit(key, '.')) {
      if (part.empty() || part == ".." || absl::StrContains(part, "/")) {
        return absl::InvalidArgumentError(absl::StrCat(field, ": malformed key"));
      }
    }
    if (NamespaceOf(key) == 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          field, ": not namespaced (only net.*, fs.mqueue.* and the IPC kernel.* keys)"));
    }
  }
  return absl::OkStatus();
}

absl::Status ApplySysctls(pid_t pid, const std::map<std::string, std::string>& sysctls) {
  RETURN_IF_ERROR(ValidateSysctls(sysctls));
  for (const auto& [key, value] : sysctls) {
    int type = NamespaceOf(key);
    std::string ns = absl::StrCat("/proc/", pid, "/ns/", type == CLONE_NEWNET ? "net" : "ipc");
    int ns_fd = open(ns.c_str(), O_RDONLY | O_CLOEXEC);
    if (ns_fd < 0) return base::ErrnoStatus(errno, "open ", ns);
    std::string path = ProcPath(key);
    int err[2];
    if (pipe2(err, O_CLOEXEC) != 0) {
      close(ns_fd);
      return base::ErrnoStatus(errno, "pipe");
    }
    pid_t child = fork();
    if (child == 0) {
      close(err[0]);
      int e = 0;
      if (setns(ns_fd, type) != 0) {
        e = errno;
      } else {
        int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
        if (fd < 0 || write(fd, value.data(), value.size()) != static_cast<ssize_t>(value.size())) {
          e = errno;
        }
      }
      (void)!write(err[1], &e, sizeof(e));
      _exit(e == 0 ? 0 : 1);
    }
    close(ns_fd);
    close(err[1]);
    if (child < 0) {
      close(err[0]);
      return base::ErrnoStatus(errno, "fork");
    }
    int e = EIO;
    (void)!read(err[0], &e, sizeof(e));
    close(err[0]);
    int status;
    while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
    }
    if (e != 0) {
      return base::ErrnoStatus(e, "linux.sysctl[\"", key, "\"]: write ", path);
    }
  }
  return absl::OkStatus();
}

}  // namespace shoal::runtime
