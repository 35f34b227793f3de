#include "manager/raft/node.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "base/check.h"
#include "base/log.h"
#include "base/status.h"

namespace shoal::manager::raft {

struct RaftNode::Waiter {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  absl::StatusOr<uint64_t> result = absl::UnknownError("pending");
  uint64_t term = 0;
  std::chrono::steady_clock::time_point proposed_at;  // Enqueue() time
  bool acked = false;                                  // a follower acknowledged it
  std::function<void(absl::StatusOr<uint64_t>)> callback;  // async proposers

  void Complete(absl::StatusOr<uint64_t> r) {
    {
      std::lock_guard<std::mutex> l(mu);
      if (done) return;
      done = true;
      if (!callback) {
        result = std::move(r);
        cv.notify_all();
        return;
      }
    }
    callback(std::move(r));
  }
  absl::StatusOr<uint64_t> Wait(absl::Duration timeout) {
    std::unique_lock<std::mutex> l(mu);
    if (!cv.wait_for(l, absl::ToChronoNanoseconds(timeout), [&] { return done; })) {
      return absl::DeadlineExceededError("raft: timed out waiting for the entry to apply");
    }
    return result;
  }
};

struct RaftNode::Input {
  enum Kind { kMessage, kPropose, kConfChange, kRead, kTransfer, kSnapshotSaved, kDurable };
  Kind kind = kMessage;
  absl::Status status;  // kSnapshotSaved: the serializer's or the file write's result
  std::optional<SnapshotData> snapshot;  // kSnapshotSaved: set once serialized
  api::RaftMessage msg;
  std::string data;
  api::ConfChange cc;
  uint64_t target = 0;  // kTransfer; kDurable: the durable index
  uint64_t term = 0;    // kDurable: that entry's term
  std::shared_ptr<Waiter> waiter;
  std::chrono::steady_clock::time_point at;  // Enqueue() time
};

RaftNode::RaftNode(NodeOptions opts, StateMachine* sm)
    : opts_(std::move(opts)), sm_(sm), transport_(opts_.transport) {
  service_ = Transport::NewService([this](api::RaftMessage m) {
    {
      std::lock_guard<std::mutex> l(contact_mu_);
      last_contact_[m.from()] = std::chrono::steady_clock::now();
    }
    Input in;
    in.kind = Input::kMessage;
    in.msg = std::move(m);
    Enqueue(std::move(in));
  });
}

RaftNode::~RaftNode() { Stop(); }

absl::StatusOr<std::unique_ptr<RaftNode>> RaftNode::Create(NodeOptions opts, StateMachine* sm) {
  if (opts.id == 0) return absl::InvalidArgumentError("raft node: id must be non-zero");
  if (opts.dir.empty()) return absl::InvalidArgumentError("raft node: dir is required");
  std::unique_ptr<RaftNode> n(new RaftNode(std::move(opts), sm));
  RETURN_IF_ERROR(n->Init());
  return n;
}

absl::Status RaftNode::Init() {
  ASSIGN_OR_RETURN(storage_, Storage::Open(opts_.dir, opts_.storage));
  auto log = base::Logger("raft");
  if (storage_->recovery().torn_bytes > 0) {
    log->warn("raft storage: truncated a torn tail of {} bytes in {}",
              storage_->recovery().torn_bytes, storage_->recovery().torn_segment);
  }
  DurableState ds = storage_->TakeRecovered();
  if (storage_->recovery().fresh && !opts_.bootstrap.empty()) {
    ds = Bootstrap(opts_.bootstrap);
    RETURN_IF_ERROR(storage_->SaveState(ds.hard_state, ds.entries));
  }
  for (const api::RaftMember& m : opts_.bootstrap) {
    if (m.raft_id() != opts_.id) transport_.SetPeer(m.raft_id(), m.addr());
  }
  for (const api::RaftMember& m : opts_.peers) {
    if (m.raft_id() != opts_.id) transport_.SetPeer(m.raft_id(), m.addr());
  }
  if (ds.snapshot) RestoreSnapshot(*ds.snapshot);
  Config cfg = opts_.raft;
  cfg.id = opts_.id;
  if (opts_.timer_resolution > absl::ZeroDuration() && opts_.timer_resolution < opts_.tick) {
    sub_ticks_ = static_cast<int>(absl::ToInt64Nanoseconds(opts_.tick) /
                                  absl::ToInt64Nanoseconds(opts_.timer_resolution));
  }
  const int jitter = cfg.election_jitter_ticks > 0 ? cfg.election_jitter_ticks
                                                   : std::max(1, cfg.election_tick / 2);
  cfg.election_tick *= sub_ticks_;
  cfg.heartbeat_tick *= sub_ticks_;
  cfg.election_jitter_ticks = jitter * sub_ticks_;
  if (cfg.seed == 1) cfg.seed = static_cast<uint64_t>(absl::ToUnixNanos(absl::Now()));
  core_ = std::make_unique<Core>(cfg, std::move(ds));
  PublishStatus();
  return absl::OkStatus();
}

void RaftNode::Start() {
  syncer_ = std::thread([this] { SyncLoop(); });
  thread_ = std::thread([this] { Loop(); });
}

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
    if (::fdatasync(req.fd.get()) != 0) {
      // After a failed fdatasync the page cache state is unknown (fsyncgate): never continue.
      base::Logger("raft")->critical("raft {}: fdatasync of the WAL failed: {}; aborting",
                                     opts_.id, std::strerror(errno));
      std::abort();
    }
    Input in;
    in.kind = Input::kDurable;
    in.target = req.index;
    in.term = req.term;
    Enqueue(std::move(in));
  }
}

