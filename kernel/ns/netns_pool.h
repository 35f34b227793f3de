// A small pool of fresh network namespaces created ahead of time by a background thread, so
// that creating a container does not pay for copy_net_ns (a new netns registers lo and its
// sysctl tables: ~10% of a container's creation CPU on Linux 6.18, runtime.md §7).
//
// Each namespace is made by unshare(CLONE_NEWNET) on the pool's thread, from the network
// namespace of the thread that constructed the pool (the same parent a clone(CLONE_NEWNET) of
// that thread would have, so inherited sysctl defaults are the same), and is held only by an
// fd: nothing is bind-mounted, nothing appears in /run/netns, and a namespace nobody took is
// freed by the kernel when the pool closes its fd (destructor, or process death). Take() hands
// each namespace out exactly once. Thread-safe.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>

#include "absl/status/statusor.h"
#include "base/unique_fd.h"

namespace shoal::kernel {

class NetnsPool {
 public:
  // Starts the thread that keeps `size` (>= 1) namespaces ready. Fails if the calling thread's
  // network namespace cannot be opened.
  static absl::StatusOr<std::unique_ptr<NetnsPool>> Create(size_t size);
  // Stops the thread and closes every namespace not taken.
  ~NetnsPool();
  NetnsPool(const NetnsPool&) = delete;
  NetnsPool& operator=(const NetnsPool&) = delete;

  // A fresh network namespace (an O_RDONLY|O_CLOEXEC nsfs fd for setns), never handed out
  // before; an empty fd when none is ready (the caller makes its own, e.g. with
  // clone(CLONE_NEWNET)). Wakes the thread to refill.
  base::UniqueFd Take();
  // Namespaces ready now (tests).
  size_t ready() const;
  // Waits until `n` namespaces are ready or the thread stopped producing (error); tests and
  // benchmarks use it to start from a full pool. Returns whether `n` are ready.
  bool WaitReady(size_t n);

 private:
  NetnsPool(size_t size, base::UniqueFd home);
  void Loop();

  const size_t size_;
  const base::UniqueFd home_;  // the netns new namespaces are created from
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<base::UniqueFd> ready_;
  bool stop_ = false;
  bool failed_ = false;  // unshare failed (e.g. max_net_namespaces): wait for the next Take
  bool broken_ = false;  // the thread could not return to home_: produce nothing more
  std::thread thread_;
};

}  // namespace shoal::kernel
