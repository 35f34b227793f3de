// LatencyHistogram: percentiles land in the right bucket (upper bound within +25 %).
#include "manager/raft/latency.h"

#include "gtest/gtest.h"

namespace shoal::manager::raft {
namespace {

using std::chrono::microseconds;

TEST(LatencyHistogram, PercentilesBoundTheTrueValues) {
  LatencyHistogram h;
  EXPECT_EQ(h.PercentileUs(0.99), 0);
  for (int i = 1; i <= 1000; ++i) h.Add(microseconds(i));
  EXPECT_EQ(h.count(), 1000u);
  for (double q : {0.5, 0.9, 0.99, 1.0}) {
    const int64_t truth = static_cast<int64_t>(q * 1000);
    EXPECT_GE(h.PercentileUs(q), truth) << q;
    EXPECT_LE(h.PercentileUs(q), truth * 5 / 4) << q;
  }
}

TEST(LatencyHistogram, SmallLargeAndNegativeValues) {
  LatencyHistogram h;
  h.Add(microseconds(0));
  h.Add(microseconds(-5));  // clock quirks count as zero
  h.Add(microseconds(3));
  EXPECT_EQ(h.PercentileUs(0.5), 0);
  EXPECT_EQ(h.PercentileUs(1.0), 3);
  LatencyHistogram big;
  big.Add(std::chrono::hours(24 * 365));  // beyond the last bucket: clamped, not lost
  EXPECT_EQ(big.count(), 1u);
  EXPECT_GT(big.PercentileUs(1.0), 1000000);
  h.Merge(big);
  EXPECT_EQ(h.count(), 4u);
  EXPECT_NE(h.Summary().find("n=4 "), std::string::npos) << h.Summary();
}

}  // namespace
}  // namespace shoal::manager::raft
