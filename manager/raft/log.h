// RaftLog: the in-memory view of one node's log for the consensus core.
//
// Holds the snapshot point (index, term) and every entry after it. `stable` is the last index
// known durable (persisted by the application), `committed` the commit index, `applied` the
// last index handed to the state machine and acknowledged. Invariants (CHECKed):
//   snapshot_index <= applied <= committed <= last_index,  stable <= last_index.
// Not thread-safe; owned by the Core.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "api/raft.pb.h"

namespace shoal::manager::raft {

namespace api = ::shoal::api::v1;

class RaftLog {
 public:
  RaftLog() = default;
  // Restores from durable state: snapshot point and the entries after it (contiguous).
  void Restore(uint64_t snap_index, uint64_t snap_term, std::vector<api::Entry> entries,
               uint64_t committed);

  uint64_t first_index() const { return snap_index_ + 1; }
  uint64_t last_index() const { return snap_index_ + entries_.size(); }
  uint64_t last_term() const { return Term(last_index()).value_or(0); }
  uint64_t snapshot_index() const { return snap_index_; }
  uint64_t snapshot_term() const { return snap_term_; }
  uint64_t committed() const { return committed_; }
  uint64_t applied() const { return applied_; }
  uint64_t stable() const { return stable_; }

  // Term of the entry at `index`; nullopt when compacted away (< snapshot index) or beyond
  // the last index. The snapshot point itself has a term.
  std::optional<uint64_t> Term(uint64_t index) const;
  bool MatchTerm(uint64_t index, uint64_t term) const;
  // Raft's "at least as up-to-date" (§5.4.1).
  bool IsUpToDate(uint64_t last_index, uint64_t last_term) const;

  // Follower append: entries after (prev_index, prev_term). Returns the new last index of the
  // matched prefix, or nullopt when prev does not match. Truncates a conflicting suffix (never
  // below `committed`, CHECKed).
  std::optional<uint64_t> MaybeAppend(uint64_t prev_index, uint64_t prev_term, uint64_t commit,
                                      const google::protobuf::RepeatedPtrField<api::Entry>& ents);
  // Leader append of a new entry (index and term already set).
  void Append(api::Entry entry);

  // Largest index <= `index` whose term is <= `term` (fast log backtracking).
  uint64_t FindConflictByTerm(uint64_t index, uint64_t term) const;

  // Entries in [lo, hi), at most `max_bytes` of data (always at least one).
  std::vector<api::Entry> Slice(uint64_t lo, uint64_t hi, uint64_t max_bytes) const;
  const api::Entry& At(uint64_t index) const;

  void CommitTo(uint64_t index);
  void AppliedTo(uint64_t index);
  void StableTo(uint64_t index);
  // Unstable entries (index > stable) that the application must persist.
  std::vector<api::Entry> Unstable() const;
  // Entries committed but not yet handed out, starting after `handed`.
  std::vector<api::Entry> NextCommitted(uint64_t handed, uint64_t max_bytes) const;

  // Drops entries up to `index` (which must be <= applied).
  void Compact(uint64_t index);
  // Replaces everything with a snapshot point (snapshot install on a follower).
  void ResetToSnapshot(uint64_t index, uint64_t term);

 private:
  uint64_t snap_index_ = 0;
  uint64_t snap_term_ = 0;
  std::vector<api::Entry> entries_;  // entries_[i].index == snap_index_ + 1 + i
  uint64_t committed_ = 0;
  uint64_t applied_ = 0;
  uint64_t stable_ = 0;
};

}  // namespace shoal::manager::raft
