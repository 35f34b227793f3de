// main() for every Shoal test binary: quiet logging unless SHOAL_TEST_LOG is set.
#include <cstdlib>

#include "base/log.h"
#include "gtest/gtest.h"

int main(int argc, char** argv) {
  testing::InitGoogleTest(&argc, argv);
  const char* level = std::getenv("SHOAL_TEST_LOG");
  (void)shoal::base::InitLogging(level != nullptr ? level : "warn");
  return RUN_ALL_TESTS();
}
