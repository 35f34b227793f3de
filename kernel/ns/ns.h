// Namespaces and process creation with raw syscalls (runtime.md §1.2).
//
// Clone() is fork-like (no new stack): the child returns 0 and must only make raw syscalls if
// the caller is multithreaded. Thread safety: functions act on the calling thread/process.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace shoal::kernel {

// "pid" "net" "uts" "ipc" "mnt" "cgroup" "user" -> CLONE_NEW*; 0 if unknown.
uint64_t NamespaceFlag(absl::string_view name);

struct CloneResult {
  pid_t pid = -1;    // 0 in the child
  int pidfd = -1;    // parent only (CLONE_PIDFD), O_CLOEXEC
};

// clone3(flags | CLONE_PIDFD, exit_signal=SIGCHLD). Returns -errno in pid on failure.
CloneResult Clone(uint64_t flags);

// clone3 with CLONE_PARENT (the new process is a sibling of the caller); used by exec's helper
// after it joined a pid namespace. Returns pid or -errno.
pid_t CloneParent();

// pidfd_open(2); -errno on failure.
int PidfdOpen(pid_t pid);
// pidfd_send_signal(2); 0 or -errno.
int PidfdSignal(int pidfd, int sig);

// Inode of /proc/<pid>/ns/<name> ("net:[4026531840]" -> the number), for tests and re-adoption.
absl::StatusOr<uint64_t> NamespaceInode(pid_t pid, absl::string_view name);

}  // namespace shoal::kernel
