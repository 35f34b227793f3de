#include "tests/testing/wait.h"

#include "absl/time/clock.h"

namespace shoal::testing {

bool WaitFor(const std::function<bool()>& cond, absl::Duration timeout, absl::Duration poll) {
  absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (cond()) return true;
    absl::SleepFor(poll);
  }
  return cond();
}

}  // namespace shoal::testing
