// RaftNode: one raft member — Core + Storage + Transport + StateMachine — implementing
// Proposer.
//
// One thread at a time owns the Core and the Storage: whichever holds the loop token. A thread
// that hands in a raft message (the transport's receiving thread), a proposal or a read while
// no one holds the token takes it and runs the loop itself (a combiner: no wake-up of another
// thread on the commit path); otherwise its input is queued and the holder drains the queue
// before it lets go. The loop thread takes the token for ticks and for inputs queued without
// combining. Each iteration takes queued inputs (messages from the transport, proposals,
// admin requests), ticks the core every `timer_resolution` (see NodeOptions), and then for
// each Ready: sends the leader's
// replication messages, applies committed entries to the StateMachine (this is the one apply
// thread) and wakes their proposers, persists (one WAL record for every proposal batched into
// that Ready: group commit), sends the remaining messages, and advances the core. A follower
// fdatasyncs before it acknowledges, and so does the leader (it sends its appends first), unless
// overlap_leader_sync moves the leader's fdatasync to a sync thread (see NodeOptions). Every
// `snapshot_interval` applied entries it captures a StateMachine snapshot (CaptureSnapshot,
// on the loop); a writer thread serializes it and writes the snapshot file, and only then is
// the log compacted (keeping `snapshot_keep` entries for slow followers).
//
// Membership: a member added through AddMember() joins as a learner and is promoted to a
// voter by the leader once it has caught up with the commit index.
//
// All public methods are thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "manager/raft/core.h"
#include "manager/raft/latency.h"
#include "manager/raft/state_machine.h"
#include "manager/raft/storage.h"
#include "manager/raft/transport.h"

namespace shoal::manager::raft {

struct NodeOptions {
  uint64_t id = 0;
  std::string addr;  // this member's advertised address (host:port)
  std::string dir;   // storage directory
  absl::Duration tick = absl::Milliseconds(100);
  Config raft;  // election_tick 10, heartbeat_tick 1, PreVote, CheckQuorum by default
  // The core is ticked tick / timer_resolution times per `tick` with its election, heartbeat
  // and jitter tick counts scaled to match: the timeouts stay the same in time (election 1 s,
  // heartbeat 100 ms by default), but the randomized election timeouts spread at this
  // granularity. With whole 100 ms ticks the followers' timeouts took only 5 values, often
  // expired in the same tick and split the vote (+1 election timeout; docs/benchmarks.md).
  absl::Duration timer_resolution = absl::Milliseconds(10);
  // The leader's WAL fdatasync on a sync thread, overlapping replication (thesis §10.2.1; an
  // entry then commits once any majority has it on disk, which may be the followers alone).
  // Disk-stall fencing: a leader whose fdatasync has run for an election timeout steps down
  // (otherwise it would keep heart-beating and committing through its followers with a hung
  // disk: etcd#13527); with the synchronous write its loop simply goes silent. Off by default
  // (see docs/benchmarks.md for what it does to the 1-client point).
  bool overlap_leader_sync = false;
  // Initial members of a brand-new cluster (used only when `dir` is empty). Empty: this
  // member waits to be added by the leader (join).
  std::vector<api::RaftMember> bootstrap;
  // Addresses known up front (a joining member learns them from the Join response).
  std::vector<api::RaftMember> peers;
  uint64_t snapshot_interval = 10000;
  uint64_t snapshot_keep = 500;
  StorageOptions storage;
  TransportOptions transport;
};

enum class Reachability { kUnknown, kReachable, kUnreachable };
const char* ReachabilityName(Reachability r);

// One member of the configuration as this member sees it (RaftNode::Peers()).
struct PeerStatus {
  uint64_t raft_id = 0;
  std::string addr;
  bool self = false;
  bool is_leader = false;  // the leader this member currently knows
  bool learner = false;
  // Self: reachable. On the leader: reachable when a message from the peer arrived within the
  // election timeout, unreachable when none did although this member has led for at least that
  // long (unknown before). On a follower: the known leader is reachable or unreachable by the
  // same rule (heard within the election timeout); every other peer is unknown.
  Reachability reachability = Reachability::kUnknown;
  uint64_t match = 0;  // leader only: the peer's acknowledged log index (self: last durable)
  // Time since the last message from the peer; InfiniteDuration if none since this start.
  absl::Duration since_contact = absl::InfiniteDuration();
};

struct NodeStatus {
  uint64_t id = 0;
  uint64_t term = 0;
  uint64_t leader = 0;
  Role role = Role::kFollower;
  uint64_t commit = 0;
  uint64_t applied = 0;
  std::vector<api::RaftMember> members;  // voters and learners with their addresses
  std::vector<uint64_t> learners;
};

class RaftNode final : public Proposer {
 public:
  static absl::StatusOr<std::unique_ptr<RaftNode>> Create(NodeOptions opts, StateMachine* sm);
  ~RaftNode() override;

