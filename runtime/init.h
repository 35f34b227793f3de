// What the setup child needs, pre-rendered by the parent (runtime.md §1.8 parent step 2), and
// the child entry points. After clone the child only reads this plan and makes raw syscalls:
// no allocation, no locks (the parent may be multithreaded).
#pragma once

#include <linux/filter.h>
#include <sys/types.h>

#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "kernel/caps/caps.h"
#include "kernel/features.h"
#include "kernel/seccomp/seccomp.h"
#include "runtime/spec.h"

namespace shoal::runtime {

struct InitOp {
  enum Kind { kMount, kRemountRo, kMknod, kSymlink, kMkdir } kind = kMount;
  const char* path = nullptr;  // in-root path (no leading '/'); for mknod/symlink the parent dir
  const char* name = nullptr;  // mknod/symlink: entry name in `path`
  const char* source = nullptr;
  const char* fstype = nullptr;
  const char* data = nullptr;
  unsigned long flags = 0;
  bool file_target = false;  // bind of a file: create the mountpoint as a file
  unsigned mode = 0;
  dev_t dev = 0;
};

// The security and process part, shared by create and exec.
struct ProcessPlan {
  std::vector<char*> argv;             // null-terminated
  std::vector<char*> envp;             // null-terminated
  std::vector<const char*> path_dirs;  // PATH entries, when argv[0] has no '/'
  const char* cwd = "/";
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;
  kernel::CapSet caps = 0;
  int last_cap = 0;
  bool no_new_privs = true;
  std::shared_ptr<const kernel::BpfProgram> seccomp;  // null = unconfined
  struct Limit {
    int resource;
    uint64_t soft, hard;
  };
  std::vector<Limit> rlimits;
  int stdio[3] = {-1, -1, -1};
  // A pty from the container's devpts on 0..2 instead of `stdio` (runtime/terminal.h).
  bool terminal = false;
  unsigned short terminal_rows = 0, terminal_cols = 0;
  mutable std::vector<char> scratch;  // exec path buffer, sized by the parent
};

struct InitPlan {
  std::deque<std::string> strings;  // owns every char* below (deque: stable addresses)
  const char* rootfs = nullptr;
  const char* overlay_data = nullptr;  // overlayfs options; null = rootfs is a plain directory
  // A detached overlay mount prepared by the parent (user namespace: the overlay must be
  // created with host credentials to read trusted.overlay.* xattrs); moved onto `rootfs`.
  int overlay_fd = -1;
  // New user namespace: the parent writes the maps and joins netns before clone; the child
  // becomes root inside before it mounts anything.
  bool userns = false;
  // Runtime::Run: exec right after setup instead of reporting kReady and waiting for kStart.
  bool exec_when_ready = false;
  // False when clone placed the child in its cgroup (CLONE_INTO_CGROUP) and there are no maps
  // to write: nothing to wait for before the setup.
  bool wait_for_go = true;
  // cgroup.procs of each hierarchy (no user namespace, no CLONE_INTO_CGROUP): the child
  // writes "0" to each before anything else, so the limits hold for its whole setup without
  // a round trip to the parent.
  std::vector<int> cgroup_procs;
  const char* hostname = nullptr;
  int netns_fd = -1;
  std::vector<InitOp> ops;
  std::vector<const char*> masked;
  std::vector<const char*> readonly;
  bool readonly_rootfs = false;
  ProcessPlan process;
  mutable std::vector<char> scratch;  // path buffer for in-root mkdir

  const char* Str(std::string s) { return strings.emplace_back(std::move(s)).c_str(); }
};

// Renders a validated spec. `cgroup_mounts` are the v1 hierarchy directory names to mount
// inside the container ("memory", "cpu,cpuacct"); empty on v2 (cgroup2 is mounted).
absl::StatusOr<std::unique_ptr<InitPlan>> RenderInit(const ContainerSpec& spec,
                                                     kernel::CgroupMode mode,
                                                     const std::vector<std::string>& cgroup_mounts,
                                                     kernel::SeccompCache& seccomp);

// Renders the process part (also used for exec). Keeps strings in `strings`.
absl::Status RenderProcess(const ProcessSpec& p, const std::string& hostname,
                           std::deque<std::string>& strings, kernel::SeccompCache& seccomp,
                           ProcessPlan* out);

// Child entry after clone: waits for kGo, sets up the container, reports kReady, waits for
// kStart, execs. Never returns.
[[noreturn]] void RunInit(const InitPlan& plan, int sock);

// Exec helper after clone: joins the namespaces in `ns_fds` (mnt last), clones the process
// (CLONE_PARENT), reports its pid and exits. The process waits for kGo, applies `process`
// and execs. Never returns.
[[noreturn]] void RunExecHelper(const ProcessPlan& process, const int* ns_fds, const int* ns_types,
                                int ns_count, int sock);

}  // namespace shoal::runtime
