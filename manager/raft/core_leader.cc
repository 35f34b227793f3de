// The leader side of the core: replication, commit, ReadIndex, leadership transfer, snapshot
// streaming, membership changes, and the Ready/Advance handshake.
#include <algorithm>

#include "base/check.h"
#include "manager/raft/core.h"

namespace shoal::manager::raft {
namespace {
bool SameHardState(const api::HardState& a, const api::HardState& b) {
  return a.term() == b.term() && a.vote() == b.vote() && a.commit() == b.commit();
}
}  // namespace

const Progress* Core::progress(uint64_t id) const {
  auto it = prs_.find(id);
  return it == prs_.end() ? nullptr : &it->second;
}

void Core::AddProgress(uint64_t id, bool learner) {
  auto [it, inserted] = prs_.try_emplace(id, log_.last_index() + 1, cfg_.max_inflight_msgs,
                                         cfg_.max_inflight_bytes);
  it->second.learner = learner;
  if (inserted) it->second.recent_active = true;
  if (id == cfg_.id) it->second.match = std::min(durable_, log_.stable());
}

void Core::ResetProgress() {
  prs_.clear();
  for (uint64_t v : voters_) AddProgress(v, false);
  for (uint64_t l : learners_) AddProgress(l, true);
}

void Core::BecomeLeader() {
  CHECK(role_ == Role::kCandidate || role_ == Role::kPreCandidate);
  role_ = Role::kLeader;
  lead_ = cfg_.id;
  election_elapsed_ = 0;
  heartbeat_elapsed_ = 0;
  uncommitted_size_ = 0;
  ResetProgress();
  // No configuration change before this term's no-op is applied (raft-dev 2015-07-10).
  pending_conf_index_ = log_.last_index() + 1;
  CHECK_OK(AppendLocal(api::ENTRY_TYPE_NORMAL, std::string()).status());
}

absl::StatusOr<uint64_t> Core::AppendLocal(api::EntryType type, std::string data) {
  if (uncommitted_size_ > 0 && uncommitted_size_ + data.size() > cfg_.max_uncommitted_size) {
    return absl::ResourceExhaustedError("raft: too many uncommitted bytes; retry later");
  }
  uncommitted_size_ += data.size();
  api::Entry e;
  e.set_term(term_);
  e.set_index(log_.last_index() + 1);
  e.set_type(type);
  e.set_data(std::move(data));
  log_.Append(std::move(e));
  need_broadcast_ = true;
  return log_.last_index();
}

absl::StatusOr<uint64_t> Core::Propose(std::string data) {
  if (role_ != Role::kLeader) return absl::FailedPreconditionError("not the leader");
  if (lead_transferee_ != 0) {
    return absl::FailedPreconditionError("not the leader (leadership transfer in progress)");
  }
  return AppendLocal(api::ENTRY_TYPE_NORMAL, std::move(data));
}

absl::StatusOr<uint64_t> Core::ProposeConfChange(const api::ConfChange& cc) {
  if (role_ != Role::kLeader) return absl::FailedPreconditionError("not the leader");
  if (lead_transferee_ != 0) {
    return absl::FailedPreconditionError("not the leader (leadership transfer in progress)");
  }
  if (pending_conf_index_ > log_.applied()) {
    return absl::FailedPreconditionError(
        "a configuration change (or the new leader's no-op) is not applied yet; retry");
  }
  const uint64_t id = cc.node_id();
  if (id == 0) return absl::InvalidArgumentError("conf change: node_id must be non-zero");
  switch (cc.type()) {
    case api::ConfChange::TYPE_ADD_NODE:
    case api::ConfChange::TYPE_ADD_LEARNER:
      if (voters_.count(id) || learners_.count(id)) {
        return absl::AlreadyExistsError("conf change: node is already a member");
      }
      break;
    case api::ConfChange::TYPE_PROMOTE_LEARNER:
      if (!learners_.count(id)) return absl::NotFoundError("conf change: node is not a learner");
      break;
    case api::ConfChange::TYPE_REMOVE_NODE:
      if (!voters_.count(id) && !learners_.count(id)) {
        return absl::NotFoundError("conf change: node is not a member");
      }
      if (voters_.count(id) && voters_.size() == 1) {
        return absl::FailedPreconditionError("conf change: cannot remove the last voter");
      }
      break;
    default:
      return absl::InvalidArgumentError("conf change: unknown type");
  }
  auto index = AppendLocal(api::ENTRY_TYPE_CONF_CHANGE, cc.SerializeAsString());
  if (index.ok()) pending_conf_index_ = *index;
  return index;
}

void Core::ApplyConfChange(const api::ConfChange& cc) {
  const uint64_t id = cc.node_id();
  switch (cc.type()) {
    case api::ConfChange::TYPE_ADD_NODE:
      learners_.erase(id);
      voters_.insert(id);
      break;
    case api::ConfChange::TYPE_ADD_LEARNER:
      if (!voters_.count(id)) learners_.insert(id);
      break;
    case api::ConfChange::TYPE_PROMOTE_LEARNER:
      if (learners_.erase(id)) voters_.insert(id);
      break;
    case api::ConfChange::TYPE_REMOVE_NODE:
      voters_.erase(id);
      learners_.erase(id);
      break;
    default:
      return;
  }
  if (role_ != Role::kLeader) return;
  if (!voters_.count(cfg_.id)) {
    BecomeFollower(term_, 0);  // removed (or demoted): step down
    return;
  }
  for (auto it = prs_.begin(); it != prs_.end();) {
    if (!voters_.count(it->first) && !learners_.count(it->first)) {
      if (lead_transferee_ == it->first) lead_transferee_ = 0;
      it = prs_.erase(it);
    } else {
      it->second.learner = learners_.count(it->first) > 0;
      ++it;
    }
  }
  for (uint64_t v : voters_) AddProgress(v, false);
  for (uint64_t l : learners_) AddProgress(l, true);
  if (MaybeCommit()) need_broadcast_ = true;
  need_broadcast_ = true;
}

bool Core::MaybeCommit() {
  std::vector<uint64_t> matches;
  for (uint64_t v : voters_) {
    auto it = prs_.find(v);
    matches.push_back(it == prs_.end() ? 0 : it->second.match);
  }
  if (matches.empty()) return false;
  std::sort(matches.begin(), matches.end(), std::greater<>());
  uint64_t q = matches[Quorum() - 1];
  // §5.4.2: only entries of the current term are committed by counting replicas.
  if (q <= log_.committed() || log_.Term(q).value_or(0) != term_) return false;
  for (uint64_t i = log_.committed() + 1; i <= q; ++i) {
    const api::Entry& e = log_.At(i);
    if (e.term() == term_) uncommitted_size_ -= std::min<uint64_t>(uncommitted_size_, e.data().size());
  }
  log_.CommitTo(q);
  // Reads that waited for this term's first commit can now proceed.
  auto waiting = std::move(reads_before_commit_);
  reads_before_commit_.clear();
  for (auto& [from, ctx] : waiting) HandleReadIndex(from, ctx);
  return true;
}

bool Core::CurrentTermCommitted() const {
  return log_.Term(log_.committed()).value_or(0) == term_;
}

bool Core::SendAppend(uint64_t to, bool send_if_empty) {
  auto it = prs_.find(to);
  if (it == prs_.end()) return false;
  Progress& pr = it->second;
  if (pr.Paused()) return false;
  uint64_t prev = pr.next - 1;
  auto prev_term = log_.Term(prev);
  if (!prev_term || pr.next < log_.first_index()) {
    if (!snapshot_) {
      pr.BecomeProbe();  // nothing to send yet; the application has not compacted
      return false;
    }
    pr.BecomeSnapshot(snapshot_->metadata.index());
    pr.snap_data = snapshot_->data;
    pr.snap_meta = snapshot_->metadata;
    SendSnapshotChunks(to, pr);
    return true;
  }
  std::vector<api::Entry> ents = log_.Slice(pr.next, log_.last_index() + 1, cfg_.max_size_per_msg);
  if (ents.empty() && !send_if_empty) return false;
  api::RaftMessage m;
  m.set_type(api::MSG_APPEND);
  m.set_to(to);
  m.set_index(prev);
  m.set_log_term(*prev_term);
  m.set_commit(log_.committed());
  uint64_t bytes = 0;
  for (auto& e : ents) {
    bytes += e.data().size();
    *m.add_entries() = std::move(e);
  }
  if (m.entries_size() > 0) {
    uint64_t last = m.entries(m.entries_size() - 1).index();
    if (pr.state == Progress::State::kReplicate) {
      pr.OptimisticUpdate(last);
      pr.inflights.Add(last, bytes);
    } else {
      pr.probe_sent = true;
    }
  } else if (pr.state == Progress::State::kProbe) {
    pr.probe_sent = true;
  }
  Send(std::move(m));
  return true;
}

void Core::SendSnapshotChunks(uint64_t to, Progress& pr) {
  const std::string& data = *pr.snap_data;
  const uint64_t window = cfg_.snapshot_chunk_size * cfg_.snapshot_window;
  do {
    if (pr.snap_sent > 0 && pr.snap_sent >= data.size()) return;  // all sent
    if (pr.snap_sent - pr.snap_acked >= window) return;
    uint64_t n = std::min<uint64_t>(cfg_.snapshot_chunk_size, data.size() - pr.snap_sent);
    api::RaftMessage m;
    m.set_type(api::MSG_SNAPSHOT);
    m.set_to(to);
    api::SnapshotChunk* c = m.mutable_snapshot_chunk();
    *c->mutable_metadata() = pr.snap_meta;
    c->set_offset(pr.snap_sent);
    c->set_data(data.substr(pr.snap_sent, n));
    c->set_last(pr.snap_sent + n == data.size());
    pr.snap_sent += n;
    Send(std::move(m));
    if (data.empty()) pr.snap_sent = 1;  // the single empty chunk counts as sent
  } while (pr.snap_sent < data.size());
}

void Core::BroadcastAppend() {
  for (auto& [id, pr] : prs_) {
    if (id == cfg_.id) continue;
    SendAppend(id, true);
    while (pr.state == Progress::State::kReplicate && SendAppend(id, false)) {
    }
  }
}

void Core::BroadcastHeartbeat(const std::string& ctx) {
  for (auto& [id, pr] : prs_) {
    if (id == cfg_.id) continue;
    api::RaftMessage m;
    m.set_type(api::MSG_HEARTBEAT);
    m.set_to(id);
    m.set_commit(std::min(pr.match, log_.committed()));
    m.set_context(ctx);
    Send(std::move(m));
  }
}

void Core::StepLeader(const api::RaftMessage& m) {
  if (m.type() == api::MSG_READ_INDEX) {
    HandleReadIndex(m.from(), m.context());
    return;
  }
  auto it = prs_.find(m.from());
  if (it == prs_.end()) return;
  Progress& pr = it->second;
  switch (m.type()) {
    case api::MSG_APPEND_RESP:
      pr.recent_active = true;
      HandleAppendResp(m, pr);
      break;
    case api::MSG_HEARTBEAT_RESP:
      pr.recent_active = true;
      HandleHeartbeatResp(m, pr);
      break;
    case api::MSG_SNAPSHOT_RESP:
      pr.recent_active = true;
      if (pr.state != Progress::State::kSnapshot || m.index() != pr.snap_index) break;
      if (m.reject()) {
        pr.BecomeProbe();
        break;
      }
      pr.snap_idle_ticks = 0;
      pr.snap_acked = std::max(pr.snap_acked, m.reject_hint());
      SendSnapshotChunks(m.from(), pr);
      break;
    default:
      break;
  }
}

void Core::HandleAppendResp(const api::RaftMessage& m, Progress& pr) {
  const uint64_t from = m.from();
  if (m.reject()) {
    uint64_t hint = m.reject_hint();
    if (m.log_term() > 0) hint = log_.FindConflictByTerm(hint, m.log_term());
    if (pr.MaybeDecrTo(m.index(), hint)) {
      if (pr.state == Progress::State::kReplicate) pr.BecomeProbe();
      SendAppend(from, true);
    }
    return;
  }
  bool was_paused = pr.Paused();
  if (!pr.MaybeUpdate(m.index())) return;
  if (pr.state == Progress::State::kProbe) {
    pr.BecomeReplicate();
  } else if (pr.state == Progress::State::kSnapshot) {
    if (pr.match + 1 >= log_.first_index()) {
      pr.BecomeProbe();
      pr.BecomeReplicate();
    }
  } else {
    pr.inflights.FreeLE(m.index());
  }
  if (MaybeCommit()) {
    BroadcastAppend();
  } else if (was_paused || pr.state == Progress::State::kReplicate) {
    while (SendAppend(from, false)) {
    }
  }
  if (from == lead_transferee_ && pr.match == log_.last_index()) {
    api::RaftMessage t;
    t.set_type(api::MSG_TIMEOUT_NOW);
    t.set_to(from);
    Send(std::move(t));
  }
}

void Core::HandleHeartbeatResp(const api::RaftMessage& m, Progress& pr) {
  if (pr.state == Progress::State::kProbe) pr.probe_sent = false;
  // The peer is alive but a full window is unacknowledged: those appends were lost (it may
  // have restarted). Free one slot so the next append draws a rejection or an ack.
  if (pr.state == Progress::State::kReplicate && pr.inflights.Full()) pr.inflights.FreeFirst();
  if (pr.match < log_.last_index()) SendAppend(m.from(), true);
  if (m.context().empty() || !voters_.count(m.from())) return;
  for (size_t i = 0; i < reads_.size(); ++i) {
    if (reads_[i].ctx != m.context()) continue;
    reads_[i].acks.insert(m.from());
    if (reads_[i].acks.size() >= Quorum()) ReleaseReadsUpTo(i);
    return;
  }
}

void Core::ReleaseReadsUpTo(size_t pos) {
  for (size_t i = 0; i <= pos; ++i) {
    PendingRead r = std::move(reads_.front());
    reads_.pop_front();
    if (r.from == cfg_.id) {
      read_states_.push_back({r.index, r.ctx});
    } else {
      api::RaftMessage resp;
      resp.set_type(api::MSG_READ_INDEX_RESP);
      resp.set_to(r.from);
      resp.set_index(r.index);
      resp.set_context(r.ctx);
      Send(std::move(resp));
    }
  }
}

void Core::HandleReadIndex(uint64_t from, const std::string& ctx) {
  if (!CurrentTermCommitted()) {
    // The leader's commit index is only known to be current once an entry of its own
    // term commits (thesis §6.4); wait for the no-op.
    reads_before_commit_.emplace_back(from, ctx);
    return;
  }
  reads_.push_back({log_.committed(), from, ctx, {cfg_.id}});
  if (Quorum() <= 1) {
    ReleaseReadsUpTo(reads_.size() - 1);
    return;
  }
  BroadcastHeartbeat(ctx);
}

void Core::ReadIndex(std::string context) {
  if (role_ == Role::kLeader) {
    HandleReadIndex(cfg_.id, context);
    return;
  }
  if (lead_ == 0) return;  // no leader known: the caller times out and retries
  api::RaftMessage m;
  m.set_type(api::MSG_READ_INDEX);
  m.set_to(lead_);
  m.set_context(std::move(context));
  Send(std::move(m));
}

absl::Status Core::TransferLeadership(uint64_t target) {
  if (role_ != Role::kLeader) return absl::FailedPreconditionError("not the leader");
  if (target == cfg_.id) return absl::OkStatus();
  if (!voters_.count(target)) {
    return absl::InvalidArgumentError("transfer: target is not a voting member");
  }
  lead_transferee_ = target;
  election_elapsed_ = 0;
  const Progress& pr = prs_.at(target);
  if (pr.match == log_.last_index()) {
    api::RaftMessage t;
    t.set_type(api::MSG_TIMEOUT_NOW);
    t.set_to(target);
    Send(std::move(t));
  } else {
    SendAppend(target, true);
  }
  return absl::OkStatus();
}

void Core::Compact(uint64_t index, std::shared_ptr<const std::string> data, uint64_t keep) {
  CHECK(index <= log_.applied()) << "snapshot beyond applied";
  if (snapshot_ && index <= snapshot_->metadata.index()) return;
  // Configuration changes take effect when applied, so the current one is the one at index
  // only when index == applied; CHECK it to keep the contract exact.
  CHECK(index == log_.applied()) << "compact only at the applied index";
  api::ConfState conf;
  for (uint64_t v : voters_) conf.add_voters(v);
  for (uint64_t l : learners_) conf.add_learners(l);
  Compact(index, conf, std::move(data), keep);
}

void Core::Compact(uint64_t index, const api::ConfState& conf,
                   std::shared_ptr<const std::string> data, uint64_t keep) {
  CHECK(data != nullptr);
  CHECK(index <= log_.applied()) << "snapshot beyond applied";
  if (snapshot_ && index <= snapshot_->metadata.index()) return;
  if (index < log_.snapshot_index()) return;  // a newer snapshot was installed meanwhile
  SnapshotData sd;
  sd.metadata.set_index(index);
  sd.metadata.set_term(*log_.Term(index));
  *sd.metadata.mutable_conf_state() = conf;
  sd.data = std::move(data);
  snapshot_ = std::move(sd);
  log_.Compact(index > keep ? index - keep : 0);
}

bool Core::HasReady() const {
  return need_broadcast_ || !msgs_.empty() || log_.stable() < log_.last_index() ||
         log_.committed() > handed_ || pending_snapshot_.has_value() || !read_states_.empty() ||
         !SameHardState(prev_hs_, HardState());
}

Ready Core::GetReady() {
  if (need_broadcast_ && role_ == Role::kLeader) BroadcastAppend();
  need_broadcast_ = false;
  Ready rd;
  rd.messages = std::move(msgs_);
  msgs_.clear();
  rd.entries = log_.Unstable();
  rd.committed_entries = log_.NextCommitted(handed_, cfg_.max_committed_per_ready);
  if (!rd.committed_entries.empty()) handed_ = rd.committed_entries.back().index();
  rd.snapshot = std::move(pending_snapshot_);
  pending_snapshot_.reset();
  rd.read_states = std::move(read_states_);
  read_states_.clear();
  api::HardState hs = HardState();
  if (!SameHardState(prev_hs_, hs)) {
    rd.hard_state = hs;
    prev_hs_ = hs;
  }
  return rd;
}

void Core::Advance(const Ready& rd, bool durable) {
  CHECK(durable || (role_ == Role::kLeader && !rd.snapshot)) << "only a leader may defer";
  if (rd.snapshot) log_.StableTo(rd.snapshot->metadata.index());
  if (!rd.entries.empty()) log_.StableTo(rd.entries.back().index());
  // A synchronous write makes everything written before it durable too.
  if (durable) durable_ = log_.stable();
  for (const api::Entry& e : rd.committed_entries) {
    if (e.index() <= log_.applied()) continue;
    if (e.type() == api::ENTRY_TYPE_CONF_CHANGE) {
      api::ConfChange cc;
      if (cc.ParseFromString(e.data())) ApplyConfChange(cc);
    }
    log_.AppliedTo(e.index());
  }
  if (role_ == Role::kLeader) {
    auto self = prs_.find(cfg_.id);
    if (self != prs_.end() && self->second.MaybeUpdate(std::min(durable_, log_.stable()))) {
      if (MaybeCommit()) need_broadcast_ = true;
    }
  }
}

void Core::DurableTo(uint64_t index, uint64_t term) {
  index = std::min(index, log_.stable());
  if (index <= durable_ || log_.Term(index).value_or(0) != term) return;
  durable_ = index;
  if (role_ != Role::kLeader) return;
  auto self = prs_.find(cfg_.id);
  if (self != prs_.end() && self->second.MaybeUpdate(durable_)) {
    if (MaybeCommit()) need_broadcast_ = true;
  }
}

}  // namespace shoal::manager::raft
