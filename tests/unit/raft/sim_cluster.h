// A deterministic in-memory cluster of raft Cores for tests: a simulated network (drop,
// duplicate, reorder, partition), simulated durable storage (each Ready is persisted
// atomically before its messages leave), crash-restart from that storage, a small KV state
// machine, and an invariant checker run after every processed Ready:
//   election safety (one leader per term), log matching, leader completeness,
//   state-machine safety (same entry applied at an index everywhere), durable commit monotone,
//   applied <= committed <= last.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "manager/raft/core.h"

namespace shoal::manager::raft::testing {

struct SimNode {
  uint64_t id = 0;
  std::unique_ptr<Core> core;
  bool up = true;
  // Durable state.
  api::HardState hs;
  std::optional<SnapshotData> snap;
  std::vector<api::Entry> wal;  // entries after the snapshot
  // A leader's deferred write (Advance(rd, false)): written, not yet durable; lost on a crash.
  std::vector<api::Entry> unsynced;
  std::optional<api::HardState> unsynced_hs;
  // State machine.
  std::map<std::string, std::string> kv;
  uint64_t applied = 0;
  std::vector<ReadState> reads;  // ReadIndex results not yet consumed
  // Observed results: index -> (term, result of the op) for ops applied on this node.
  std::map<uint64_t, std::pair<uint64_t, std::string>> results;
};

class SimCluster {
 public:
  SimCluster(std::vector<uint64_t> ids, uint64_t seed, Config tmpl = Config());

  SimNode& node(uint64_t id) { return *nodes_.at(id); }
  Core& core(uint64_t id) { return *nodes_.at(id)->core; }
  std::vector<uint64_t> ids() const;

  // Network.
  std::deque<api::RaftMessage>& net() { return net_; }
  void Cut(uint64_t a, uint64_t b) { cut_.insert({a, b}); cut_.insert({b, a}); }
  void CutOneWay(uint64_t from, uint64_t to) { cut_.insert({from, to}); }
  void Isolate(uint64_t id);
  void Heal() { cut_.clear(); }
  double drop_rate = 0, dup_rate = 0;
  bool reorder = false;
  // Probability that a leader's Ready with entries is written without waiting for its sync
  // (the sync completes later, at a random point; RaftNode's overlapped leader fdatasync).
  double defer_sync_rate = 0;
  // Completes one node's deferred sync (random node); false if none is pending.
  bool SyncOne();

  // Processes every node's Ready (persist, send, apply, Advance) and checks invariants.
  void ProcessAll();
  void Process(uint64_t id);
  // Delivers one message (front, or a random one when reorder); returns false if none.
  bool DeliverOne();
  // Delivers and processes until the network is quiet (bounded).
  void Stabilize(int max_rounds = 10000);
  void Tick(uint64_t id);
  void TickAll();
  // Ticks until some node is leader (and the cluster is stable); returns it (0 if none).
  uint64_t ElectLeader(int max_ticks = 1000);
  uint64_t Leader() const;  // highest-term up leader, or 0

  void Crash(uint64_t id);    // loses volatile state; stays down
  void Restart(uint64_t id);  // restarts from durable state
  // Adds a brand-new empty node (not yet in the configuration).
  void AddEmptyNode(uint64_t id);
  // Snapshot the KV at the applied index and compact (keep entries).
  void Snapshot(uint64_t id, uint64_t keep = 0);

  // Committed entries seen anywhere: index -> entry (the checker's reference).
  const std::map<uint64_t, api::Entry>& committed() const { return committed_; }
  uint64_t steps() const { return steps_; }

  static std::string EncodeKV(const std::map<std::string, std::string>& kv);
  static std::map<std::string, std::string> DecodeKV(const std::string& s);

 private:
  void CheckInvariants();
  void FlushUnsynced(SimNode& n);
  void ApplyEntry(SimNode& n, const api::Entry& e);
  std::unique_ptr<Core> NewCore(SimNode& n);

  Config tmpl_;
  std::mt19937_64 rng_;
  std::map<uint64_t, std::unique_ptr<SimNode>> nodes_;
  std::deque<api::RaftMessage> net_;
  std::set<std::pair<uint64_t, uint64_t>> cut_;
  std::map<uint64_t, uint64_t> leader_of_term_;
  std::map<uint64_t, api::Entry> committed_;
  std::map<uint64_t, uint64_t> durable_commit_;
  uint64_t steps_ = 0;
};

}  // namespace shoal::manager::raft::testing
