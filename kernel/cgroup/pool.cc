#include "kernel/cgroup/pool.h"

#include <dirent.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/status.h"

namespace shoal::kernel {
namespace {

constexpr char kPrefix[] = ".pool-";

}  // namespace

absl::StatusOr<std::unique_ptr<CgroupPool>> CgroupPool::Create(const CgroupConfig& config,
                                                               const std::string& parent,
                                                               size_t size) {
  if (config.mode == CgroupMode::kV2) {
    return absl::FailedPreconditionError("cgroup pool: cgroup2 cannot rename a cgroup");
  }
  if (size == 0) return absl::InvalidArgumentError("cgroup pool size must be >= 1");
  RETURN_IF_ERROR(ValidateCgroupPath(parent));
  std::vector<std::string> controllers = V1Hierarchies(config.root);
  if (controllers.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("no cgroup v1 controllers under ", config.root));
  }
  std::unique_ptr<CgroupPool> pool(new CgroupPool(config, parent, std::move(controllers), size));
  pool->SweepStale();
  pool->thread_ = std::thread([p = pool.get()] { p->Loop(); });
  return pool;
}

CgroupPool::CgroupPool(CgroupConfig config, std::string parent,
                       std::vector<std::string> controllers, size_t size)
    : config_(std::move(config)),
      parent_(std::move(parent)),
      controllers_(std::move(controllers)),
      size_(size) {}

CgroupPool::~CgroupPool() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  for (const std::string& name : ready_) Remove(name);
}

std::vector<std::string> CgroupPool::ParentDirs() const {
  std::vector<std::string> dirs;
  for (const std::string& c : controllers_) {
    dirs.push_back(absl::StrCat(config_.root, "/", c, "/", parent_));
  }
  return dirs;
}

absl::Status CgroupPool::Prepare(const std::string& name) {
  // Create writes the cpuset copy and the device rules of every v1 container; no resources.
  auto cg = Cgroup::Create(config_, absl::StrCat(parent_, "/", name), CgroupResources{});
  return cg.status();
}

void CgroupPool::Remove(const std::string& name) {
  for (const std::string& dir : ParentDirs()) rmdir(absl::StrCat(dir, "/", name).c_str());
}

void CgroupPool::SweepStale() {
  // ".pool-<pid>-<n>" of a process that no longer exists (it crashed before its destructor).
  // Such a cgroup never held a process; rmdir fails harmlessly if it somehow does.
  for (const std::string& dir : ParentDirs()) {
    DIR* d = opendir(dir.c_str());
    if (!d) continue;
    while (dirent* e = readdir(d)) {
      absl::string_view name = e->d_name;
      if (!absl::ConsumePrefix(&name, kPrefix)) continue;
      std::vector<absl::string_view> parts = absl::StrSplit(name, '-');
      pid_t pid = 0;
      if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &pid) || pid <= 0) continue;
      if (kill(pid, 0) == 0 || errno != ESRCH) continue;
      rmdir(absl::StrCat(dir, "/", e->d_name).c_str());
    }
    closedir(d);
  }
}

void CgroupPool::Loop() {
  std::unique_lock<std::mutex> l(mu_);
  while (true) {
    cv_.wait(l, [&] { return stop_ || (!failed_ && ready_.size() < size_); });
    if (stop_) return;
    std::string name = absl::StrCat(kPrefix, getpid(), "-", next_++);
    l.unlock();
    absl::Status s = Prepare(name);
    l.lock();
    if (s.ok()) {
      ready_.push_back(name);
    } else {
      failed_ = true;  // the next Take() retries
    }
    cv_.notify_all();
  }
}

absl::StatusOr<std::unique_ptr<Cgroup>> CgroupPool::Take(const std::string& leaf,
                                                        const CgroupResources& resources) {
  std::string name;
  {
    std::lock_guard<std::mutex> l(mu_);
    failed_ = false;
    if (!ready_.empty()) {
      name = std::move(ready_.front());
      ready_.pop_front();
    }
  }
  cv_.notify_all();
  if (name.empty()) return nullptr;
  return Cgroup::Adopt(config_, absl::StrCat(parent_, "/", leaf), name, resources);
}

size_t CgroupPool::ready() const {
  std::lock_guard<std::mutex> l(mu_);
  return ready_.size();
}

bool CgroupPool::WaitReady(size_t n) {
  std::unique_lock<std::mutex> l(mu_);
  if (n > size_) n = size_;
  cv_.wait(l, [&] { return stop_ || failed_ || ready_.size() >= n; });
  return ready_.size() >= n;
}

}  // namespace shoal::kernel
