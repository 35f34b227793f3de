// LatencyHistogram: a fixed-size log-linear histogram of durations (4 buckets per power of two
// of microseconds, so a percentile is within +19 % of the true value), for the per-stage
// timings RaftNode keeps (RaftNode::StageStats()). Not thread-safe; Add() allocates nothing.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <string>

namespace shoal::manager::raft {

class LatencyHistogram {
 public:
  void Add(std::chrono::nanoseconds d) {
    int64_t us = std::chrono::duration_cast<std::chrono::microseconds>(d).count();
    ++buckets_[Bucket(us < 0 ? 0 : us)];
    ++count_;
  }
  uint64_t count() const { return count_; }
  // Upper bound of the bucket holding the q-quantile (0 < q <= 1), in microseconds.
  int64_t PercentileUs(double q) const {
    if (count_ == 0) return 0;
    uint64_t want = static_cast<uint64_t>(q * static_cast<double>(count_));
    if (want == 0) want = 1;
    uint64_t seen = 0;
    for (size_t b = 0; b < buckets_.size(); ++b) {
      seen += buckets_[b];
      if (seen >= want) return UpperUs(b);
    }
    return UpperUs(buckets_.size() - 1);
  }
  // "n=<count> p50=<us> p90= p99= p999= max<=" in microseconds.
  std::string Summary() const;
  void Merge(const LatencyHistogram& o) {
    for (size_t b = 0; b < buckets_.size(); ++b) buckets_[b] += o.buckets_[b];
    count_ += o.count_;
  }

 private:
  static constexpr size_t kBuckets = 4 * 32;
  static size_t Bucket(int64_t us) {
    if (us < 4) return static_cast<size_t>(us);
    int hi = 63 - __builtin_clzll(static_cast<uint64_t>(us));  // >= 2
    size_t sub = static_cast<size_t>((us >> (hi - 2)) & 3);
    size_t b = static_cast<size_t>(hi) * 4 + sub - 4;
    return b < kBuckets ? b : kBuckets - 1;
  }
  static int64_t UpperUs(size_t b) {
    if (b < 4) return static_cast<int64_t>(b);
    int hi = static_cast<int>((b + 4) / 4);
    int64_t sub = static_cast<int64_t>((b + 4) % 4);
    return ((4 + sub + 1) << (hi - 2)) - 1;
  }
  std::array<uint64_t, kBuckets> buckets_{};
  uint64_t count_ = 0;
};

inline std::string LatencyHistogram::Summary() const {
  return "n=" + std::to_string(count_) + " p50=" + std::to_string(PercentileUs(0.5)) +
         " p90=" + std::to_string(PercentileUs(0.9)) + " p99=" +
         std::to_string(PercentileUs(0.99)) + " p999=" + std::to_string(PercentileUs(0.999)) +
         " max<=" + std::to_string(PercentileUs(1.0)) + " us";
}

}  // namespace shoal::manager::raft