void RaftNode::Stop() {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (stop_) return;
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  {
    std::lock_guard<std::mutex> l(sync_mu_);
    sync_stop_ = true;
  }
  sync_cv_.notify_all();
  if (syncer_.joinable()) syncer_.join();
  if (snap_writer_.joinable()) snap_writer_.join();
  transport_.Stop();
  is_leader_ = false;
  FailAllWaiters(absl::UnavailableError("raft: node stopped"));
  for (auto& r : reads_) r.waiter->Complete(absl::UnavailableError("raft: node stopped"));
  for (auto& [i, w] : read_applies_) w->Complete(absl::UnavailableError("raft: node stopped"));
  std::lock_guard<std::mutex> l(mu_);
  for (Input& in : inbox_) {
    if (in.waiter) in.waiter->Complete(absl::UnavailableError("raft: node stopped"));
  }
  inbox_.clear();
}

void RaftNode::Enqueue(Input in) {
  in.at = std::chrono::steady_clock::now();
  if (in.waiter) in.waiter->proposed_at = in.at;
  {
    std::lock_guard<std::mutex> l(mu_);
    if (stop_) {
      if (in.waiter) in.waiter->Complete(absl::UnavailableError("raft: node stopped"));
      return;
    }
    inbox_.push_back(std::move(in));
  }
  cv_.notify_one();
}

absl::StatusOr<uint64_t> RaftNode::Submit(Input in, absl::Duration timeout) {
  auto w = std::make_shared<Waiter>();
  in.waiter = w;
  Enqueue(std::move(in));
  return w->Wait(timeout);
}

absl::StatusOr<uint64_t> RaftNode::ProposeAndWait(absl::string_view data,
                                                  absl::Duration timeout) {
  if (!IsLeader()) return absl::FailedPreconditionError("not the leader");
  Input in;
  in.kind = Input::kPropose;
  in.data = std::string(data);
  return Submit(std::move(in), timeout);
}

void RaftNode::ProposeAsync(absl::string_view data,
                            std::function<void(absl::StatusOr<uint64_t>)> done) {
  if (!IsLeader()) {
    done(absl::FailedPreconditionError("not the leader"));
    return;
  }
  Input in;
  in.kind = Input::kPropose;
  in.data = std::string(data);
  in.waiter = std::make_shared<Waiter>();
  in.waiter->callback = std::move(done);
  Enqueue(std::move(in));
}

absl::Status RaftNode::ReadBarrier(absl::Duration timeout) {
  Input in;
  in.kind = Input::kRead;
  return Submit(std::move(in), timeout).status();
}

absl::Status RaftNode::AddMember(const api::RaftMember& m, absl::Duration timeout) {
  if (m.raft_id() == 0 || m.addr().empty()) {
    return absl::InvalidArgumentError("add member: raft_id and addr are required");
  }
  Input in;
  in.kind = Input::kConfChange;
  in.cc.set_type(api::ConfChange::TYPE_ADD_LEARNER);
  in.cc.set_node_id(m.raft_id());
  *in.cc.mutable_member() = m;
  return Submit(std::move(in), timeout).status();
}

absl::Status RaftNode::RemoveMember(uint64_t raft_id, absl::Duration timeout) {
  Input in;
  in.kind = Input::kConfChange;
  in.cc.set_type(api::ConfChange::TYPE_REMOVE_NODE);
  in.cc.set_node_id(raft_id);
  return Submit(std::move(in), timeout).status();
}

absl::Status RaftNode::TransferLeadership(uint64_t target, absl::Duration timeout) {
  Input in;
  in.kind = Input::kTransfer;
  in.target = target;
  RETURN_IF_ERROR(Submit(std::move(in), timeout).status());
  absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    NodeStatus s = Status();
    if (s.leader == target) return absl::OkStatus();
    absl::SleepFor(opts_.tick / 2);
  }
  return absl::DeadlineExceededError("transfer: target did not become leader in time");
}

