// Randomized simulation: 5 nodes under partitions, message loss, duplication, reordering,
// crash-restarts, snapshots and leaders stepping down (a stuck disk), with KV clients. Safety
// invariants are checked after every processed Ready (SimCluster), and the recorded client history
// must be linearizable.
#include <random>

#include "gtest/gtest.h"
#include "tests/unit/raft/linearizability.h"
#include "tests/unit/raft/sim_cluster.h"

namespace shoal::manager::raft {
namespace {

using testing::KvOp;
using testing::SimCluster;

struct Client {
  int id = 0;
  bool busy = false;
  KvOp op;
  uint64_t node = 0;
  bool via_read_index = false;
  uint64_t index = 0, term = 0;  // log ops
  std::string ctx;               // ReadIndex ops
  uint64_t read_at = 0;          // ReadIndex: index to wait for
  uint64_t deadline = 0;
};

class Simulation {
 public:
  Simulation(uint64_t seed, int clients) : c_({1, 2, 3, 4, 5}, seed, Tmpl()), rng_(seed * 7919) {
    c_.drop_rate = 0.05;
    c_.dup_rate = 0.02;
    c_.reorder = true;
    c_.defer_sync_rate = 0.5;  // leaders overlap their own disk writes with replication
    for (int i = 0; i < clients; ++i) clients_.push_back(Client{i});
  }
  static Config Tmpl() {
    Config t;
    t.snapshot_chunk_size = 64;
    t.max_size_per_msg = 512;
    return t;
  }

  void Run(int steps) {
    for (int s = 0; s < steps && !::testing::Test::HasFatalFailure(); ++s) {
      ++now_;
      uint64_t r = rng_() % 1000;
      if (r < 450) {
        c_.DeliverOne();
      } else if (r < 700) {
        c_.Tick(RandomNode());
      } else if (r < 800) {
        StartOp(clients_[rng_() % clients_.size()]);
      } else if (r < 985) {
        // Mostly quiet: elections need ~10-20 ticks per node to play out.
        if (rng_() % 40 == 0) Partition();
        // A leader whose own disk write is stuck steps down (overlapped leader fdatasync).
        if (rng_() % 400 == 0 && c_.Leader() != 0 && c_.node(c_.Leader()).up) {
          c_.core(c_.Leader()).StepDown();
          ++step_downs_;
        }
      } else if (r < 990) {
        if (rng_() % 4 == 0) Crash();
      } else if (r < 995) {
        if (rng_() % 2 == 0) RestartOne();
      } else {
        c_.Snapshot(RandomNode(), rng_() % 5);
      }
      Complete();
    }
  }

  // Heals everything, lets the cluster settle, then reads every key through the log.
  void Finish() {
    c_.Heal();
    c_.drop_rate = 0;
    c_.dup_rate = 0;
    for (uint64_t id : c_.ids()) {
      if (!c_.node(id).up) c_.Restart(id);
    }
    for (int i = 0; i < 3000 && !AllIdle(); ++i) {
      ++now_;
      c_.DeliverOne();
      if (i % 3 == 0) c_.TickAll();
      Complete();
    }
    for (auto& cl : clients_) {
      if (cl.busy) Fail(cl);
    }
    uint64_t l = c_.ElectLeader();
    ASSERT_NE(l, 0u) << "no leader after healing";
    for (const std::string& key : keys_) {
      ++now_;
      auto idx = c_.core(l).Propose("G " + key);
      ASSERT_TRUE(idx.ok()) << idx.status();
      uint64_t term = c_.core(l).term();
      for (int i = 0; i < 2000 && !c_.node(l).results.count(*idx); ++i) {
        c_.Stabilize();
        c_.TickAll();
      }
      auto it = c_.node(l).results.find(*idx);
      ASSERT_NE(it, c_.node(l).results.end());
      ASSERT_EQ(it->second.first, term);
      history_.push_back({KvOp::kGet, key, it->second.second, now_, ++now_, -1});
    }
  }

  const std::vector<KvOp>& history() const { return history_; }
  SimCluster& cluster() { return c_; }
  int acked_puts() const { return acked_puts_; }
  int step_downs() const { return step_downs_; }

 private:
  uint64_t RandomNode() { return 1 + rng_() % 5; }
  bool AllIdle() const {
    for (auto& cl : clients_) {
      if (cl.busy) return false;
    }
    return true;
  }

  void StartOp(Client& cl) {
    if (cl.busy) return;
    uint64_t node = c_.Leader() != 0 && rng_() % 4 != 0 ? c_.Leader() : RandomNode();
    if (!c_.node(node).up) return;
    std::string key = "k" + std::to_string(rng_() % 3);
    keys_.insert(key);
    cl.op = KvOp{};
    cl.op.key = key;
    cl.op.client = cl.id;
    cl.op.call = now_;
    cl.node = node;
    cl.deadline = now_ + 1500;
    cl.via_read_index = false;
    Core& core = c_.core(node);
    if (rng_() % 2 == 0) {
      cl.op.kind = KvOp::kPut;
      cl.op.value = "v" + std::to_string(++next_value_);
      auto idx = core.Propose("P " + key + " " + cl.op.value);
      if (!idx.ok()) return;  // refused: never happened
      cl.index = *idx;
      cl.term = core.term();
    } else if (rng_() % 2 == 0) {
      cl.op.kind = KvOp::kGet;
      auto idx = core.Propose("G " + key);
      if (!idx.ok()) return;
      cl.index = *idx;
      cl.term = core.term();
    } else {
      cl.op.kind = KvOp::kGet;
      cl.via_read_index = true;
      cl.ctx = "c" + std::to_string(cl.id) + "-" + std::to_string(now_);
      cl.read_at = 0;
      core.ReadIndex(cl.ctx);
    }
    cl.busy = true;
    c_.Process(node);
  }

