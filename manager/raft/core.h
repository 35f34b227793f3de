// Core: the deterministic, I/O-free Raft consensus state machine (etcd-raft shape).
//
// Inputs: Step(message), Tick(), Propose(data), ProposeConfChange(), ReadIndex(),
// TransferLeadership(), Campaign(), Compact(). Outputs are collected in a Ready:
//   hard_state         persist (term, vote, commit) if set;
//   snapshot           persist and restore the state machine from it if set (before entries);
//   entries            append to the durable log; entries[0].index may be <= the last durable
//                      index: the durable suffix from there on is replaced;
//   messages           send AFTER the above is durable (fdatasync);
//   committed_entries  apply in order (after persisting);
//   read_states        ReadIndex results: serve a read once applied >= index.
// then call Advance(ready). No other call may happen between GetReady() and Advance().
//
// Protocol: PreVote and CheckQuorum on by default; the leader appends an empty no-op entry
// on election and accepts a configuration change only after it (and any previous change) is
// applied (single-server changes, raft-dev 2015-07-10); configuration changes take effect when
// applied; learners replicate but neither vote nor count for commit; commit only counts
// entries of the current term (§5.4.2); the leader counts its own log only once durable.
// Flow control: max_size_per_msg, max_inflight_msgs/bytes, max_uncommitted_size (proposals
// beyond it are refused with ResourceExhausted). Snapshots stream in chunks of
// snapshot_chunk_size with a window of snapshot_window chunks, each acknowledged.
//
// Not thread-safe: one owner thread drives it.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "api/raft.pb.h"
#include "manager/raft/log.h"
#include "manager/raft/progress.h"

namespace shoal::manager::raft {

struct Config {
  uint64_t id = 0;
  int election_tick = 10;
  int heartbeat_tick = 1;
  // Election timeouts are drawn from [election_tick, election_tick + election_jitter_ticks);
  // 0 means election_tick / 2. (etcd draws from [e, 2e); a narrower spread shortens the
  // expected failover — min of the followers' draws — while PreVote keeps split votes rare.)
  int election_jitter_ticks = 0;
  bool pre_vote = true;
  bool check_quorum = true;
  uint64_t max_size_per_msg = 1 << 20;
  size_t max_inflight_msgs = 256;
  uint64_t max_inflight_bytes = 64ull << 20;
  uint64_t max_uncommitted_size = 64ull << 20;
  uint64_t max_committed_per_ready = 16ull << 20;
  uint64_t snapshot_chunk_size = 1 << 20;
  int snapshot_window = 4;
  uint64_t seed = 1;  // randomized election timeouts
};

struct SnapshotData {
  api::SnapshotMetadata metadata;
  std::shared_ptr<const std::string> data;  // opaque; never null
};

struct ReadState {
  uint64_t index = 0;
  std::string context;
};

enum class Role { kFollower, kPreCandidate, kCandidate, kLeader };
const char* RoleName(Role r);

struct Ready {
  std::optional<api::HardState> hard_state;
  std::optional<SnapshotData> snapshot;
  std::vector<api::Entry> entries;
  std::vector<api::RaftMessage> messages;
  std::vector<api::Entry> committed_entries;
  std::vector<ReadState> read_states;
};

// What a node restarts from: its durable hard state, snapshot and log after the snapshot.
struct DurableState {
  api::HardState hard_state;
  std::optional<SnapshotData> snapshot;
  std::vector<api::Entry> entries;
};

// The durable state of a member of a brand-new cluster: entries 1..n adding each voter
// (term 1, committed), identical on every initial member.
DurableState Bootstrap(const std::vector<api::RaftMember>& members);

inline constexpr char kTransferContext[] = "transfer";

class Core {
 public:
  Core(Config config, DurableState state);

  void Tick();
  void Step(const api::RaftMessage& m);
  // Leader only. Returns the entry's index. FailedPrecondition "not the leader" elsewhere or
  // while a leadership transfer runs; ResourceExhausted past max_uncommitted_size.
  absl::StatusOr<uint64_t> Propose(std::string data);
  // As Propose; also FailedPrecondition while another change (or this term's no-op) is not
  // yet applied, and InvalidArgument for a change that makes no sense (add an existing voter).
  absl::StatusOr<uint64_t> ProposeConfChange(const api::ConfChange& cc);
  // Starts an election now (if this node may vote).
  void Campaign();
  // Leader only (no-op elsewhere): becomes a follower in the same term, as CheckQuorum does.
  // The node calls it when its own disk write has been stuck for an election timeout while
  // the followers' disks kept committing (overlapped leader fdatasync): a leader must not go
  // on leading on its followers' disks alone (etcd#13527).
  void StepDown();
  // Requests a linearizable read point; the result arrives as a ReadState with `context`.
  void ReadIndex(std::string context);
  absl::Status TransferLeadership(uint64_t target);
  // The application took a state machine snapshot covering every entry up to `index`
  // (<= applied): remember it for followers and drop the log up to index - keep.
  void Compact(uint64_t index, std::shared_ptr<const std::string> data, uint64_t keep = 0);
  // As Compact, for a snapshot at an earlier applied index taken off the raft thread: `conf`
  // is the configuration as of `index`. Ignored when a snapshot at or past `index` exists.
  void Compact(uint64_t index, const api::ConfState& conf, std::shared_ptr<const std::string> data,
               uint64_t keep);

