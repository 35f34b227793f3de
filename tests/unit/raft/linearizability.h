// A linearizability checker for key-value register histories (Wing & Gong search with
// Lowe's memoization of (linearized set, state); per-key decomposition, as P-compositionality
// allows for independent registers).
//
// An operation is a put or get on one key with its invocation and response times. A put
// whose outcome is unknown (timeout, crash, lost leadership) has `ret` = kUnknown: it may
// take effect at any point after its call, or never. Gets with unknown outcome are dropped
// by the recorder. Thread-compatible.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace shoal::manager::raft::testing {

struct KvOp {
  static constexpr uint64_t kUnknown = std::numeric_limits<uint64_t>::max();
  enum Kind { kPut, kGet } kind = kPut;
  std::string key;
  std::string value;  // put: written; get: observed ("" = absent)
  uint64_t call = 0;
  uint64_t ret = kUnknown;
  int client = 0;
};

struct LinResult {
  bool ok = true;
  std::string key;      // the first key without a linearization
  std::string details;  // that key's history, for the failure message
};

// Checks the whole history; the initial value of every key is "" (absent).
LinResult CheckLinearizable(const std::vector<KvOp>& history);

}  // namespace shoal::manager::raft::testing
