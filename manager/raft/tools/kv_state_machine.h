// KvStateMachine: the replicated map behind shoal-raft-server. Entries are serialized
// shoal.rafttest.PutRequest messages; snapshots are a serialized list of them.
// Apply/Snapshot/Restore come from the raft apply thread; Get from any thread (mutex).
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "manager/raft/state_machine.h"

namespace shoal::manager::raft::tools {

class KvStateMachine final : public StateMachine {
 public:
  void Apply(uint64_t index, absl::string_view data) override;
  absl::StatusOr<std::string> Snapshot() override;
  // Copies the map on the apply thread; serializes on the snapshot writer thread.
  absl::StatusOr<Serializer> CaptureSnapshot() override;
  absl::Status Restore(uint64_t index, absl::string_view snapshot) override;

  std::optional<std::string> Get(const std::string& key) const;
  size_t size() const;

 private:
  static absl::StatusOr<std::string> Serialize(const std::map<std::string, std::string>& kv);
  mutable std::mutex mu_;
  std::map<std::string, std::string> kv_;
};

}  // namespace shoal::manager::raft::tools
