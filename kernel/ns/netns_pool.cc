#include "kernel/ns/netns_pool.h"

#include <fcntl.h>
#include <sched.h>

#include <cerrno>

#include "base/status.h"

namespace shoal::kernel {
namespace {

// A new network namespace made from `home` on the calling thread, which returns to `home`.
// Empty fd on failure; `stuck` is set when the thread could not return to `home`.
base::UniqueFd MakeNetns(int home, bool* stuck) {
  if (unshare(CLONE_NEWNET) != 0) return {};
  base::UniqueFd fd(open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
  if (setns(home, CLONE_NEWNET) != 0) *stuck = true;
  return fd;
}

}  // namespace

absl::StatusOr<std::unique_ptr<NetnsPool>> NetnsPool::Create(size_t size) {
  if (size == 0) return absl::InvalidArgumentError("netns pool size must be >= 1");
  base::UniqueFd home(open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
  if (!home) return base::ErrnoStatus(errno, "open /proc/thread-self/ns/net");
  std::unique_ptr<NetnsPool> pool(new NetnsPool(size, std::move(home)));
  pool->thread_ = std::thread([p = pool.get()] { p->Loop(); });
  return pool;
}

NetnsPool::NetnsPool(size_t size, base::UniqueFd home) : size_(size), home_(std::move(home)) {}

NetnsPool::~NetnsPool() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  // ready_ closes the namespaces nobody took; with no other reference the kernel frees them.
}

void NetnsPool::Loop() {
  // Start from the constructing thread's namespace even if it moved since (setns is per
  // thread; a new thread inherits the creator's at pthread_create time).
  bool stuck = setns(home_.get(), CLONE_NEWNET) != 0;
  std::unique_lock<std::mutex> l(mu_);
  while (true) {
    broken_ = stuck;  // in an unknown network namespace: produce nothing more
    cv_.notify_all();
    cv_.wait(l, [&] { return stop_ || (!failed_ && !broken_ && ready_.size() < size_); });
    if (stop_) return;
    l.unlock();
    base::UniqueFd fd = MakeNetns(home_.get(), &stuck);
    l.lock();
    if (stuck) fd.Reset();  // made from an unknown parent: never hand it out
    if (fd) {
      ready_.push_back(std::move(fd));
    } else {
      failed_ = true;  // e.g. user.max_net_namespaces reached; the next Take() retries
    }
  }
}

base::UniqueFd NetnsPool::Take() {
  base::UniqueFd fd;
  {
    std::lock_guard<std::mutex> l(mu_);
    if (!ready_.empty()) {
      fd = std::move(ready_.front());
      ready_.pop_front();
    }
    failed_ = false;
  }
  cv_.notify_all();
  return fd;
}

size_t NetnsPool::ready() const {
  std::lock_guard<std::mutex> l(mu_);
  return ready_.size();
}

bool NetnsPool::WaitReady(size_t n) {
  std::unique_lock<std::mutex> l(mu_);
  if (n > size_) n = size_;
  cv_.wait(l, [&] { return stop_ || failed_ || broken_ || ready_.size() >= n; });
  return ready_.size() >= n;
}

}  // namespace shoal::kernel
