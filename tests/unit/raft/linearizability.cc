#include "tests/unit/raft/linearizability.h"

#include <algorithm>
#include <functional>
#include <map>
#include <sstream>
#include <unordered_set>

namespace shoal::manager::raft::testing {
namespace {

struct Key {
  std::vector<uint64_t> bits;
  std::string value;
  bool operator==(const Key& o) const { return value == o.value && bits == o.bits; }
};
struct KeyHash {
  size_t operator()(const Key& k) const {
    size_t h = std::hash<std::string>()(k.value);
    for (uint64_t b : k.bits) h = h * 1000003u ^ std::hash<uint64_t>()(b);
    return h;
  }
};

class Search {
 public:
  explicit Search(std::vector<KvOp> ops) : ops_(std::move(ops)) {
    std::sort(ops_.begin(), ops_.end(), [](const KvOp& a, const KvOp& b) { return a.call < b.call; });
    done_.bits.assign((ops_.size() + 63) / 64, 0);
    for (const KvOp& o : ops_) required_ += o.ret != KvOp::kUnknown;
  }

  bool Run() { return Dfs(); }

 private:
  bool Linearized(size_t i) const { return done_.bits[i / 64] >> (i % 64) & 1; }
  void Flip(size_t i) { done_.bits[i / 64] ^= uint64_t{1} << (i % 64); }

  bool Dfs() {
    if (linearized_required_ == required_) return true;
    if (!seen_.insert(done_).second) return false;
    uint64_t min_ret = KvOp::kUnknown;
    for (size_t i = 0; i < ops_.size(); ++i) {
      if (!Linearized(i)) min_ret = std::min(min_ret, ops_[i].ret);
    }
    for (size_t i = 0; i < ops_.size(); ++i) {
      const KvOp& o = ops_[i];
      if (o.call > min_ret) break;  // sorted by call: nothing later can go first
      if (Linearized(i)) continue;
      if (o.kind == KvOp::kGet && o.value != done_.value) continue;
      std::string saved = done_.value;
      if (o.kind == KvOp::kPut) done_.value = o.value;
      Flip(i);
      linearized_required_ += o.ret != KvOp::kUnknown;
      if (Dfs()) return true;
      linearized_required_ -= o.ret != KvOp::kUnknown;
      Flip(i);
      done_.value = saved;
    }
    return false;
  }

  std::vector<KvOp> ops_;
  Key done_;
  size_t required_ = 0;
  size_t linearized_required_ = 0;
  std::unordered_set<Key, KeyHash> seen_;
};

}  // namespace

LinResult CheckLinearizable(const std::vector<KvOp>& history) {
  std::map<std::string, std::vector<KvOp>> by_key;
  for (const KvOp& o : history) by_key[o.key].push_back(o);
  for (auto& [key, ops] : by_key) {
    Search s(ops);
    if (!s.Run()) {
      std::ostringstream d;
      for (const KvOp& o : ops) {
        d << "  c" << o.client << (o.kind == KvOp::kPut ? " put " : " get ") << '"' << o.value
          << "\" [" << o.call << ", "
          << (o.ret == KvOp::kUnknown ? std::string("?") : std::to_string(o.ret)) << "]\n";
      }
      return {false, key, d.str()};
    }
  }
  return {};
}

}  // namespace shoal::manager::raft::testing
