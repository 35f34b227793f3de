// LeaderLoop: runs the leader-only components (allocator, scheduler, orchestrators, reaper)
// over the store, level-triggered.
//
// On Start it takes a view of the store and a watch from exactly that version (no event is
// missed between them), gives every component the full view (Init), then loops: wait for
// commits (or the tick), hand them to every component (Observe), then let each component act
// (Step), in registration order. Components write through the store; their own writes come back
// as commits, so one component's output is the next one's input (orchestrator -> allocator ->
// scheduler -> agents), exactly as across a real cluster. If the watch fails (a consumer fell
// behind), the loop re-initialises from a fresh view: level-triggered components converge from
// any state.
//
// Thread safety: Start/Stop from one thread; components run on the loop thread only.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "base/clock.h"
#include "manager/store/store.h"

namespace shoal::manager::leader {

class Component {
 public:
  virtual ~Component() = default;
  virtual const char* name() const = 0;
  // Rebuild all state from `view` (on start and after a watch failure).
  virtual void Init(const store::ReadView& view) = 0;
  // Committed changes, in order.
  virtual void Observe(const store::Commit& commit) = 0;
  // Act on what was observed; returns an error only for failures worth logging (the loop
  // re-runs Step on the next round anyway).
  virtual absl::Status Step(store::MemoryStore& store, absl::Time now) = 0;
};

class LeaderLoop {
 public:
  // `tick`: how often Step runs when nothing is committed (restart delays, reaping).
  LeaderLoop(store::MemoryStore& store, base::Clock& clock, std::vector<Component*> components,
             absl::Duration tick = absl::Milliseconds(100));
  ~LeaderLoop();

  void Start();
  void Stop();
  // Runs one round synchronously (tests drive the loop deterministically with this).
  absl::Status RunOnce(absl::Duration wait);

 private:
  absl::Status Reinit();
  void Run();

  store::MemoryStore& store_;
  base::Clock& clock_;
  std::vector<Component*> components_;
  absl::Duration tick_;
  std::unique_ptr<store::Watcher> watcher_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace shoal::manager::leader
