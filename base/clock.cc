#include "base/clock.h"

#include "base/check.h"

namespace shoal::base {

absl::Time FakeClock::Now() {
  std::lock_guard lock(mu_);
  return now_;
}

void FakeClock::SleepFor(absl::Duration d) { Advance(d); }

void FakeClock::Advance(absl::Duration d) {
  CHECK(d >= absl::ZeroDuration()) << "FakeClock cannot move backwards";
  {
    std::lock_guard lock(mu_);
    now_ += d;
  }
  cv_.notify_all();
}

void FakeClock::SetTime(absl::Time t) {
  {
    std::lock_guard lock(mu_);
    CHECK(t >= now_) << "FakeClock cannot move backwards";
    now_ = t;
  }
  cv_.notify_all();
}

void FakeClock::WaitUntil(absl::Time t) {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return now_ >= t; });
}

}  // namespace shoal::base
