// Pre-created cgroup v1 directories (v1 and hybrid hosts), so creating a container does not
// pay for mkdir in every hierarchy (a v1 memory cgroup's mkdir alone is a few hundred µs: its
// per-CPU state), the cpuset copy and Docker's device rules on the request path.
//
// A background thread keeps `size` cgroups ready, named "<parent>/.pool-<pid>-<n>" in every
// hierarchy, each with the parent's cpuset.cpus/mems and Docker's default device allow-list
// (the same for every container). Take() renames one to "<parent>/<leaf>" in each hierarchy
// (cgroup v1 allows a rename within the same parent; cgroup2 does not, so there is no pool on
// v2) and writes the container's resources, exactly as Cgroup::Create would have. Each
// pooled cgroup is handed out once; never-used ones are removed by the destructor, and ones
// left by a process that died are removed by the next pool created under the same parent.
// Thread-safe.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "kernel/cgroup/cgroup.h"

namespace shoal::kernel {

class CgroupPool {
 public:
  // FAILED_PRECONDITION on cgroup v2. `parent` is relative to the root ("shoal").
  static absl::StatusOr<std::unique_ptr<CgroupPool>> Create(const CgroupConfig& config,
                                                            const std::string& parent,
                                                            size_t size);
  // Stops the thread and removes every cgroup not taken.
  ~CgroupPool();
  CgroupPool(const CgroupPool&) = delete;
  CgroupPool& operator=(const CgroupPool&) = delete;

  // A ready cgroup renamed to `<parent>/<leaf>` with `resources` written; nullptr when none is
  // ready (the caller uses Cgroup::Create). ALREADY_EXISTS if the leaf exists; any error
  // leaves nothing (the pooled cgroup is removed).
  absl::StatusOr<std::unique_ptr<Cgroup>> Take(const std::string& leaf,
                                              const CgroupResources& resources);
  size_t ready() const;  // tests
  bool WaitReady(size_t n);  // until n are ready or the thread failed; whether n are ready
  // Directories the pool's cgroups live under (one per hierarchy), for tests.
  std::vector<std::string> ParentDirs() const;

 private:
  CgroupPool(CgroupConfig config, std::string parent, std::vector<std::string> controllers,
             size_t size);
  void Loop();
  absl::Status Prepare(const std::string& name);  // mkdir + cpuset + devices in every hierarchy
  void Remove(const std::string& name);           // rmdir in every hierarchy
  void SweepStale();                              // pools of dead processes

  const CgroupConfig config_;
  const std::string parent_;
  const std::vector<std::string> controllers_;  // distinct v1 hierarchies
  const size_t size_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> ready_;  // pooled leaf names
  uint64_t next_ = 0;
  bool stop_ = false;
  bool failed_ = false;
  std::thread thread_;
};

}  // namespace shoal::kernel
