#include "manager/raft/tools/kv_state_machine.h"

#include <cstring>

#include "manager/raft/tools/raftkv.pb.h"

namespace shoal::manager::raft::tools {

void KvStateMachine::Apply(uint64_t, absl::string_view data) {
  shoal::rafttest::PutRequest put;
  if (!put.ParseFromArray(data.data(), static_cast<int>(data.size()))) return;
  std::lock_guard<std::mutex> l(mu_);
  kv_[put.key()] = put.value();
}

absl::StatusOr<std::string> KvStateMachine::Snapshot() {
  std::lock_guard<std::mutex> l(mu_);
  return Serialize(kv_);
}

absl::StatusOr<StateMachine::Serializer> KvStateMachine::CaptureSnapshot() {
  std::shared_ptr<const std::map<std::string, std::string>> copy;
  {
    std::lock_guard<std::mutex> l(mu_);
    copy = std::make_shared<const std::map<std::string, std::string>>(kv_);
  }
  return Serializer([copy] { return Serialize(*copy); });
}

absl::StatusOr<std::string> KvStateMachine::Serialize(
    const std::map<std::string, std::string>& kv) {
  shoal::rafttest::AddMemberResponse unused;  // keeps the generated file linked
  (void)unused;
  std::string out;
  for (auto& [k, v] : kv) {
    shoal::rafttest::PutRequest put;
    put.set_key(k);
    put.set_value(v);
    std::string one = put.SerializeAsString();
    uint32_t n = static_cast<uint32_t>(one.size());
    out.append(reinterpret_cast<const char*>(&n), 4);
    out += one;
  }
  return out;
}

absl::Status KvStateMachine::Restore(uint64_t, absl::string_view snapshot) {
  std::map<std::string, std::string> kv;
  size_t off = 0;
  while (off < snapshot.size()) {
    if (snapshot.size() - off < 4) return absl::DataLossError("kv snapshot: truncated");
    uint32_t n;
    std::memcpy(&n, snapshot.data() + off, 4);
    off += 4;
    shoal::rafttest::PutRequest put;
    if (snapshot.size() - off < n || !put.ParseFromArray(snapshot.data() + off, n)) {
      return absl::DataLossError("kv snapshot: bad record");
    }
    off += n;
    kv[put.key()] = put.value();
  }
  std::lock_guard<std::mutex> l(mu_);
  kv_ = std::move(kv);
  return absl::OkStatus();
}

std::optional<std::string> KvStateMachine::Get(const std::string& key) const {
  std::lock_guard<std::mutex> l(mu_);
  auto it = kv_.find(key);
  if (it == kv_.end()) return std::nullopt;
  return it->second;
}

size_t KvStateMachine::size() const {
  std::lock_guard<std::mutex> l(mu_);
  return kv_.size();
}

}  // namespace shoal::manager::raft::tools
