// KvStateMachine: the replicated map behind shoal-raft-server. Entries are serialized
// shoal.rafttest.PutRequest messages; snapshots are a serialized list of them.
// Apply/Snapshot/Restore come from the raft apply thread; Get from any thread (mutex).
#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "manager/raft/state_machine.h"

namespace shoal::manager::raft::tools {

class KvStateMachine final : public StateMachine {
 public:
  void Apply(uint64_t index, absl::string_view data) override;
  absl::StatusOr<std::string> Snapshot() override;
  absl::Status Restore(uint64_t index, absl::string_view snapshot) override;

  std::optional<std::string> Get(const std::string& key) const;
  size_t size() const;

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::string> kv_;
};

}  // namespace shoal::manager::raft::tools