  void Fail(Client& cl) {
    // Outcome unknown: a put may or may not have happened; a get tells nothing.
    if (cl.op.kind == KvOp::kPut) {
      cl.op.ret = KvOp::kUnknown;
      history_.push_back(cl.op);
    }
    cl.busy = false;
  }

  void Complete() {
    for (auto& cl : clients_) {
      if (!cl.busy) continue;
      testing::SimNode& n = c_.node(cl.node);
      if (!n.up || now_ > cl.deadline) {
        Fail(cl);
        continue;
      }
      if (cl.via_read_index) {
        for (auto it = n.reads.begin(); it != n.reads.end(); ++it) {
          if (it->context == cl.ctx) {
            cl.read_at = it->index + 1;  // +1: 0 means "not yet"
            n.reads.erase(it);
            break;
          }
        }
        if (cl.read_at != 0 && n.applied >= cl.read_at - 1) {
          auto v = n.kv.find(cl.op.key);
          cl.op.value = v == n.kv.end() ? "" : v->second;
          cl.op.ret = now_;
          history_.push_back(cl.op);
          cl.busy = false;
        }
        continue;
      }
      auto it = n.results.find(cl.index);
      if (it == n.results.end()) continue;
      cl.busy = false;
      if (it->second.first != cl.term) {
        // Another entry committed at our index: ours can never commit.
        continue;
      }
      cl.op.ret = now_;
      if (cl.op.kind == KvOp::kGet) cl.op.value = it->second.second;
      if (cl.op.kind == KvOp::kPut) ++acked_puts_;
      history_.push_back(cl.op);
    }
  }

  void Crash() {
    int down = 0;
    for (uint64_t id : c_.ids()) down += !c_.node(id).up;
    if (down >= 2) return;
    uint64_t id = rng_() % 3 == 0 && c_.Leader() ? c_.Leader() : RandomNode();
    if (c_.node(id).up) c_.Crash(id);
  }

  void RestartOne() {
    for (uint64_t id : c_.ids()) {
      if (!c_.node(id).up) {
        c_.Restart(id);
        return;
      }
    }
  }

  void Partition() {
    switch (rng_() % 4) {
      case 0:
        c_.Heal();
        break;
      case 1:
        c_.Isolate(RandomNode());
        break;
      case 2: {
        uint64_t a = RandomNode(), b = RandomNode();
        if (a != b) c_.Cut(a, b);
        break;
      }
      default: {
        uint64_t a = RandomNode(), b = RandomNode();
        if (a != b) c_.CutOneWay(a, b);
        break;
      }
    }
  }

  SimCluster c_;
  std::mt19937_64 rng_;
  std::vector<Client> clients_;
  std::vector<KvOp> history_;
  std::set<std::string> keys_;
  uint64_t now_ = 0;
  uint64_t next_value_ = 0;
  int acked_puts_ = 0;
  int step_downs_ = 0;
};

TEST(RaftSimulation, SafetyAndLinearizabilityUnderFaults) {
  int total_acked = 0, total_ops = 0, step_downs = 0;
  for (uint64_t seed = 1; seed <= 40; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    Simulation sim(seed, 4);
    sim.Run(8000);
    ASSERT_FALSE(::testing::Test::HasFatalFailure());
    sim.Finish();
    ASSERT_FALSE(::testing::Test::HasFatalFailure());
    auto r = testing::CheckLinearizable(sim.history());
    ASSERT_TRUE(r.ok) << "key " << r.key << " is not linearizable:\n" << r.details;
    total_acked += sim.acked_puts();
    total_ops += sim.history().size();
    step_downs += sim.step_downs();
  }
  // The workload must actually exercise the system (not a vacuous pass).
  EXPECT_GT(total_acked, 200);
  EXPECT_GT(total_ops, 1000);
  EXPECT_GT(step_downs, 10);
  std::printf("simulation: %d ops recorded, %d acknowledged puts, %d leader step-downs\n",
              total_ops, total_acked, step_downs);
}

TEST(Linearizability, DetectsStaleReadAndLostWrite) {
  // put v1 completes, then a get that starts later still returns the old value.
  std::vector<KvOp> stale = {{KvOp::kPut, "k", "v1", 1, 2, 0}, {KvOp::kGet, "k", "", 3, 4, 1}};
  EXPECT_FALSE(testing::CheckLinearizable(stale).ok);
  // Lost acknowledged write: put v1 acked, later read sees the value before it.
  std::vector<KvOp> lost = {{KvOp::kPut, "k", "v0", 1, 2, 0},
                            {KvOp::kPut, "k", "v1", 3, 4, 0},
                            {KvOp::kGet, "k", "v0", 5, 6, 1}};
  EXPECT_FALSE(testing::CheckLinearizable(lost).ok);
  // Concurrent ops may go either way; an unknown put may or may not happen.
  std::vector<KvOp> fine = {{KvOp::kPut, "k", "v1", 1, 5, 0},
                            {KvOp::kGet, "k", "v1", 2, 3, 1},
                            {KvOp::kPut, "k", "v2", 6, KvOp::kUnknown, 2},
                            {KvOp::kGet, "k", "v1", 7, 8, 1},
                            {KvOp::kGet, "k", "v2", 9, 10, 1}};
  EXPECT_TRUE(testing::CheckLinearizable(fine).ok);
  // But once v2 is seen, v1 cannot come back.
  auto bad = fine;
  bad.push_back({KvOp::kGet, "k", "v1", 11, 12, 1});
  EXPECT_FALSE(testing::CheckLinearizable(bad).ok);
}

}  // namespace
}  // namespace shoal::manager::raft