  // Register on this member's gRPC server.
  api::Raft::Service* service() { return service_.get(); }
  void Start();
  void Stop();

  absl::StatusOr<uint64_t> ProposeAndWait(absl::string_view data, absl::Duration timeout) override;
  bool IsLeader() const override { return is_leader_.load(); }
  // Non-blocking ProposeAndWait: `done` runs (on the thread running the raft loop — possibly
  // this caller's, or a transport receiving thread — or inline for "not the
  // leader") once the entry is applied or its outcome is known to be lost/unknown; no timeout
  // of its own (CheckQuorum bounds how long a deposed leader keeps waiting).
  void ProposeAsync(absl::string_view data, std::function<void(absl::StatusOr<uint64_t>)> done);

  // Linearizable read barrier (ReadIndex): returns once this member has applied everything
  // committed before the call; the caller then reads its state machine.
  absl::Status ReadBarrier(absl::Duration timeout);
  // Leader only: adds `m` (learner first, promoted automatically once caught up).
  absl::Status AddMember(const api::RaftMember& m, absl::Duration timeout);
  absl::Status RemoveMember(uint64_t raft_id, absl::Duration timeout);
  absl::Status TransferLeadership(uint64_t target, absl::Duration timeout);

  NodeStatus Status() const;
  // Per-stage latencies since the last reset (one line per stage; see StageTimes), e.g. for
  // finding where a slow write spent its time. `reset` starts a new measurement window.
  std::string StageStats(bool reset);
  // Every member of the configuration (voters and learners, self included), ordered by raft
  // id. A consistent snapshot; reachability is evaluated at the time of the call.
  std::vector<PeerStatus> Peers() const;
  uint64_t id() const { return opts_.id; }

 private:
  struct Waiter;
  struct Input;
  RaftNode(NodeOptions opts, StateMachine* sm);
  absl::Status Init();
  void Loop();
  // Queues `in`. With `combine`, the calling thread runs the loop itself (Process) when no
  // thread holds the token; callers that combine must hold no lock the state machine's
  // Apply or a ProposeAsync callback could need.
  void Enqueue(Input in, bool combine = false);
  // Runs loop iterations on the calling thread, which holds the token (running_), until
  // nothing is queued and no tick is due; then releases the token. A `combiner` (not the loop
  // thread) hands the rest to the loop thread after kCombinerRounds iterations.
  void Process(bool combiner);
  static constexpr int kCombinerRounds = 4;
  void Iterate(std::deque<Input>& batch, bool tick);
  void HandleInput(Input& in);
  // Returns false when the Ready's entries were written but their fdatasync was handed to the
  // sync thread (leader only; Core::Advance(rd, false)).
  bool HandleReady(Ready& rd);
  void SyncLoop();
  void ApplyEntry(const api::Entry& e);
  void RestoreSnapshot(const SnapshotData& s);
  void MaybeSnapshot();
  void FailAllWaiters(const absl::Status& s);
  void PromoteCaughtUpLearners();
  // Overlapped leader fdatasync: a leader whose sync has run for an election timeout steps
  // down (disk-stall fencing; with the synchronous write its loop simply goes silent).
  void MaybeStepDownOnStuckSync();
  void PublishStatus();
  absl::StatusOr<uint64_t> Submit(Input in, absl::Duration timeout);

