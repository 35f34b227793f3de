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
