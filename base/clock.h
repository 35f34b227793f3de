// Clock: injectable time source. Production code takes a `Clock&`; tests pass a FakeClock.
//
// RealClock is thread-safe and stateless. FakeClock is thread-safe: time moves only through
// Advance()/SetTime() or SleepFor() (which advances instead of sleeping), and threads blocked
// in SleepFor/WaitUntil wake when the fake time reaches their deadline.
#pragma once

#include <condition_variable>
#include <mutex>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace shoal::base {

class Clock {
 public:
  virtual ~Clock() = default;
  // Wall-clock time (for timestamps that leave the process).
  virtual absl::Time Now() = 0;
  // Blocks the caller for `d` of this clock's time.
  virtual void SleepFor(absl::Duration d) = 0;
};

class RealClock final : public Clock {
 public:
  absl::Time Now() override { return absl::Now(); }
  void SleepFor(absl::Duration d) override { absl::SleepFor(d); }
};

class FakeClock final : public Clock {
 public:
  explicit FakeClock(absl::Time start = absl::FromUnixSeconds(1'700'000'000)) : now_(start) {}

  absl::Time Now() override;
  // Advances the fake time by `d` (so single-threaded code using SleepFor never blocks).
  void SleepFor(absl::Duration d) override;

  void Advance(absl::Duration d);
  void SetTime(absl::Time t);  // must not move backwards (CHECKed)
  // Blocks until another thread advances the fake time to at least `t`.
  void WaitUntil(absl::Time t);

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  absl::Time now_;
};

}  // namespace shoal::base