std::string RaftNode::StageStats(bool reset) {
  std::lock_guard<std::mutex> l(stats_mu_);
  std::string out;
  auto line = [&](const char* name, const LatencyHistogram& h) {
    out += std::string(name) + ": " + h.Summary() + "\n";
  };
  line("inbox_wait", stages_.inbox_wait);
  line("wal_save", stages_.wal_save);
  line("ready", stages_.ready);
  line("leader_first_ack", stages_.first_ack);
  line("leader_commit", stages_.commit);
  line("follower_ack", stages_.follower_ack);
  if (reset) stages_ = StageTimes();
  return out + transport_.Stats(reset);
}

NodeStatus RaftNode::Status() const {
  std::lock_guard<std::mutex> l(status_mu_);
  return status_;
}

const char* ReachabilityName(Reachability r) {
  switch (r) {
    case Reachability::kUnknown:
      return "unknown";
    case Reachability::kReachable:
      return "reachable";
    case Reachability::kUnreachable:
      return "unreachable";
  }
  return "?";
}

std::vector<PeerStatus> RaftNode::Peers() const {
  const auto now = std::chrono::steady_clock::now();
  const auto timeout = absl::ToChronoNanoseconds(opts_.tick * opts_.raft.election_tick);
  std::map<uint64_t, std::chrono::steady_clock::time_point> contact;
  {
    std::lock_guard<std::mutex> l(contact_mu_);
    contact = last_contact_;
  }
  std::vector<PeerStatus> out;
  std::lock_guard<std::mutex> l(status_mu_);
  const bool leader = status_.role == Role::kLeader;
  const bool led_long_enough = leader && now - leader_since_ >= timeout;
  for (const api::RaftMember& m : status_.members) {
    PeerStatus p;
    p.raft_id = m.raft_id();
    p.addr = m.addr();
    p.self = p.raft_id == opts_.id;
    p.is_leader = p.raft_id == status_.leader;
    p.learner = std::find(status_.learners.begin(), status_.learners.end(), p.raft_id) !=
                status_.learners.end();
    if (leader) {
      auto it = match_.find(p.raft_id);
      if (it != match_.end()) p.match = it->second;
    }
    auto c = contact.find(p.raft_id);
    const bool recent = c != contact.end() && now - c->second < timeout;
    if (c != contact.end()) p.since_contact = absl::FromChrono(now - c->second);
    if (p.self) {
      p.reachability = Reachability::kReachable;
      p.since_contact = absl::ZeroDuration();
    } else if (recent && (leader || p.is_leader)) {
      p.reachability = Reachability::kReachable;
    } else if (led_long_enough || (!leader && p.is_leader)) {
      p.reachability = Reachability::kUnreachable;
    }
    out.push_back(std::move(p));
  }
  return out;
}

void RaftNode::PublishStatus() {
  NodeStatus s;
  s.id = opts_.id;
  s.term = core_->term();
  s.leader = core_->lead();
  s.role = core_->role();
  s.commit = core_->log().committed();
  s.applied = applied_;
  for (auto& [id, m] : members_) s.members.push_back(m);
  s.learners.assign(core_->learners().begin(), core_->learners().end());
  const bool leader = s.role == Role::kLeader;
  std::lock_guard<std::mutex> l(status_mu_);
  if (leader && status_.role != Role::kLeader) leader_since_ = std::chrono::steady_clock::now();
  match_.clear();
  if (leader) {
    for (const api::RaftMember& m : s.members) {
      if (const Progress* pr = core_->progress(m.raft_id())) match_[m.raft_id()] = pr->match;
    }
  }
  status_ = std::move(s);
  is_leader_ = leader;
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
  auto log = base::Logger("raft");
  const auto tick = absl::ToChronoNanoseconds(opts_.tick / sub_ticks_);
  auto next_tick = std::chrono::steady_clock::now() + tick;
  while (true) {
    std::deque<Input> batch;
    {
      std::unique_lock<std::mutex> l(mu_);
      cv_.wait_until(l, next_tick, [&] { return stop_ || !inbox_.empty(); });
      if (stop_) return;
      batch.swap(inbox_);
    }
    for (Input& in : batch) HandleInput(in);
    auto now = std::chrono::steady_clock::now();
    if (now >= next_tick) {
      core_->Tick();
      next_tick += tick;
      if (next_tick < now) next_tick = now + tick;
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
      log->info("raft {}: {} in term {}", opts_.id, leader ? "became leader" : "stepped down",
                core_->term());
    }
    was_leader_ = leader;
    MaybeSnapshot();
    PublishStatus();
  }
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
  absl::Status s = storage_->Save(rd, leader ? &deferred : nullptr);
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

void RaftNode::FailAllWaiters(const absl::Status& s) {
  for (auto& [i, w] : by_index_) w->Complete(s);
  by_index_.clear();
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
