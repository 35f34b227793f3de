// One container's cgroup on v1, hybrid (v1 controllers are used) or v2 (runtime.md §2).
//
// The cgroup root is injectable (`CgroupConfig.root`), so tests can point the v2 path at any
// directory. Not thread-safe; one owner per cgroup. Every method returns a Status naming the
// file it failed on.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "base/unique_fd.h"
#include "kernel/cgroup/plan.h"
#include "kernel/features.h"

namespace shoal::kernel {

struct CgroupConfig {
  std::string root = "/sys/fs/cgroup";
  CgroupMode mode = CgroupMode::kV2;
  // v2: attach the device allow-list program (v1 always writes devices.allow/deny). Off only
  // for tests whose root is a plain directory standing in for cgroupfs.
  bool device_filter = true;
};

struct CgroupStats {
  uint64_t memory_usage = 0;      // bytes
  uint64_t memory_max_usage = 0;  // bytes (v1 max_usage_in_bytes, v2 memory.peak if present)
  uint64_t memory_limit = 0;      // bytes, 0 = unlimited
  uint64_t cpu_usage_ns = 0;
  uint64_t cpu_nr_periods = 0;
  uint64_t cpu_nr_throttled = 0;
  uint64_t cpu_throttled_ns = 0;
  uint64_t pids_current = 0;
  uint64_t oom_kills = 0;
};

class Cgroup {
 public:
  // Creates `path` (relative, e.g. "shoal/<id>", no "..") in every hierarchy and writes
  // `resources` plus Docker's device allow-list (v1 devices.* files, v2 BPF program). ALREADY_EXISTS if the leaf exists. On failure
  // nothing created is left behind.
  static absl::StatusOr<std::unique_ptr<Cgroup>> Create(const CgroupConfig& config,
                                                        const std::string& path,
                                                        const CgroupResources& resources);
  // v1 only: the cgroup `path` made by renaming the existing, empty, already prepared
  // (cpuset, device rules) "<dirname(path)>/<pooled>" in every hierarchy (CgroupPool), then
  // writing `resources`. ALREADY_EXISTS if the leaf exists. On failure both names are removed.
  static absl::StatusOr<std::unique_ptr<Cgroup>> Adopt(const CgroupConfig& config,
                                                       const std::string& path,
                                                       const std::string& pooled,
                                                       const CgroupResources& resources);
  // Opens an existing cgroup (re-adoption). NOT_FOUND if absent.
  static absl::StatusOr<std::unique_ptr<Cgroup>> Open(const CgroupConfig& config,
                                                      const std::string& path);

  // v2: an O_PATH fd of the cgroup directory, for clone3 CLONE_INTO_CGROUP.
  // FAILED_PRECONDITION on v1.
  absl::StatusOr<base::UniqueFd> OpenDir() const;
  // cgroup.procs of every hierarchy, opened O_WRONLY|O_CLOEXEC: a process joins the cgroup
  // by writing "0" to each (the setup child places itself, with no parent round trip).
  absl::StatusOr<std::vector<base::UniqueFd>> OpenProcs() const;
  // Moves `pid` into the cgroup in every hierarchy.
  absl::Status AddProcess(pid_t pid);
  // v2: makes `uid`:`gid` (a user namespace's root) own the cgroup directory and its
  // cgroup.procs, cgroup.threads and cgroup.subtree_control, so the container can manage its
  // own sub-cgroups (crun chown_cgroups; cgroups(7) delegation). No-op on v1.
  absl::Status Delegate(uid_t uid, gid_t gid);
  absl::StatusOr<CgroupStats> Stats() const;
  absl::StatusOr<uint64_t> OomKills() const;
  // Pids in the cgroup (from the memory hierarchy on v1).
  absl::StatusOr<std::vector<pid_t>> Pids() const;
  // SIGKILLs every process, forks in flight included: cgroup.kill on v2, else freeze, kill
  // each, thaw (thaw also on error).
  absl::Status KillAll();
  // Waits (until `timeout`) for the cgroup to empty, then removes every directory.
  absl::Status Remove(absl::Duration timeout = absl::Seconds(5));

  // Directories this cgroup lives in (one per v1 hierarchy, one on v2).
  const std::vector<std::string>& dirs() const { return dirs_; }
  const std::string& path() const { return path_; }
  // Directory of a v1 controller ("memory") or the v2 directory.
  std::string Dir(const std::string& controller) const;

 private:
  Cgroup(CgroupConfig config, std::string path, std::vector<std::string> controllers);
  absl::StatusOr<std::string> Read(const std::string& controller, const std::string& file) const;

  CgroupConfig config_;
  std::string path_;
  std::vector<std::string> controllers_;  // v1 hierarchies used (deduplicated); {""} on v2
  std::vector<std::string> dirs_;
};

// v1: the distinct hierarchies under `root` ("cpu" stands for a "cpu,cpuacct" mount).
std::vector<std::string> V1Hierarchies(const std::string& root);

// Rejects absolute paths, "..", empty components.
absl::Status ValidateCgroupPath(const std::string& path);

}  // namespace shoal::kernel
