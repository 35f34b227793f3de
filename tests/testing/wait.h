// Polling with a deadline, for tests that wait on what a user would observe.
#pragma once

#include <functional>

#include "absl/time/time.h"

namespace shoal::testing {

// Polls `cond` every `poll` until it holds or `timeout` passes; true if it held (`cond` is
// checked once more at the deadline).
bool WaitFor(const std::function<bool()>& cond, absl::Duration timeout,
             absl::Duration poll = absl::Milliseconds(200));

}  // namespace shoal::testing
