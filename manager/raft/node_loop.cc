// RaftNode: the loop thread (inputs, ticks, Readies, apply), the leader's sync thread and
// learner promotion.
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "base/check.h"
#include "base/log.h"
#include "base/status.h"
#include "manager/raft/node_internal.h"

namespace shoal::manager::raft {

void RaftNode::SyncLoop() {
  while (true) {
    SyncRequest req;
    {
      std::unique_lock<std::mutex> l(sync_mu_);
      sync_cv_.wait(l, [&] { return sync_stop_ || sync_req_.has_value(); });
      if (!sync_req_) return;  // stopping with nothing left to sync
      req = std::move(*sync_req_);
      sync_req_.reset();
    }
    sync_started_ns_ = std::chrono::steady_clock::now().time_since_epoch().count();
    if (opts_.storage.before_sync) opts_.storage.before_sync();  // fault injection in tests
    const int rc = ::fdatasync(req.fd.get());
    sync_started_ns_ = 0;
    if (rc != 0) {
      // After a failed fdatasync the page cache state is unknown (fsyncgate): never continue.
      base::Logger("raft")->critical("raft {}: fdatasync of the WAL failed: {}; aborting", opts_.id,
                                     std::strerror(errno));
      std::abort();
    }
    Input in;
    in.kind = Input::kDurable;
    in.target = req.index;
    in.term = req.term;
    Enqueue(std::move(in), /*combine=*/true);
  }
}

void RaftNode::HandleInput(Input& in) {
  const auto now = std::chrono::steady_clock::now();
  {
    std::lock_guard<std::mutex> l(stats_mu_);
    stages_.inbox_wait.Add(now - in.at);
  }
  switch (in.kind) {
    case Input::kMessage:
      if (in.msg.type() == api::MSG_APPEND && in.msg.entries_size() > 0 &&
          append_at_ == std::chrono::steady_clock::time_point{}) {
        append_at_ = in.at;
      }
      if (in.msg.type() == api::MSG_APPEND_RESP && !in.msg.reject() && was_leader_ &&
          in.msg.index() > first_ack_upto_) {
        std::lock_guard<std::mutex> l(stats_mu_);
        for (auto it = by_index_.upper_bound(first_ack_upto_);
             it != by_index_.end() && it->first <= in.msg.index(); ++it) {
          if (!it->second->acked) {
            it->second->acked = true;
            stages_.first_ack.Add(in.at - it->second->proposed_at);  // arrival, not handling
          }
        }
        first_ack_upto_ = in.msg.index();
      }
      core_->Step(in.msg);
      return;
    case Input::kPropose: {
      auto r = core_->Propose(std::move(in.data));
      if (!r.ok()) {
        in.waiter->Complete(r.status());
        return;
      }
      in.waiter->term = core_->term();
      by_index_[*r] = in.waiter;
      return;
    }
    case Input::kConfChange: {
      auto r = core_->ProposeConfChange(in.cc);
      if (!r.ok()) {
        in.waiter->Complete(r.status());
        return;
      }
      in.waiter->term = core_->term();
      by_index_[*r] = in.waiter;
      return;
    }
    case Input::kRead: {
      std::string ctx = std::to_string(opts_.id) + ":" + std::to_string(++read_seq_);
      core_->ReadIndex(ctx);
      reads_.push_back({ctx, in.waiter, 0});
      return;
    }
    case Input::kSnapshotSaved: {
      snap_writing_ = false;
      if (snap_writer_.joinable()) snap_writer_.join();
      if (!in.snapshot) {  // the state machine could not serialize: retry after an interval
        base::Logger("raft")->error("raft {}: state machine snapshot failed: {}", opts_.id,
                                    std::string(in.status.message()));
        return;
      }
      const SnapshotData& sd = *in.snapshot;
      const uint64_t index = sd.metadata.index();
      absl::Status s = in.status;
      if (s.ok() && index >= core_->log().snapshot_index()) {
        // The file is durable: now the log may forget what it covers.
        core_->Compact(index, sd.metadata.conf_state(), sd.data, opts_.snapshot_keep);
        s = storage_->CompactTo(index > opts_.snapshot_keep ? index - opts_.snapshot_keep : 0);
      }
      if (!s.ok()) {
        base::Logger("raft")->critical("raft {}: saving snapshot failed: {}", opts_.id,
                                       std::string(s.message()));
        std::abort();
      }
      return;
    }
    case Input::kDurable:
      core_->DurableTo(in.target, in.term);
      return;
    case Input::kTransfer: {
      absl::Status s = core_->TransferLeadership(in.target);
      if (s.ok()) {
        in.waiter->Complete(uint64_t{0});
      } else {
        in.waiter->Complete(s);
      }
      return;
    }
  }
}

void RaftNode::Loop() {
  std::unique_lock<std::mutex> l(mu_);
  while (!stop_) {
    if (running_) {
      ++token_waiters_;
      cv_.wait(l);  // the holder ticks too; look again once it lets go
      --token_waiters_;
      continue;
    }
    if (inbox_.empty() && std::chrono::steady_clock::now() < next_tick_) {
      cv_.wait_until(l, next_tick_);
      continue;
    }
    running_ = true;
    l.unlock();
    Process(/*combiner=*/false);
    l.lock();
  }
}

void RaftNode::Process(bool combiner) {
  std::deque<Input> batch;
  for (int rounds = 0;; ++rounds) {
    bool tick = false;
    batch.clear();
    {
      std::lock_guard<std::mutex> l(mu_);
      const auto now = std::chrono::steady_clock::now();
      // A combining thread has its own work (e.g. reading its peer's stream): after a few
      // rounds with inputs still arriving (load: they batch anyway) it hands the loop to the
      // loop thread.
      const bool hand_over = combiner && rounds >= kCombinerRounds && !inbox_.empty();
      if (!stop_ && !hand_over && now >= next_tick_) {
        tick = true;
        next_tick_ += tick_len_;
        if (next_tick_ < now) next_tick_ = now + tick_len_;
      }
      if (stop_ || hand_over || (inbox_.empty() && !tick)) {
        running_ = false;
        // Wake only threads waiting for the token (the loop thread, Stop()) or, on a hand-over,
        // the loop thread: asleep until the next tick it needs nothing (the inbox is empty).
        if (token_waiters_ > 0 || hand_over) cv_.notify_all();
        return;
      }
      batch.swap(inbox_);
    }
    Iterate(batch, tick);
  }
}

void RaftNode::Iterate(std::deque<Input>& batch, bool tick) {
  for (Input& in : batch) HandleInput(in);
  if (tick) {
    MaybeStepDownOnStuckSync();
    core_->Tick();
    if (++sub_tick_n_ >= sub_ticks_) {  // a logical tick
      sub_tick_n_ = 0;
      PromoteCaughtUpLearners();
      // ReadIndex requests are dropped when no leader is known or a message is lost; ask
      // again every few ticks (a duplicate answer finds no waiter and is ignored).
      for (PendingRead& r : reads_) {
        if (++r.age % 3 == 0) core_->ReadIndex(r.ctx);
      }
    }
  }
  while (core_->HasReady()) {
    Ready rd = core_->GetReady();
    const bool durable = HandleReady(rd);
    core_->Advance(rd, durable);
  }
  bool leader = core_->role() == Role::kLeader;
  if (was_leader_ && !leader) {
    FailAllWaiters(absl::UnavailableError("raft: leadership lost; outcome unknown"));
  }
  if (leader != was_leader_) {
    base::Logger("raft")->info("raft {}: {} in term {}", opts_.id,
                               leader ? "became leader" : "stepped down", core_->term());
  }
  was_leader_ = leader;
  MaybeSnapshot();
  PublishStatus();
}

bool RaftNode::HandleReady(Ready& rd) {
  const auto start = std::chrono::steady_clock::now();
  // The leader may replicate in parallel with its own disk write (thesis §10.2.1): the core
  // counts the leader's copy only once Advance() reports it durable. Order: appends carrying
  // new entries first (they start the followers' disk writes), then the replies to the
  // proposers of committed entries, then the leader's other messages (commit index,
  // heartbeats), then the local disk write, then the rest (votes and acknowledgements, which
  // must follow the disk write). Transport::Send may write inline, so order is latency.
  std::vector<api::RaftMessage> soon, later;
  const bool leader = core_->role() == Role::kLeader;
  for (auto& m : rd.messages) {
    bool early = leader && m.term() == core_->term() &&
                 (m.type() == api::MSG_APPEND || m.type() == api::MSG_HEARTBEAT ||
                  m.type() == api::MSG_SNAPSHOT);
    if (!early) {
      later.push_back(std::move(m));
    } else if (m.type() == api::MSG_HEARTBEAT ||
               (m.type() == api::MSG_APPEND && m.entries_size() == 0)) {
      soon.push_back(std::move(m));
    } else {
      transport_.Send(std::move(m));
    }
  }
  // Committed entries are durable on a quorum already, so they may be applied (and their
  // proposers answered) before this Ready's new entries reach the local disk (thesis
  // §10.2.1; etcd applies concurrently with its WAL write). A snapshot is persisted first.
  const bool apply_first = !rd.snapshot.has_value();
  if (apply_first) {
    for (const api::Entry& e : rd.committed_entries) ApplyEntry(e);
  }
  for (auto& m : soon) transport_.Send(std::move(m));
  const auto save_start = std::chrono::steady_clock::now();
  bool deferred = false;
  absl::Status s = storage_->Save(rd, leader && opts_.overlap_leader_sync ? &deferred : nullptr);
  if (s.ok() && deferred) {
    auto fd = storage_->SyncHandle();
    if (fd.ok()) {
      std::lock_guard<std::mutex> l(sync_mu_);
      sync_req_ = SyncRequest{std::move(*fd), rd.entries.back().index(), rd.entries.back().term()};
      sync_cv_.notify_one();
    } else {
      s = fd.status();
    }
  }
  const auto saved = std::chrono::steady_clock::now();
  if (!s.ok()) {
    // After a failed fdatasync the page cache state is unknown (fsyncgate): never continue.
    base::Logger("raft")->critical("raft {}: storage failed: {}; aborting", opts_.id,
                                   std::string(s.message()));
    std::abort();
  }
  bool acked_append = false;
  for (auto& m : later) {
    acked_append = acked_append || m.type() == api::MSG_APPEND_RESP;
    transport_.Send(std::move(m));
  }
  {
    std::lock_guard<std::mutex> l(stats_mu_);
    if (!rd.entries.empty()) stages_.wal_save.Add(saved - save_start);
    if (acked_append && append_at_ != std::chrono::steady_clock::time_point{}) {
      stages_.follower_ack.Add(std::chrono::steady_clock::now() - append_at_);
      append_at_ = {};
    }
  }
  if (!apply_first) {
    RestoreSnapshot(*rd.snapshot);
    for (const api::Entry& e : rd.committed_entries) ApplyEntry(e);
  }
  for (const ReadState& rs : rd.read_states) {
    for (auto it = reads_.begin(); it != reads_.end(); ++it) {
      if (it->ctx == rs.context) {
        read_applies_.emplace_back(rs.index, it->waiter);
        reads_.erase(it);
        break;
      }
    }
  }
  for (auto it = read_applies_.begin(); it != read_applies_.end();) {
    if (applied_ >= it->first) {
      it->second->Complete(it->first);
      it = read_applies_.erase(it);
    } else {
      ++it;
    }
  }
  std::lock_guard<std::mutex> l(stats_mu_);
  stages_.ready.Add(std::chrono::steady_clock::now() - start);
  return !deferred;
}

void RaftNode::ApplyEntry(const api::Entry& e) {
  if (e.index() <= applied_) return;
  if (e.type() == api::ENTRY_TYPE_NORMAL && !e.data().empty()) {
    sm_->Apply(e.index(), e.data());
  } else if (e.type() == api::ENTRY_TYPE_CONF_CHANGE) {
    api::ConfChange cc;
    if (cc.ParseFromString(e.data())) {
      const uint64_t id = cc.node_id();
      switch (cc.type()) {
        case api::ConfChange::TYPE_ADD_NODE:
        case api::ConfChange::TYPE_ADD_LEARNER:
          members_[id] = cc.member();
          members_[id].set_raft_id(id);
          if (id != opts_.id && !cc.member().addr().empty()) {
            transport_.SetPeer(id, cc.member().addr());
          }
          break;
        case api::ConfChange::TYPE_REMOVE_NODE:
          members_.erase(id);
          removed_.push_back(id);
          if (id != opts_.id) transport_.RemovePeer(id);
          break;
        default:
          break;
      }
    }
  }
  applied_ = e.index();
  auto it = by_index_.find(e.index());
  if (it != by_index_.end()) {
    if (it->second->term == e.term()) {
      std::lock_guard<std::mutex> l(stats_mu_);
      stages_.commit.Add(std::chrono::steady_clock::now() - it->second->proposed_at);
    }
    if (it->second->term == e.term()) {
      it->second->Complete(e.index());
    } else {
      it->second->Complete(absl::UnavailableError("raft: entry was replaced (leadership lost)"));
    }
    by_index_.erase(it);
  }
}

void RaftNode::MaybeStepDownOnStuckSync() {
  const int64_t started = sync_started_ns_.load();
  if (started == 0 || core_->role() != Role::kLeader) return;
  const auto stuck = std::chrono::steady_clock::now() -
                     std::chrono::steady_clock::time_point(std::chrono::nanoseconds(started));
  if (stuck < absl::ToChronoNanoseconds(opts_.tick * opts_.raft.election_tick)) return;
  base::Logger("raft")->warn(
      "raft {}: the leader's WAL fdatasync has been running for {} ms (longer than an "
      "election timeout); stepping down",
      opts_.id, std::chrono::duration_cast<std::chrono::milliseconds>(stuck).count());
  core_->StepDown();
}

void RaftNode::PromoteCaughtUpLearners() {
  if (core_->role() != Role::kLeader) return;
  for (uint64_t l : core_->learners()) {
    const Progress* pr = core_->progress(l);
    if (pr == nullptr || pr->match < core_->log().committed()) continue;
    api::ConfChange cc;
    cc.set_type(api::ConfChange::TYPE_PROMOTE_LEARNER);
    cc.set_node_id(l);
    core_->ProposeConfChange(cc).IgnoreError();  // retried next tick if refused
    return;
  }
}

}  // namespace shoal::manager::raft
