// Election, term handling and the follower side of the protocol. The leader side (replication,
// ReadIndex, snapshots, membership, Ready) is in core_leader.cc.
#include "manager/raft/core.h"

#include <algorithm>

#include "base/check.h"

namespace shoal::manager::raft {

const char* RoleName(Role r) {
  switch (r) {
    case Role::kFollower:
      return "follower";
    case Role::kPreCandidate:
      return "pre-candidate";
    case Role::kCandidate:
      return "candidate";
    case Role::kLeader:
      return "leader";
  }
  return "?";
}

DurableState Bootstrap(const std::vector<api::RaftMember>& members) {
  DurableState s;
  uint64_t index = 0;
  for (const api::RaftMember& m : members) {
    api::ConfChange cc;
    cc.set_type(api::ConfChange::TYPE_ADD_NODE);
    cc.set_node_id(m.raft_id());
    *cc.mutable_member() = m;
    api::Entry e;
    e.set_term(1);
    e.set_index(++index);
    e.set_type(api::ENTRY_TYPE_CONF_CHANGE);
    e.set_data(cc.SerializeAsString());
    s.entries.push_back(std::move(e));
  }
  s.hard_state.set_term(1);
  s.hard_state.set_commit(index);
  return s;
}

Core::Core(Config config, DurableState state) : cfg_(config), rng_(config.seed ^ config.id) {
  CHECK(cfg_.id != 0) << "raft id 0 is reserved";
  CHECK(cfg_.heartbeat_tick > 0 && cfg_.election_tick > cfg_.heartbeat_tick);
  CHECK(cfg_.max_inflight_msgs > 0 && cfg_.snapshot_chunk_size > 0 && cfg_.snapshot_window > 0);
  uint64_t snap_index = 0, snap_term = 0;
  if (state.snapshot) {
    snap_index = state.snapshot->metadata.index();
    snap_term = state.snapshot->metadata.term();
    for (uint64_t v : state.snapshot->metadata.conf_state().voters()) voters_.insert(v);
    for (uint64_t l : state.snapshot->metadata.conf_state().learners()) learners_.insert(l);
    snapshot_ = state.snapshot;
  }
  log_.Restore(snap_index, snap_term, std::move(state.entries), state.hard_state.commit());
  durable_ = log_.stable();  // recovered from disk
  handed_ = snap_index;
  term_ = state.hard_state.term();
  vote_ = state.hard_state.vote();
  prev_hs_ = HardState();
  BecomeFollower(term_, 0);
}

api::HardState Core::HardState() const {
  api::HardState hs;
  hs.set_term(term_);
  hs.set_vote(vote_);
  hs.set_commit(log_.committed());
  return hs;
}

void Core::ResetRandomizedTimeout() {
  int jitter = cfg_.election_jitter_ticks > 0 ? cfg_.election_jitter_ticks
                                              : std::max(1, cfg_.election_tick / 2);
  randomized_timeout_ =
      cfg_.election_tick + static_cast<int>(rng_() % static_cast<uint64_t>(jitter));
}

void Core::BecomeFollower(uint64_t term, uint64_t lead) {
  if (term != term_) {
    term_ = term;
    vote_ = 0;
  }
  role_ = Role::kFollower;
  lead_ = lead;
  election_elapsed_ = 0;
  heartbeat_elapsed_ = 0;
  lead_transferee_ = 0;
  prs_.clear();
  votes_.clear();
  reads_.clear();
  reads_before_commit_.clear();
  uncommitted_size_ = 0;
  ResetRandomizedTimeout();
}

void Core::BecomePreCandidate() {
  CHECK(role_ != Role::kLeader);
  role_ = Role::kPreCandidate;
  lead_ = 0;
  votes_.clear();
  election_elapsed_ = 0;
  ResetRandomizedTimeout();
}

void Core::BecomeCandidate() {
  CHECK(role_ != Role::kLeader);
  BecomeFollower(term_ + 1, 0);
  role_ = Role::kCandidate;
  vote_ = cfg_.id;
}

bool Core::InLease() const {
  return cfg_.check_quorum && lead_ != 0 && election_elapsed_ < cfg_.election_tick;
}

void Core::Send(api::RaftMessage m) {
  m.set_from(cfg_.id);
  // Vote traffic carries its own term (pre-vote asks for term+1); everything else ours.
  if (m.term() == 0) m.set_term(term_);
  msgs_.push_back(std::move(m));
}

void Core::Tick() {
  if (role_ == Role::kLeader) {
    ++heartbeat_elapsed_;
    ++election_elapsed_;
    for (auto& [id, pr] : prs_) {
      if (pr.state == Progress::State::kSnapshot && ++pr.snap_idle_ticks > cfg_.election_tick) {
        pr.BecomeProbe();  // the stream stalled: start over from a probe
      }
    }
    if (election_elapsed_ >= cfg_.election_tick) {
      election_elapsed_ = 0;
      if (cfg_.check_quorum) {
        size_t active = 0;
        for (auto& [id, pr] : prs_) {
          if (id == cfg_.id || pr.recent_active) {
            if (voters_.count(id)) ++active;
          }
          pr.recent_active = false;
        }
        if (active < Quorum()) {
          BecomeFollower(term_, 0);  // CheckQuorum: lost contact with a majority
          return;
        }
      }
      lead_transferee_ = 0;  // a transfer that did not finish in an election timeout fails
    }
    if (heartbeat_elapsed_ >= cfg_.heartbeat_tick) {
      heartbeat_elapsed_ = 0;
      BroadcastHeartbeat(reads_.empty() ? std::string() : reads_.back().ctx);
    }
    return;
  }
  ++election_elapsed_;
  if (Promotable() && election_elapsed_ >= randomized_timeout_) {
    election_elapsed_ = 0;
    StartElection(false);
  }
}

void Core::Campaign() {
  if (role_ != Role::kLeader) StartElection(false);
}

void Core::StepDown() {
  if (role_ == Role::kLeader) BecomeFollower(term_, 0);
}

void Core::StartElection(bool transfer) {
  if (!Promotable()) return;
  // A pending configuration change that is committed but not applied could remove us.
  bool pre = cfg_.pre_vote && !transfer;
  if (pre) {
    BecomePreCandidate();
  } else {
    BecomeCandidate();
  }
  uint64_t vote_term = pre ? term_ + 1 : term_;
  votes_[cfg_.id] = true;
  if (votes_.size() >= Quorum()) {  // single voter
    if (pre) {
      StartElection(true);
    } else {
      BecomeLeader();
    }
    return;
  }
  for (uint64_t v : voters_) {
    if (v == cfg_.id) continue;
    api::RaftMessage m;
    m.set_type(pre ? api::MSG_PRE_VOTE : api::MSG_VOTE);
    m.set_to(v);
    m.set_term(vote_term);
    m.set_index(log_.last_index());
    m.set_log_term(log_.last_term());
    if (transfer) m.set_context(kTransferContext);
    Send(std::move(m));
  }
}

void Core::Step(const api::RaftMessage& m) {
  const bool vote_req = m.type() == api::MSG_VOTE || m.type() == api::MSG_PRE_VOTE;
  if (m.term() > term_) {
    if (vote_req && m.context() != kTransferContext && InLease()) {
      return;  // CheckQuorum lease: a live leader exists; ignore disruptive candidates
    }
    if (m.type() == api::MSG_PRE_VOTE) {
      // Never change term for a pre-vote.
    } else if (m.type() == api::MSG_PRE_VOTE_RESP && !m.reject()) {
      // Granted pre-vote carries the term we asked for; counted below.
    } else {
      bool from_leader = m.type() == api::MSG_APPEND || m.type() == api::MSG_HEARTBEAT ||
                         m.type() == api::MSG_SNAPSHOT;
      BecomeFollower(m.term(), from_leader ? m.from() : 0);
    }
  } else if (m.term() < term_) {
    if ((cfg_.check_quorum || cfg_.pre_vote) &&
        (m.type() == api::MSG_HEARTBEAT || m.type() == api::MSG_APPEND)) {
      // Tell the stale leader about the newer term so it steps down.
      api::RaftMessage r;
      r.set_type(api::MSG_APPEND_RESP);
      r.set_to(m.from());
      Send(std::move(r));
    } else if (m.type() == api::MSG_PRE_VOTE) {
      api::RaftMessage r;
      r.set_type(api::MSG_PRE_VOTE_RESP);
      r.set_to(m.from());
      r.set_reject(true);
      Send(std::move(r));
    }
    return;
  }

  if (vote_req) {
    HandleVoteRequest(m);
    return;
  }
  switch (role_) {
    case Role::kLeader:
      StepLeader(m);
      break;
    case Role::kPreCandidate:
    case Role::kCandidate:
      StepCandidate(m);
      break;
    case Role::kFollower:
      StepFollower(m);
      break;
  }
}

void Core::HandleVoteRequest(const api::RaftMessage& m) {
  const bool pre = m.type() == api::MSG_PRE_VOTE;
  bool can_vote = vote_ == m.from() || (vote_ == 0 && lead_ == 0) || (pre && m.term() > term_);
  api::RaftMessage r;
  r.set_type(pre ? api::MSG_PRE_VOTE_RESP : api::MSG_VOTE_RESP);
  r.set_to(m.from());
  if (can_vote && log_.IsUpToDate(m.index(), m.log_term())) {
    r.set_term(m.term());  // for a pre-vote: the future term, so the candidate counts it
    if (!pre) {
      election_elapsed_ = 0;
      vote_ = m.from();
    }
  } else {
    r.set_reject(true);
  }
  Send(std::move(r));
}

void Core::StepCandidate(const api::RaftMessage& m) {
  const auto my_resp = role_ == Role::kPreCandidate ? api::MSG_PRE_VOTE_RESP : api::MSG_VOTE_RESP;
  switch (m.type()) {
    case api::MSG_APPEND:
      BecomeFollower(m.term(), m.from());
      HandleAppend(m);
      return;
    case api::MSG_HEARTBEAT:
      BecomeFollower(m.term(), m.from());
      HandleHeartbeat(m);
      return;
    case api::MSG_SNAPSHOT:
      BecomeFollower(m.term(), m.from());
      HandleSnapshotChunk(m);
      return;
    default:
      break;
  }
  if (m.type() != my_resp || !voters_.count(m.from())) return;
  votes_.emplace(m.from(), !m.reject());
  size_t granted = 0, rejected = 0;
  for (auto& [id, g] : votes_) (g ? granted : rejected)++;
  if (granted >= Quorum()) {
    if (role_ == Role::kPreCandidate) {
      StartElection(true);
      return;
    }
    BecomeLeader();
  } else if (rejected >= Quorum()) {
    BecomeFollower(term_, 0);
  }
}

void Core::StepFollower(const api::RaftMessage& m) {
  switch (m.type()) {
    case api::MSG_APPEND:
      lead_ = m.from();
      election_elapsed_ = 0;
      HandleAppend(m);
      break;
    case api::MSG_HEARTBEAT:
      lead_ = m.from();
      election_elapsed_ = 0;
      HandleHeartbeat(m);
      break;
    case api::MSG_SNAPSHOT:
      lead_ = m.from();
      election_elapsed_ = 0;
      HandleSnapshotChunk(m);
      break;
    case api::MSG_TIMEOUT_NOW:
      StartElection(true);  // leadership transfer: skip pre-vote and the lease
      break;
    case api::MSG_READ_INDEX_RESP: {
      read_states_.push_back({m.index(), m.context()});
      break;
    }
    default:
      break;
  }
}

void Core::HandleAppend(const api::RaftMessage& m) {
  api::RaftMessage r;
  r.set_type(api::MSG_APPEND_RESP);
  r.set_to(m.from());
  if (m.index() < log_.committed()) {
    r.set_index(log_.committed());
    Send(std::move(r));
    return;
  }
  auto last = log_.MaybeAppend(m.index(), m.log_term(), m.commit(), m.entries());
  if (last) {
    r.set_index(*last);
  } else {
    uint64_t hint = std::min(m.index(), log_.last_index());
    hint = log_.FindConflictByTerm(hint, m.log_term());
    r.set_reject(true);
    r.set_index(m.index());
    r.set_reject_hint(hint);
    r.set_log_term(log_.Term(hint).value_or(0));
  }
  Send(std::move(r));
}

void Core::HandleHeartbeat(const api::RaftMessage& m) {
  log_.CommitTo(std::min(m.commit(), log_.last_index()));
  api::RaftMessage r;
  r.set_type(api::MSG_HEARTBEAT_RESP);
  r.set_to(m.from());
  r.set_context(m.context());
  Send(std::move(r));
}

void Core::HandleSnapshotChunk(const api::RaftMessage& m) {
  const api::SnapshotChunk& c = m.snapshot_chunk();
  const api::SnapshotMetadata& meta = c.metadata();
  auto ack = [&](bool reject, uint64_t have) {
    api::RaftMessage r;
    r.set_type(api::MSG_SNAPSHOT_RESP);
    r.set_to(m.from());
    r.set_index(meta.index());
    r.set_reject(reject);
    r.set_reject_hint(have);
    Send(std::move(r));
  };
  if (meta.index() <= log_.committed()) {
    incoming_active_ = false;
    api::RaftMessage r;
    r.set_type(api::MSG_APPEND_RESP);
    r.set_to(m.from());
    r.set_index(log_.committed());
    Send(std::move(r));
    return;
  }
  if (c.offset() == 0) {
    incoming_active_ = true;
    incoming_meta_ = meta;
    incoming_snap_.clear();
  }
  if (!incoming_active_ || incoming_meta_.index() != meta.index() ||
      incoming_meta_.term() != meta.term() || c.offset() != incoming_snap_.size()) {
    ack(true, incoming_active_ ? incoming_snap_.size() : 0);
    return;
  }
  incoming_snap_.append(c.data());
  if (!c.last()) {
    ack(false, incoming_snap_.size());
    return;
  }
  incoming_active_ = false;
  // Install: the snapshot replaces the log (or just advances commit if we already have it).
  if (log_.MatchTerm(meta.index(), meta.term())) {
    log_.CommitTo(meta.index());
  } else {
    log_.ResetToSnapshot(meta.index(), meta.term());
    handed_ = meta.index();
    voters_.clear();
    learners_.clear();
    for (uint64_t v : meta.conf_state().voters()) voters_.insert(v);
    for (uint64_t l : meta.conf_state().learners()) learners_.insert(l);
    SnapshotData sd{meta, std::make_shared<const std::string>(std::move(incoming_snap_))};
    snapshot_ = sd;
    pending_snapshot_ = sd;
  }
  incoming_snap_.clear();
  api::RaftMessage r;
  r.set_type(api::MSG_APPEND_RESP);
  r.set_to(m.from());
  r.set_index(log_.last_index());
  Send(std::move(r));
}

}  // namespace shoal::manager::raft