  bool HasReady() const;
  Ready GetReady();
  void Advance(const Ready& ready) { Advance(ready, true); }
  // `durable` false: the Ready's entries were written but their fdatasync is still running
  // (a leader only: thesis §10.2.1 lets the leader's disk write overlap replication). The
  // leader does not count its own copy of them for commit until DurableTo(); meanwhile the
  // followers' acknowledgements alone may commit them. A follower must always persist before
  // acknowledging, so its Readies are always durable.
  void Advance(const Ready& ready, bool durable);
  // The local log is durable up to `index`, whose entry had term `term` (ignored when that
  // entry has since been replaced).
  void DurableTo(uint64_t index, uint64_t term);
  uint64_t durable() const { return durable_; }

  uint64_t id() const { return cfg_.id; }
  uint64_t term() const { return term_; }
  uint64_t vote() const { return vote_; }
  uint64_t lead() const { return lead_; }
  Role role() const { return role_; }
  const RaftLog& log() const { return log_; }
  const std::set<uint64_t>& voters() const { return voters_; }
  const std::set<uint64_t>& learners() const { return learners_; }
  const Progress* progress(uint64_t id) const;
  uint64_t lead_transferee() const { return lead_transferee_; }
  uint64_t uncommitted_size() const { return uncommitted_size_; }
  const std::optional<SnapshotData>& snapshot() const { return snapshot_; }

 private:
  void BecomeFollower(uint64_t term, uint64_t lead);
  void BecomePreCandidate();
  void BecomeCandidate();
  void BecomeLeader();
  void StartElection(bool transfer);
  void ResetRandomizedTimeout();
  bool Promotable() const { return voters_.count(cfg_.id) > 0; }
  size_t Quorum() const { return voters_.size() / 2 + 1; }
  bool InLease() const;

  void Send(api::RaftMessage m);
  void StepLeader(const api::RaftMessage& m);
  void StepCandidate(const api::RaftMessage& m);
  void StepFollower(const api::RaftMessage& m);
  void HandleVoteRequest(const api::RaftMessage& m);
  void HandleAppend(const api::RaftMessage& m);
  void HandleHeartbeat(const api::RaftMessage& m);
  void HandleSnapshotChunk(const api::RaftMessage& m);
  void HandleAppendResp(const api::RaftMessage& m, Progress& pr);
  void HandleReadIndex(uint64_t from, const std::string& ctx);
  void HandleHeartbeatResp(const api::RaftMessage& m, Progress& pr);

  bool SendAppend(uint64_t to, bool send_if_empty);
  void SendSnapshotChunks(uint64_t to, Progress& pr);
  void BroadcastAppend();
  void BroadcastHeartbeat(const std::string& ctx);
  bool MaybeCommit();
  absl::StatusOr<uint64_t> AppendLocal(api::EntryType type, std::string data);
  void ApplyConfChange(const api::ConfChange& cc);
  void ResetProgress();
  void AddProgress(uint64_t id, bool learner);
  void ReleaseReadsUpTo(size_t pos);
  api::HardState HardState() const;
  bool CurrentTermCommitted() const;

  Config cfg_;
  std::mt19937_64 rng_;
  uint64_t term_ = 0;
  uint64_t vote_ = 0;
  uint64_t lead_ = 0;
  Role role_ = Role::kFollower;
  RaftLog log_;
  std::set<uint64_t> voters_;
  std::set<uint64_t> learners_;
  std::map<uint64_t, Progress> prs_;  // leader only; includes self
  std::map<uint64_t, bool> votes_;
  int election_elapsed_ = 0;
  int heartbeat_elapsed_ = 0;
  int randomized_timeout_ = 0;
  uint64_t lead_transferee_ = 0;
  uint64_t pending_conf_index_ = 0;
  uint64_t uncommitted_size_ = 0;
  bool need_broadcast_ = false;

  // ReadIndex (leader): requests waiting for a quorum of heartbeat acks.
  struct PendingRead {
    uint64_t index;
    uint64_t from;  // requester; self for local
    std::string ctx;
    std::set<uint64_t> acks;
  };
  std::deque<PendingRead> reads_;
  std::vector<std::pair<uint64_t, std::string>> reads_before_commit_;  // (from, ctx)
  std::vector<ReadState> read_states_;

  std::optional<SnapshotData> snapshot_;          // latest local snapshot (to send)
  std::optional<SnapshotData> pending_snapshot_;  // received, to be persisted and restored
  std::string incoming_snap_;                     // follower: chunks received so far
  api::SnapshotMetadata incoming_meta_;
  bool incoming_active_ = false;

  std::vector<api::RaftMessage> msgs_;
  api::HardState prev_hs_;
  uint64_t handed_ = 0;   // last committed index handed out in a Ready
  uint64_t durable_ = 0;  // the local log is durable up to here (<= log_.stable())
};

}  // namespace shoal::manager::raft
