#include "netdrv/reconcile_loop.h"

#include "base/log.h"
#include "kernel/netlink/link_watcher.h"

namespace shoal::netdrv {

using Clock = std::chrono::steady_clock;

ReconcileLoop::ReconcileLoop(Driver& driver, std::mutex& driver_mu, Options options)
    : driver_(driver), mu_(driver_mu), options_(std::move(options)) {
  if (!options_.on_error) {
    options_.on_error = [](const absl::Status& st) {
      base::Logger("netdrv")->warn("reconcile: {}", std::string(st.message()));
    };
  }
}

ReconcileLoop::~ReconcileLoop() { Stop(); }

void ReconcileLoop::Start() {
  if (thread_.joinable()) return;
  stop_ = false;
  thread_ = std::thread([this] { Run(); });
}

void ReconcileLoop::Stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

void ReconcileLoop::Run() {
  std::unique_ptr<kernel::LinkWatcher> watcher;
  if (options_.node_netns_fd != -2) {
    auto w = kernel::LinkWatcher::Open(options_.node_netns_fd);
    if (w.ok()) {
      watcher = std::move(*w);
    } else {
      options_.on_error(w.status());  // fall back to the periodic pass only
    }
  }
  auto next = Clock::now();
  while (!stop_) {
    bool due = Clock::now() >= next;
    if (!due) {
      // Wake at most every 100 ms to notice Stop(); a link event makes the pass due now.
      auto wait =
          std::min(std::chrono::duration_cast<std::chrono::milliseconds>(next - Clock::now()),
                   std::chrono::milliseconds(100));
      if (watcher) {
        auto events = watcher->Poll(wait);
        due = !events.ok() || !events->empty();  // overrun: resync
      } else {
        std::this_thread::sleep_for(wait);
      }
    }
    if (!due || stop_) continue;
    absl::Status st;
    {
      std::lock_guard<std::mutex> lock(mu_);
      st = driver_.Reconcile();
    }
    if (!st.ok()) options_.on_error(st);
    passes_++;
    next = Clock::now() + options_.interval;
  }
}

}  // namespace shoal::netdrv
