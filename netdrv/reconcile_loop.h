// Runs Driver::Reconcile() level-triggered in the background: every `interval`, and promptly
// after a link appears or disappears in the node namespace (kernel::LinkWatcher), so a link
// deleted by hand is re-created within one event round-trip and a deleted FDB/ARP row (which
// raises no link event) within one interval.
//
// Drivers are not thread-safe: every call into the driver, by the loop or by anyone else, must
// hold `driver_mu`. Stop() (or the destructor) joins the thread.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <thread>

#include "absl/status/status.h"
#include "netdrv/driver.h"

namespace shoal::netdrv {

class ReconcileLoop {
 public:
  struct Options {
    std::chrono::milliseconds interval{10000};
    int node_netns_fd = -1;  // where to watch link events; -2 = do not watch
    std::function<void(const absl::Status&)> on_error;  // default: log a warning
  };
  ReconcileLoop(Driver& driver, std::mutex& driver_mu, Options options);
  ~ReconcileLoop();
  ReconcileLoop(const ReconcileLoop&) = delete;
  ReconcileLoop& operator=(const ReconcileLoop&) = delete;

  void Start();
  void Stop();
  // Passes completed (successful or not) since Start.
  int passes() const { return passes_.load(); }

 private:
  void Run();

  Driver& driver_;
  std::mutex& mu_;
  Options options_;
  std::atomic<bool> stop_{false};
  std::atomic<int> passes_{0};
  std::thread thread_;
};

}  // namespace shoal::netdrv
