// RaftNode: state machine snapshots — restore, and capture on the loop with serialization
// and the file write on a writer thread (compaction follows in HandleInput(kSnapshotSaved)).
#include <cstdlib>

#include "base/check.h"
#include "base/log.h"
#include "base/status.h"
#include "manager/raft/node_internal.h"

namespace shoal::manager::raft {

void RaftNode::RestoreSnapshot(const SnapshotData& s) {
  api::Snapshot snap;
  if (!snap.ParseFromString(*s.data)) {
    base::Logger("raft")->critical("raft {}: undecodable snapshot at {}", opts_.id,
                                   s.metadata.index());
    std::abort();
  }
  absl::Status st = sm_->Restore(s.metadata.index(), snap.state());
  if (!st.ok()) {
    base::Logger("raft")->critical("raft {}: state machine restore failed: {}", opts_.id,
                                   std::string(st.message()));
    std::abort();
  }
  members_.clear();
  for (const api::RaftMember& m : snap.members()) {
    members_[m.raft_id()] = m;
    if (m.raft_id() != opts_.id && !m.addr().empty()) transport_.SetPeer(m.raft_id(), m.addr());
  }
  removed_.assign(snap.removed().begin(), snap.removed().end());
  applied_ = s.metadata.index();
  last_snapshot_ = applied_;
  for (auto it = by_index_.begin(); it != by_index_.end() && it->first <= applied_;) {
    it->second->Complete(absl::UnavailableError("raft: replaced by a snapshot; outcome unknown"));
    it = by_index_.erase(it);
  }
}

void RaftNode::MaybeSnapshot() {
  if (snap_writing_ || applied_ < last_snapshot_ + opts_.snapshot_interval) return;
  if (core_->log().applied() != applied_) return;
  last_snapshot_ = applied_;  // on failure: retry after another interval
  // Only the capture runs here (the store: one pointer copy); serializing the state and
  // writing the file happen on the writer thread while the loop keeps heartbeating. The log
  // is compacted once the file is durable (kSnapshotSaved).
  auto serializer = sm_->CaptureSnapshot();
  if (!serializer.ok()) {
    base::Logger("raft")->error("raft {}: state machine snapshot failed: {}", opts_.id,
                                std::string(serializer.status().message()));
    return;
  }
  SnapshotData sd;
  sd.metadata.set_index(applied_);
  sd.metadata.set_term(core_->log().Term(applied_).value_or(0));
  for (uint64_t v : core_->voters()) sd.metadata.mutable_conf_state()->add_voters(v);
  for (uint64_t l : core_->learners()) sd.metadata.mutable_conf_state()->add_learners(l);
  api::Snapshot envelope;
  for (auto& [id, m] : members_) *envelope.add_members() = m;
  for (uint64_t r : removed_) envelope.add_removed(r);
  snap_writing_ = true;
  if (snap_writer_.joinable()) snap_writer_.join();
  Storage* storage = storage_.get();
  snap_writer_ = std::thread([this, storage, serialize = std::move(*serializer),
                              sd = std::move(sd), envelope = std::move(envelope)]() mutable {
    Input in;
    in.kind = Input::kSnapshotSaved;
    absl::StatusOr<std::string> state = serialize();
    if (state.ok()) {
      envelope.set_state(std::move(*state));
      sd.data = std::make_shared<const std::string>(envelope.SerializeAsString());
      in.status = storage->WriteSnapshotFile(sd);
      in.snapshot = std::move(sd);
    } else {
      in.status = state.status();
    }
    Enqueue(std::move(in));
  });
}

}  // namespace shoal::manager::raft
