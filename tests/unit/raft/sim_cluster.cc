#include "tests/unit/raft/sim_cluster.h"

#include <algorithm>
#include <sstream>

#include "gtest/gtest.h"

namespace shoal::manager::raft::testing {

SimCluster::SimCluster(std::vector<uint64_t> ids, uint64_t seed, Config tmpl)
    : tmpl_(tmpl), rng_(seed) {
  tmpl_.seed = seed;
  std::vector<api::RaftMember> members;
  for (uint64_t id : ids) {
    api::RaftMember m;
    m.set_raft_id(id);
    members.push_back(m);
  }
  for (uint64_t id : ids) {
    auto n = std::make_unique<SimNode>();
    n->id = id;
    DurableState ds = Bootstrap(members);
    n->hs = ds.hard_state;
    n->wal = ds.entries;
    n->core = NewCore(*n);
    nodes_[id] = std::move(n);
  }
  ProcessAll();
}

std::vector<uint64_t> SimCluster::ids() const {
  std::vector<uint64_t> out;
  for (auto& [id, n] : nodes_) out.push_back(id);
  return out;
}

std::unique_ptr<Core> SimCluster::NewCore(SimNode& n) {
  Config c = tmpl_;
  c.id = n.id;
  c.seed = tmpl_.seed + steps_;
  DurableState ds;
  ds.hard_state = n.hs;
  ds.snapshot = n.snap;
  ds.entries = n.wal;
  n.kv = n.snap ? DecodeKV(*n.snap->data) : std::map<std::string, std::string>();
  n.applied = n.snap ? n.snap->metadata.index() : 0;
  n.reads.clear();
  return std::make_unique<Core>(c, std::move(ds));
}

void SimCluster::Isolate(uint64_t id) {
  for (auto& [other, n] : nodes_) {
    if (other != id) Cut(id, other);
  }
}

std::string SimCluster::EncodeKV(const std::map<std::string, std::string>& kv) {
  std::string out;
  for (auto& [k, v] : kv) out += k + "=" + v + "\n";
  return out;
}

std::map<std::string, std::string> SimCluster::DecodeKV(const std::string& s) {
  std::map<std::string, std::string> kv;
  std::istringstream in(s);
  std::string line;
  while (std::getline(in, line)) {
    auto eq = line.find('=');
    if (eq != std::string::npos) kv[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return kv;
}

// Entry data: "P <key> <value>" (put, result "ok") or "G <key>" (get, result = value).
void SimCluster::ApplyEntry(SimNode& n, const api::Entry& e) {
  if (e.type() != api::ENTRY_TYPE_NORMAL || e.data().empty()) return;
  std::istringstream in(e.data());
  std::string op, key, value;
  in >> op >> key >> value;
  std::string result;
  if (op == "P") {
    n.kv[key] = value;
    result = "ok";
  } else if (op == "G") {
    auto it = n.kv.find(key);
    result = it == n.kv.end() ? "" : it->second;
  }
  n.results[e.index()] = {e.term(), result};
}

void SimCluster::Process(uint64_t id) {
  SimNode& n = *nodes_.at(id);
  if (!n.up) return;
  int guard = 0;
  while (n.core->HasReady()) {
    ASSERT_LT(++guard, 100000) << "Ready loop does not settle on node " << id;
    Ready rd = n.core->GetReady();
    std::uniform_real_distribution<double> u(0, 1);
    const bool defer = defer_sync_rate > 0 && n.core->role() == Role::kLeader && !rd.snapshot &&
                       !rd.entries.empty() &&
                       (!rd.hard_state || (rd.hard_state->term() == n.hs.term() &&
                                           rd.hard_state->vote() == n.hs.vote())) &&
                       u(rng_) < defer_sync_rate;
    if (defer) {
      // Written only: a crash before SyncOne() loses it (the whole record, as a torn tail).
      for (auto& e : rd.entries) n.unsynced.push_back(e);
      if (rd.hard_state) {
        EXPECT_GE(rd.hard_state->commit(), durable_commit_[id]) << "durable commit went back";
        durable_commit_[id] = rd.hard_state->commit();
        n.unsynced_hs = *rd.hard_state;
      }
    } else {
      FlushUnsynced(n);  // a synced write makes every earlier write durable
    }
    // Persist (atomically, as a whole Ready).
    if (rd.snapshot) {
      n.snap = rd.snapshot;
      uint64_t si = rd.snapshot->metadata.index();
      std::vector<api::Entry> keep;
      for (auto& e : n.wal) {
        if (e.index() > si) keep.push_back(e);
      }
      // Entries after a snapshot install are discarded by the core; mirror that.
      n.wal.clear();
      n.kv = DecodeKV(*rd.snapshot->data);
      n.applied = si;
    }
    if (!defer && !rd.entries.empty()) {
      uint64_t first = rd.entries.front().index();
      while (!n.wal.empty() && n.wal.back().index() >= first) n.wal.pop_back();
      for (auto& e : rd.entries) n.wal.push_back(e);
    }
    if (!defer && rd.hard_state) {
      EXPECT_GE(rd.hard_state->commit(), durable_commit_[id]) << "durable commit went back";
      durable_commit_[id] = rd.hard_state->commit();
      n.hs = *rd.hard_state;
    }
    for (auto& m : rd.messages) net_.push_back(std::move(m));
    for (auto& e : rd.committed_entries) {
      EXPECT_EQ(e.index(), n.applied + 1) << "apply gap on node " << id;
      auto [it, fresh] = committed_.emplace(e.index(), e);
      if (!fresh) {
        EXPECT_EQ(it->second.term(), e.term()) << "state machine safety at " << e.index();
        EXPECT_EQ(it->second.data(), e.data()) << "state machine safety at " << e.index();
      }
      ApplyEntry(n, e);
      n.applied = e.index();
    }
    for (auto& r : rd.read_states) n.reads.push_back(r);
    if (defer) {
      n.core->Advance(rd, false);
    } else {
      n.core->Advance(rd);
    }
    ++steps_;
    CheckInvariants();
  }
}

void SimCluster::FlushUnsynced(SimNode& n) {
  // Entries a snapshot taken meanwhile already covers are not kept (the WAL holds only what
  // follows the snapshot).
  const uint64_t si = n.snap ? n.snap->metadata.index() : 0;
  if (!n.unsynced.empty()) {
    uint64_t first = std::max(n.unsynced.front().index(), si + 1);
    while (!n.wal.empty() && n.wal.back().index() >= first) n.wal.pop_back();
    for (auto& e : n.unsynced) {
      if (e.index() > si) n.wal.push_back(e);
    }
  }
  if (n.unsynced_hs) n.hs = *n.unsynced_hs;
  n.unsynced.clear();
  n.unsynced_hs.reset();
}

bool SimCluster::SyncOne() {
  std::vector<uint64_t> pending;
  for (auto& [id, n] : nodes_) {
    if (n->up && (!n->unsynced.empty() || n->unsynced_hs)) pending.push_back(id);
  }
  if (pending.empty()) return false;
  SimNode& n = *nodes_.at(pending[rng_() % pending.size()]);
  const api::Entry last = n.unsynced.empty() ? api::Entry() : n.unsynced.back();
  FlushUnsynced(n);
  if (last.index() > 0) n.core->DurableTo(last.index(), last.term());
  Process(n.id);
  return true;
}

void SimCluster::ProcessAll() {
  for (auto& [id, n] : nodes_) Process(id);
}

bool SimCluster::DeliverOne() {
  if (defer_sync_rate > 0 && (net_.empty() || rng_() % 4 == 0) && SyncOne()) return true;
  if (net_.empty()) return false;
  size_t pos = reorder ? rng_() % net_.size() : 0;
  api::RaftMessage m = std::move(net_[pos]);
  net_.erase(net_.begin() + pos);
  std::uniform_real_distribution<double> u(0, 1);
  if (cut_.count({m.from(), m.to()}) || !nodes_.count(m.to()) || !nodes_.at(m.to())->up) {
    return true;
  }
  if (drop_rate > 0 && u(rng_) < drop_rate) return true;
  if (dup_rate > 0 && u(rng_) < dup_rate) net_.push_back(m);
  nodes_.at(m.to())->core->Step(m);
  Process(m.to());
  return true;
}

void SimCluster::Stabilize(int max_rounds) {
  ProcessAll();
  for (int i = 0; i < max_rounds && DeliverOne(); ++i) {
  }
}

void SimCluster::Tick(uint64_t id) {
  SimNode& n = *nodes_.at(id);
  if (!n.up) return;
  n.core->Tick();
  Process(id);
}

void SimCluster::TickAll() {
  for (auto& [id, n] : nodes_) Tick(id);
}

uint64_t SimCluster::Leader() const {
  uint64_t best = 0, term = 0;
  for (auto& [id, n] : nodes_) {
    if (n->up && n->core->role() == Role::kLeader && n->core->term() >= term) {
      best = id;
      term = n->core->term();
    }
  }
  return best;
}

uint64_t SimCluster::ElectLeader(int max_ticks) {
  for (int i = 0; i < max_ticks; ++i) {
    Stabilize();
    uint64_t l = Leader();
    if (l != 0) return l;
    TickAll();
  }
  return 0;
}

void SimCluster::Crash(uint64_t id) {
  SimNode& n = *nodes_.at(id);
  n.up = false;
  n.core.reset();
  n.unsynced.clear();  // written, never synced: gone
  n.unsynced_hs.reset();
  durable_commit_[id] = n.hs.commit();
}

void SimCluster::Restart(uint64_t id) {
  SimNode& n = *nodes_.at(id);
  n.core = NewCore(n);
  n.up = true;
  Process(id);
}

void SimCluster::AddEmptyNode(uint64_t id) {
  auto n = std::make_unique<SimNode>();
  n->id = id;
  n->core = NewCore(*n);
  nodes_[id] = std::move(n);
}

void SimCluster::Snapshot(uint64_t id, uint64_t keep) {
  SimNode& n = *nodes_.at(id);
  if (!n.up || n.applied == 0 || n.applied <= n.core->log().snapshot_index()) return;
  auto data = std::make_shared<const std::string>(EncodeKV(n.kv));
  n.core->Compact(n.applied, data, keep);
  n.snap = n.core->snapshot();
  uint64_t first = n.core->log().first_index();
  std::vector<api::Entry> wal;
  for (auto& e : n.wal) {
    if (e.index() > n.snap->metadata.index()) wal.push_back(e);
  }
  (void)first;
  n.wal = std::move(wal);
}

void SimCluster::CheckInvariants() {
  for (auto& [id, n] : nodes_) {
    if (!n->up) continue;
    const Core& c = *n->core;
    const RaftLog& log = c.log();
    ASSERT_LE(log.applied(), log.committed()) << "node " << id;
    ASSERT_LE(log.committed(), log.last_index()) << "node " << id;
    if (c.role() == Role::kLeader) {
      auto [it, fresh] = leader_of_term_.emplace(c.term(), id);
      ASSERT_EQ(it->second, id) << "two leaders in term " << c.term();
      if (fresh) {
        // Leader completeness: every committed entry is in the new leader's log.
        for (auto& [idx, e] : committed_) {
          if (idx <= log.snapshot_index()) continue;
          ASSERT_LE(idx, log.last_index()) << "leader " << id << " misses committed " << idx;
          ASSERT_EQ(log.At(idx).term(), e.term()) << "leader " << id << " differs at " << idx;
        }
      }
    }
    // Committed prefix agrees with the reference.
    for (uint64_t i = log.first_index(); i <= log.committed(); ++i) {
      auto ref = committed_.find(i);
      if (ref == committed_.end()) continue;
      ASSERT_EQ(log.At(i).term(), ref->second.term()) << "node " << id << " index " << i;
    }
  }
  // Log matching: if two logs agree on (index, term), they agree on everything before it.
  std::vector<const RaftLog*> logs;
  for (auto& [id, n] : nodes_) {
    if (n->up) logs.push_back(&n->core->log());
  }
  for (size_t a = 0; a < logs.size(); ++a) {
    for (size_t b = a + 1; b < logs.size(); ++b) {
      const RaftLog& x = *logs[a];
      const RaftLog& y = *logs[b];
      uint64_t lo = std::max(x.first_index(), y.first_index());
      uint64_t hi = std::min(x.last_index(), y.last_index());
      bool matched = false;
      for (uint64_t i = hi; i >= lo && i > 0; --i) {
        bool same = x.At(i).term() == y.At(i).term();
        if (matched) {
          ASSERT_TRUE(same) << "log matching violated at " << i;
          ASSERT_EQ(x.At(i).data(), y.At(i).data()) << "log matching violated at " << i;
        } else if (same) {
          matched = true;
          ASSERT_EQ(x.At(i).data(), y.At(i).data()) << "same term, different entry at " << i;
        }
      }
    }
  }
}

}  // namespace shoal::manager::raft::testing
