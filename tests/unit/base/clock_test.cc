#include "base/clock.h"

#include <atomic>
#include <thread>

#include "gtest/gtest.h"

namespace shoal::base {
namespace {

TEST(ClockTest, FakeClockMovesOnlyWhenAdvanced) {
  FakeClock clock(absl::FromUnixSeconds(100));
  EXPECT_EQ(clock.Now(), absl::FromUnixSeconds(100));
  clock.Advance(absl::Seconds(5));
  EXPECT_EQ(clock.Now(), absl::FromUnixSeconds(105));
  clock.SleepFor(absl::Milliseconds(250));
  EXPECT_EQ(clock.Now(), absl::FromUnixSeconds(105) + absl::Milliseconds(250));
  clock.SetTime(absl::FromUnixSeconds(200));
  EXPECT_EQ(clock.Now(), absl::FromUnixSeconds(200));
}

TEST(ClockTest, WaitUntilWakesWhenTimeReachesDeadline) {
  FakeClock clock(absl::FromUnixSeconds(0));
  std::atomic<bool> woke{false};
  std::thread waiter([&] {
    clock.WaitUntil(absl::FromUnixSeconds(10));
    woke = true;
  });
  clock.Advance(absl::Seconds(9));
  // The waiter cannot have passed: its deadline is not reached.
  EXPECT_FALSE(woke.load());
  clock.Advance(absl::Seconds(1));
  waiter.join();
  EXPECT_TRUE(woke.load());
}

TEST(ClockDeathTest, FakeClockRefusesToGoBack) {
  FakeClock clock(absl::FromUnixSeconds(100));
  EXPECT_DEATH(clock.SetTime(absl::FromUnixSeconds(99)), "cannot move backwards");
}

TEST(ClockTest, RealClockIsCloseToSystemTime) {
  RealClock clock;
  absl::Time t = clock.Now();
  EXPECT_LT(absl::AbsDuration(t - absl::Now()), absl::Seconds(5));
}

}  // namespace
}  // namespace shoal::base
