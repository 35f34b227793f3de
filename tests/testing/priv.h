// Helpers for priv tests: they need root and a real kernel.
#pragma once

#include <unistd.h>

#include "gtest/gtest.h"

// Skips the test with a clear reason when not running as root.
#define SHOAL_REQUIRE_ROOT()                                             \
  do {                                                                   \
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (priv test tier)"; \
  } while (0)
