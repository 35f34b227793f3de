// RaftNode: construction, start/stop and the public request API (requests become inputs
// for the loop thread: node_loop.cc).
#include "manager/raft/node.h"

#include "base/check.h"
#include "base/log.h"
#include "base/status.h"
#include "manager/raft/node_internal.h"

namespace shoal::manager::raft {

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
    // The receiving thread (one per peer stream, holding no lock) runs the loop itself when
    // it is free: a follower's append is written, fdatasynced and acknowledged, and the
    // leader's ack commits and answers the proposer, without waking another thread.
    Enqueue(std::move(in), /*combine=*/true);
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
  tick_len_ = absl::ToChronoNanoseconds(opts_.tick / sub_ticks_);
  if (cfg.seed == 1) cfg.seed = static_cast<uint64_t>(absl::ToUnixNanos(absl::Now()));
  core_ = std::make_unique<Core>(cfg, std::move(ds));
  PublishStatus();
  return absl::OkStatus();
}

void RaftNode::Start() {
  {
    std::lock_guard<std::mutex> l(mu_);
    next_tick_ = std::chrono::steady_clock::now() + tick_len_;
    started_ = true;
  }
  syncer_ = std::thread([this] { SyncLoop(); });
  thread_ = std::thread([this] { Loop(); });
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
    // A combining thread finishes its iteration and lets go of the loop (it starts no other).
    std::unique_lock<std::mutex> l(mu_);
    ++token_waiters_;
    cv_.wait(l, [&] { return !running_; });
    --token_waiters_;
  }
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

void RaftNode::Enqueue(Input in, bool combine) {
  in.at = std::chrono::steady_clock::now();
  if (in.waiter) in.waiter->proposed_at = in.at;
  bool run_here = false, wake = false;
  {
    std::lock_guard<std::mutex> l(mu_);
    if (stop_) {
      if (in.waiter) in.waiter->Complete(absl::UnavailableError("raft: node stopped"));
      return;
    }
    inbox_.push_back(std::move(in));
    if (!running_ && started_ && combine) {
      running_ = true;
      run_here = true;
    } else {
      wake = !running_;  // else the holder drains the inbox before it lets go
    }
  }
  if (run_here) {
    Process(/*combiner=*/true);
  } else if (wake) {
    cv_.notify_all();
  }
}

absl::StatusOr<uint64_t> RaftNode::Submit(Input in, absl::Duration timeout) {
  auto w = std::make_shared<Waiter>();
  in.waiter = w;
  const bool combine = in.kind == Input::kPropose || in.kind == Input::kRead;
  Enqueue(std::move(in), combine);
  return w->Wait(timeout);
}

absl::StatusOr<uint64_t> RaftNode::ProposeAndWait(absl::string_view data, absl::Duration timeout) {
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
  Enqueue(std::move(in), /*combine=*/true);
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

void RaftNode::FailAllWaiters(const absl::Status& s) {
  for (auto& [i, w] : by_index_) w->Complete(s);
  by_index_.clear();
}

}  // namespace shoal::manager::raft
