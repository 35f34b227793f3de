#include "manager/raft/log.h"

#include <algorithm>

#include "base/check.h"

namespace shoal::manager::raft {

void RaftLog::Restore(uint64_t snap_index, uint64_t snap_term, std::vector<api::Entry> entries,
                      uint64_t committed) {
  snap_index_ = snap_index;
  snap_term_ = snap_term;
  entries_ = std::move(entries);
  for (size_t i = 0; i < entries_.size(); ++i) {
    CHECK(entries_[i].index() == snap_index_ + 1 + i) << "non-contiguous log at " << i;
  }
  stable_ = last_index();
  committed_ = std::max(std::min(committed, last_index()), snap_index);
  applied_ = snap_index;
}

std::optional<uint64_t> RaftLog::Term(uint64_t index) const {
  if (index == snap_index_) return snap_term_;
  if (index < snap_index_ || index > last_index()) return std::nullopt;
  return entries_[index - snap_index_ - 1].term();
}

bool RaftLog::MatchTerm(uint64_t index, uint64_t term) const {
  auto t = Term(index);
  return t.has_value() && *t == term;
}

bool RaftLog::IsUpToDate(uint64_t index, uint64_t term) const {
  return term > last_term() || (term == last_term() && index >= last_index());
}

const api::Entry& RaftLog::At(uint64_t index) const {
  CHECK(index > snap_index_ && index <= last_index()) << "index " << index << " out of range";
  return entries_[index - snap_index_ - 1];
}

std::optional<uint64_t> RaftLog::MaybeAppend(
    uint64_t prev_index, uint64_t prev_term, uint64_t commit,
    const google::protobuf::RepeatedPtrField<api::Entry>& ents) {
  // A prev below our snapshot is matched by definition (it is committed), provided the
  // entries overlapping the snapshot are skipped.
  if (prev_index < snap_index_) {
    uint64_t last_new = prev_index + ents.size();
    if (last_new <= snap_index_) {
      CommitTo(std::min(commit, snap_index_));
      return snap_index_;
    }
  } else if (!MatchTerm(prev_index, prev_term)) {
    return std::nullopt;
  }
  uint64_t last_new = prev_index + ents.size();
  for (const api::Entry& e : ents) {
    if (e.index() <= snap_index_) continue;
    if (e.index() <= last_index()) {
      if (At(e.index()).term() == e.term()) continue;
      CHECK(e.index() > committed_) << "conflict at committed index " << e.index();
      entries_.resize(e.index() - snap_index_ - 1);
      stable_ = std::min(stable_, e.index() - 1);
    }
    CHECK(e.index() == last_index() + 1);
    entries_.push_back(e);
  }
  CommitTo(std::min(commit, last_new));
  return last_new;
}

void RaftLog::Append(api::Entry entry) {
  CHECK(entry.index() == last_index() + 1);
  entries_.push_back(std::move(entry));
}

uint64_t RaftLog::FindConflictByTerm(uint64_t index, uint64_t term) const {
  index = std::min(index, last_index());
  while (index > snap_index_) {
    auto t = Term(index);
    if (!t || *t <= term) break;
    --index;
  }
  return index;
}

std::vector<api::Entry> RaftLog::Slice(uint64_t lo, uint64_t hi, uint64_t max_bytes) const {
  std::vector<api::Entry> out;
  uint64_t bytes = 0;
  for (uint64_t i = std::max(lo, first_index()); i < hi && i <= last_index(); ++i) {
    const api::Entry& e = At(i);
    bytes += e.data().size() + 16;
    if (!out.empty() && bytes > max_bytes) break;
    out.push_back(e);
  }
  return out;
}

void RaftLog::CommitTo(uint64_t index) {
  if (index <= committed_) return;
  CHECK(index <= last_index()) << "commit " << index << " beyond last " << last_index();
  committed_ = index;
}

void RaftLog::AppliedTo(uint64_t index) {
  CHECK(index <= committed_ && index >= applied_) << "applied " << index;
  applied_ = index;
}

void RaftLog::StableTo(uint64_t index) { stable_ = std::max(stable_, std::min(index, last_index())); }

std::vector<api::Entry> RaftLog::Unstable() const {
  std::vector<api::Entry> out;
  for (uint64_t i = std::max(stable_ + 1, first_index()); i <= last_index(); ++i) {
    out.push_back(At(i));
  }
  return out;
}

std::vector<api::Entry> RaftLog::NextCommitted(uint64_t handed, uint64_t max_bytes) const {
  return Slice(std::max(handed, snap_index_) + 1, committed_ + 1, max_bytes);
}

void RaftLog::Compact(uint64_t index) {
  if (index <= snap_index_) return;
  CHECK(index <= applied_) << "compact " << index << " beyond applied " << applied_;
  uint64_t term = *Term(index);
  entries_.erase(entries_.begin(), entries_.begin() + (index - snap_index_));
  snap_index_ = index;
  snap_term_ = term;
}

void RaftLog::ResetToSnapshot(uint64_t index, uint64_t term) {
  entries_.clear();
  snap_index_ = index;
  snap_term_ = term;
  committed_ = index;
  applied_ = index;
  stable_ = index;
}

}  // namespace shoal::manager::raft