  NodeOptions opts_;
  StateMachine* sm_;
  std::unique_ptr<Storage> storage_;
  std::unique_ptr<Core> core_;
  Transport transport_;
  std::unique_ptr<api::Raft::Service> service_;
  // Snapshot files are written (and fsynced) off the loop thread; the WAL is compacted
  // only after the file is durable (kSnapshotSaved input).
  std::thread snap_writer_;
  bool snap_writing_ = false;  // token holder only

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Input> inbox_;
  bool stop_ = false;
  bool started_ = false;   // under mu_
  bool running_ = false;   // under mu_: the loop token (a thread is in Process)
  int token_waiters_ = 0;  // under mu_: threads waiting for running_ to clear
  std::chrono::steady_clock::time_point next_tick_;  // under mu_
  std::chrono::nanoseconds tick_len_{0};             // core tick period (set in Init)
  std::thread thread_;                               // ticks and non-combining inputs
  std::atomic<bool> is_leader_{false};

  // The leader's WAL fdatasync runs here, overlapping replication (thesis §10.2.1): the loop
  // posts the newest written entry; each fdatasync covers every write before it (requests
  // coalesce: group commit) and reports back as a kDurable input.
  struct SyncRequest {
    base::UniqueFd fd;
    uint64_t index = 0;
    uint64_t term = 0;
  };
  std::mutex sync_mu_;
  std::condition_variable sync_cv_;
  std::optional<SyncRequest> sync_req_;
  // steady_clock nanoseconds at which the sync thread's running fdatasync started; 0: idle.
  std::atomic<int64_t> sync_started_ns_{0};
  bool sync_stop_ = false;
  std::thread syncer_;

  // Loop state (owned by the token holder).
  std::map<uint64_t, std::shared_ptr<Waiter>> by_index_;  // proposals awaiting apply
  struct PendingRead {
    std::string ctx;
    std::shared_ptr<Waiter> waiter;
    int age = 0;  // ticks without an answer; re-asked (e.g. no leader was known yet)
  };
  std::vector<PendingRead> reads_;
  std::vector<std::pair<uint64_t, std::shared_ptr<Waiter>>> read_applies_;  // index -> waiter
  std::map<uint64_t, api::RaftMember> members_;
  std::vector<uint64_t> removed_;
  uint64_t applied_ = 0;
  uint64_t last_snapshot_ = 0;
  uint64_t read_seq_ = 0;
  bool was_leader_ = false;
  int sub_ticks_ = 1;   // core ticks per logical tick (tick / timer_resolution)
  int sub_tick_n_ = 0;  // core ticks since the last logical tick

  // Where writes spend their time (the token holder records; StageStats() reads).
  struct StageTimes {
    LatencyHistogram inbox_wait;    // any input: Enqueue() -> handled by the loop
    LatencyHistogram wal_save;      // Storage::Save of a Ready with entries (the leader's
                                    // fdatasync is not in it: sync thread)
    LatencyHistogram ready;         // one whole HandleReady
    LatencyHistogram first_ack;     // leader: proposal enqueued -> first follower ack arrives
    LatencyHistogram commit;        // leader: proposal enqueued -> applied (reply sent)
    LatencyHistogram follower_ack;  // follower: append received -> ack handed to transport
  };
  std::mutex stats_mu_;
  StageTimes stages_;
  uint64_t first_ack_upto_ = 0;  // token holder: proposals up to here have their first ack
  std::chrono::steady_clock::time_point append_at_{};  // loop: oldest unacked append input

  mutable std::mutex status_mu_;
  NodeStatus status_;
  std::map<uint64_t, uint64_t> match_;  // leader only: peer -> match (under status_mu_)
  std::chrono::steady_clock::time_point leader_since_;  // under status_mu_

  // Last message received from each peer (set by the transport's receiving threads).
  mutable std::mutex contact_mu_;
  std::map<uint64_t, std::chrono::steady_clock::time_point> last_contact_;
};

}  // namespace shoal::manager::raft
