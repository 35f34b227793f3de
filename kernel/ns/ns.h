// Namespaces and process creation with raw syscalls (runtime.md §1.2).
//
// Clone() is fork-like (no new stack): the child returns 0 and must only make raw syscalls if
// the caller is multithreaded. Thread safety: functions act on the calling thread/process.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace shoal::kernel {

// "pid" "net" "uts" "ipc" "mnt" "cgroup" "user" -> CLONE_NEW*; 0 if unknown.
uint64_t NamespaceFlag(absl::string_view name);

struct CloneResult {
  pid_t pid = -1;  // 0 in the child
  int pidfd = -1;  // parent only (CLONE_PIDFD), O_CLOEXEC
};

// clone3(flags | CLONE_PIDFD, exit_signal=SIGCHLD). With `cgroup_fd` >= 0 (a cgroup v2
// directory) the child starts in that cgroup (CLONE_INTO_CGROUP, Linux >= 5.7): no
// cgroup.procs write, no migration. Returns -errno in pid on failure.
CloneResult Clone(uint64_t flags, int cgroup_fd = -1);

// vfork-style clone3 (flags | CLONE_VM | CLONE_VFORK | CLONE_PIDFD, exit_signal=SIGCHLD,
// optionally CLONE_INTO_CGROUP): the child runs `fn(arg)` on a private stack in the caller's
// address space — no page-table copy, no copy-on-write faults in either process afterwards —
// and the calling thread is suspended until the child execs or exits (posix_spawn's model).
// Returns in the caller only. If `fn` returns, the child _exits with its value.
//
// What the child may do: raw syscalls on its own behalf, read the caller's memory (the
// caller's thread is stopped; other threads are not), write only its own stack and buffers
// the caller set aside for it; errno lands in the suspended thread's TLS, which is harmless.
// Signals: all are blocked in the caller around the clone; the child resets every caught
// signal to SIG_DFL (a handler would run the caller's code on shared memory) and then
// restores the caller's mask before `fn`. The mm's dumpable flag, which the child may clear
// (PR_SET_DUMPABLE, or implicitly by changing credentials), is restored afterwards.
// No time limit: a child stuck in the kernel keeps the caller waiting. pid = -ENOSYS on
// architectures without the trampoline (callers fall back to Clone()).
CloneResult CloneVfork(uint64_t flags, int cgroup_fd, int (*fn)(void*), void* arg);

// clone3 with CLONE_PARENT (the new process is a sibling of the caller); used by exec's helper
// after it joined a pid namespace. Returns pid or -errno.
pid_t CloneParent();

// pidfd_open(2); -errno on failure.
int PidfdOpen(pid_t pid);
// pidfd_send_signal(2); 0 or -errno.
int PidfdSignal(int pidfd, int sig);

// One line of /proc/<pid>/{uid,gid}_map: ids [container_id, container_id + size) inside the
// user namespace are [host_id, host_id + size) outside (user_namespaces(7)).
struct IdMapping {
  uint32_t container_id = 0;
  uint32_t host_id = 0;
  uint32_t size = 0;
  bool operator==(const IdMapping&) const = default;
};

// The kernel accepts at most 340 lines per map (Linux >= 4.15).
inline constexpr size_t kMaxIdMapLines = 340;

// "container_id host_id size\n" per mapping, the text written to a map file in one write().
std::string RenderIdMap(const std::vector<IdMapping>& maps);
// Host id of `container_id` under `maps`, or nullopt when unmapped.
std::optional<uint32_t> MapToHost(const std::vector<IdMapping>& maps, uint32_t container_id);

// Writes the maps of the user namespace of `pid` (a child blocked before using its ids):
// "deny" to setgroups first when `deny_setgroups` (required for unprivileged writers,
// CVE-2014-8989), then gid_map and uid_map, each in a single write. The caller needs
// CAP_SETUID/CAP_SETGID over the parent user namespace. Errors name the file.
absl::Status WriteIdMaps(pid_t pid, const std::string& uid_map, const std::string& gid_map,
                         bool deny_setgroups);

// Inode of /proc/<pid>/ns/<name> ("net:[4026531840]" -> the number), for tests and re-adoption.
absl::StatusOr<uint64_t> NamespaceInode(pid_t pid, absl::string_view name);

}  // namespace shoal::kernel
