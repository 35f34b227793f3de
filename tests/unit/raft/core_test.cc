// Paper scenarios and feature tests for the raft core, each on a deterministic SimCluster
// whose invariant checker runs after every processed Ready.
#include "manager/raft/core.h"

#include <map>
#include <memory>

#include "gtest/gtest.h"
#include "tests/unit/raft/sim_cluster.h"

namespace shoal::manager::raft {
namespace {

using testing::SimCluster;

api::RaftMessage Msg(api::MessageType t, uint64_t from, uint64_t to, uint64_t term) {
  api::RaftMessage m;
  m.set_type(t);
  m.set_from(from);
  m.set_to(to);
  m.set_term(term);
  return m;
}

std::string EntryData(uint64_t index, uint64_t term) {
  return "P k" + std::to_string(index) + " t" + std::to_string(term);
}

// A core whose log has entries with the given terms (indexes 1..n) and voters {1,2,3}.
DurableState LogWithTerms(const std::vector<uint64_t>& terms, uint64_t term, uint64_t commit = 0) {
  DurableState ds;
  SnapshotData sd;
  for (uint64_t v : {1, 2, 3}) sd.metadata.mutable_conf_state()->add_voters(v);
  sd.data = std::make_shared<const std::string>();
  ds.snapshot = sd;
  for (size_t i = 0; i < terms.size(); ++i) {
    api::Entry e;
    e.set_index(i + 1);
    e.set_term(terms[i]);
    e.set_data(EntryData(i + 1, terms[i]));
    ds.entries.push_back(e);
  }
  ds.hard_state.set_term(term);
  ds.hard_state.set_commit(commit);
  return ds;
}

TEST(RaftCore, ElectsOneLeaderAndReplicates) {
  SimCluster c({1, 2, 3}, 7);
  uint64_t l = c.ElectLeader();
  ASSERT_NE(l, 0u);
  auto idx = c.core(l).Propose("P a 1");
  ASSERT_TRUE(idx.ok()) << idx.status();
  c.Stabilize();
  c.TickAll();
  c.Stabilize();
  for (uint64_t id : c.ids()) {
    EXPECT_EQ(c.node(id).kv["a"], "1") << "node " << id;
    EXPECT_GE(c.core(id).log().committed(), *idx);
  }
  uint64_t f = l == 1 ? 2 : 1;
  EXPECT_EQ(c.core(f).Propose("x").status().code(), absl::StatusCode::kFailedPrecondition);
}

// §5.3 Figure 7: a new leader brings each of the followers (a)-(f) to its own log.
TEST(RaftCore, Figure7LeaderSyncsFollowerLogs) {
  const std::vector<uint64_t> leader = {1, 1, 1, 4, 4, 5, 5, 6, 6, 6};
  const std::vector<std::vector<uint64_t>> followers = {
      {1, 1, 1, 4, 4, 5, 5, 6, 6},           // (a)
      {1, 1, 1, 4},                          // (b)
      {1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6},     // (c)
      {1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7},  // (d)
      {1, 1, 1, 4, 4, 4, 4},                 // (e)
      {1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3},     // (f)
  };
  for (size_t f = 0; f < followers.size(); ++f) {
    SCOPED_TRACE("follower (" + std::string(1, static_cast<char>('a' + f)) + ")");
    Config cfg;
    std::vector<std::unique_ptr<Core>> cores;
    cfg.id = 1;
    cores.push_back(std::make_unique<Core>(cfg, LogWithTerms(leader, 7)));
    cfg.id = 2;
    cores.push_back(std::make_unique<Core>(cfg, LogWithTerms(followers[f], 7)));
    cfg.id = 3;
    cores.push_back(std::make_unique<Core>(cfg, LogWithTerms({}, 7)));
    // Minimal synchronous loop: persist = Advance, deliver every message in order.
    std::deque<api::RaftMessage> net;
    auto pump = [&] {
      for (int round = 0; round < 1000; ++round) {
        for (auto& core : cores) {
          while (core->HasReady()) {
            Ready rd = core->GetReady();
            for (auto& m : rd.messages) net.push_back(m);
            core->Advance(rd);
          }
        }
        if (net.empty()) return;
        api::RaftMessage m = net.front();
        net.pop_front();
        cores[m.to() - 1]->Step(m);
      }
    };
    cores[0]->Campaign();
    pump();
    ASSERT_EQ(cores[0]->role(), Role::kLeader);
    EXPECT_EQ(cores[0]->term(), 8u);
    ASSERT_TRUE(cores[0]->Propose("P z 1").ok());
    pump();
    cores[0]->Tick();  // heartbeat carries the commit index
    pump();
    const RaftLog& a = cores[0]->log();
    const RaftLog& b = cores[1]->log();
    ASSERT_EQ(a.last_index(), b.last_index());
    for (uint64_t i = 1; i <= a.last_index(); ++i) {
      EXPECT_EQ(a.At(i).term(), b.At(i).term()) << "index " << i;
    }
    EXPECT_EQ(b.committed(), a.last_index());
  }
}

// §5.4.2 / Figure 8: a leader never commits an entry of an earlier term by counting replicas.
TEST(RaftCore, CommitsOnlyCurrentTermEntriesByCounting) {
  Config cfg;
  cfg.id = 1;
  Core c(cfg, LogWithTerms({1, 2}, 2));
  c.Campaign();
  c.Step([] {
    auto m = Msg(api::MSG_PRE_VOTE_RESP, 2, 1, 3);
    return m;
  }());
  c.Step(Msg(api::MSG_VOTE_RESP, 2, 1, 3));
  ASSERT_EQ(c.role(), Role::kLeader);
  ASSERT_EQ(c.term(), 3u);
  Ready rd = c.GetReady();  // persists the no-op at index 3
  c.Advance(rd);
  auto ack = Msg(api::MSG_APPEND_RESP, 2, 1, 3);
  ack.set_index(2);
  c.Step(ack);
  EXPECT_EQ(c.log().committed(), 0u) << "committed a previous-term entry by counting";
  ack.set_index(3);
  c.Step(ack);
  EXPECT_EQ(c.log().committed(), 3u) << "current-term entry commits, and with it 1..2";
}

// A leader cut off from the majority steps down (CheckQuorum), its uncommitted proposals
// never commit, and after healing they are replaced by the new leader's log.
TEST(RaftCore, StaleLeaderStepsDownAndItsEntriesAreDiscarded) {
  SimCluster c({1, 2, 3}, 11);
  uint64_t old = c.ElectLeader();
  ASSERT_NE(old, 0u);
  uint64_t old_term = c.core(old).term();
  c.Isolate(old);
  ASSERT_TRUE(c.core(old).Propose("P stale 1").ok());
  uint64_t stale_index = c.core(old).log().last_index();
  uint64_t fresh = 0;
  for (int i = 0; i < 200 && (fresh == 0 || fresh == old); ++i) {
    c.TickAll();
    c.Stabilize();
    for (uint64_t id : c.ids()) {
      if (id != old && c.core(id).role() == Role::kLeader) fresh = id;
    }
  }
  ASSERT_NE(fresh, 0u);
  EXPECT_GT(c.core(fresh).term(), old_term);
  for (int i = 0; i < 30; ++i) c.Tick(old);
  EXPECT_NE(c.core(old).role(), Role::kLeader) << "CheckQuorum did not depose the old leader";
  EXPECT_LT(c.core(old).log().committed(), stale_index);
  ASSERT_TRUE(c.core(fresh).Propose("P fresh 1").ok());
  c.Heal();
  for (int i = 0; i < 20; ++i) {
    c.TickAll();
    c.Stabilize();
  }
  EXPECT_EQ(c.node(old).kv.count("stale"), 0u);
  EXPECT_EQ(c.node(old).kv["fresh"], "1");
}

// PreVote: a partitioned node that keeps timing out does not raise its term, and rejoining
// does not depose the leader.
TEST(RaftCore, PreVotePartitionedNodeRejoinsWithoutTermInflation) {
  for (bool pre_vote : {true, false}) {
    SCOPED_TRACE(pre_vote ? "pre-vote" : "no pre-vote");
    Config tmpl;
    tmpl.pre_vote = pre_vote;
    SimCluster c({1, 2, 3}, 5, tmpl);
    uint64_t l = c.ElectLeader();
    ASSERT_NE(l, 0u);
    uint64_t term = c.core(l).term();
    uint64_t lonely = l == 3 ? 2 : 3;
    c.Isolate(lonely);
    for (int i = 0; i < 200; ++i) {
      c.TickAll();
      c.Stabilize();
    }
    c.Heal();
    for (int i = 0; i < 20; ++i) {
      c.TickAll();
      c.Stabilize();
    }
    if (pre_vote) {
      EXPECT_EQ(c.core(lonely).term(), term) << "term inflated during the partition";
      EXPECT_EQ(c.Leader(), l) << "rejoining node deposed the leader";
      EXPECT_EQ(c.core(l).term(), term);
    } else {
      EXPECT_GT(c.core(lonely).term(), term + 5) << "control: without pre-vote terms inflate";
    }
  }
}

TEST(RaftCore, ReadIndexNeedsAQuorumAndStaleLeaderCannotRead) {
  SimCluster c({1, 2, 3}, 3);
  uint64_t l = c.ElectLeader();
  ASSERT_NE(l, 0u);
  ASSERT_TRUE(c.core(l).Propose("P r 1").ok());
  c.Stabilize();
  c.core(l).ReadIndex("r1");
  c.Process(l);
  EXPECT_TRUE(c.node(l).reads.empty()) << "read served before a heartbeat quorum";
  c.Stabilize();
  ASSERT_EQ(c.node(l).reads.size(), 1u);
  EXPECT_EQ(c.node(l).reads[0].context, "r1");
  EXPECT_GE(c.node(l).reads[0].index, c.core(l).log().committed() - 0);
  // From a follower: forwarded to the leader.
  uint64_t f = l == 1 ? 2 : 1;
  c.core(f).ReadIndex("r2");
  c.Stabilize();
  ASSERT_EQ(c.node(f).reads.size(), 1u);
  EXPECT_EQ(c.node(f).reads[0].index, c.core(l).log().committed());
  // A leader cut off from everyone never confirms a read.
  c.Isolate(l);
  c.core(l).ReadIndex("r3");
  for (int i = 0; i < 40; ++i) {
    c.TickAll();
    c.Stabilize();
  }
  EXPECT_EQ(c.node(l).reads.size(), 1u);
}

TEST(RaftCore, LeadershipTransfer) {
  SimCluster c({1, 2, 3}, 9);
  uint64_t l = c.ElectLeader();
  ASSERT_NE(l, 0u);
  uint64_t target = l == 3 ? 1 : l + 1;
  ASSERT_TRUE(c.core(l).TransferLeadership(target).ok());
  EXPECT_EQ(c.core(l).Propose("x").status().code(), absl::StatusCode::kFailedPrecondition);
  c.Stabilize();
  EXPECT_EQ(c.Leader(), target);
  EXPECT_EQ(c.core(l).role(), Role::kFollower);
  EXPECT_FALSE(c.core(l).TransferLeadership(99).ok());
}

TEST(RaftCore, NoConfChangeBeforeNoOpAndOneAtATime) {
  SimCluster c({1, 2, 3}, 21);
  uint64_t l = c.ElectLeader();
  ASSERT_NE(l, 0u);
  api::ConfChange cc;
  cc.set_type(api::ConfChange::TYPE_ADD_LEARNER);
  cc.set_node_id(4);
  ASSERT_TRUE(c.core(l).ProposeConfChange(cc).ok());
  api::ConfChange cc2 = cc;
  cc2.set_node_id(5);
  EXPECT_EQ(c.core(l).ProposeConfChange(cc2).status().code(),
            absl::StatusCode::kFailedPrecondition);
  c.Stabilize();
  EXPECT_TRUE(c.core(l).ProposeConfChange(cc2).ok());
  EXPECT_EQ(c.core(l).ProposeConfChange(cc2).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(RaftCore, LearnerCatchesUpThenPromotedAndNodeRemovedWhileWriting) {
  SimCluster c({1, 2, 3}, 23);
  uint64_t l = c.ElectLeader();
  ASSERT_NE(l, 0u);
  for (int i = 0; i < 50; ++i)
    ASSERT_TRUE(c.core(l).Propose("P k" + std::to_string(i) + " v").ok());
  c.Stabilize();
  c.AddEmptyNode(4);
  api::ConfChange cc;
  cc.set_type(api::ConfChange::TYPE_ADD_LEARNER);
  cc.set_node_id(4);
  ASSERT_TRUE(c.core(l).ProposeConfChange(cc).ok());
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(c.core(l).Propose("P w" + std::to_string(i) + " v").ok());
    c.TickAll();
    c.Stabilize();
  }
  EXPECT_TRUE(c.core(l).learners().count(4));
  EXPECT_EQ(c.core(4).voters().count(4), 0u);
  const Progress* pr = c.core(l).progress(4);
  ASSERT_NE(pr, nullptr);
  EXPECT_EQ(pr->match, c.core(l).log().last_index()) << "learner did not catch up";
  EXPECT_EQ(c.node(4).kv["k49"], "v");
  cc.set_type(api::ConfChange::TYPE_PROMOTE_LEARNER);
  ASSERT_TRUE(c.core(l).ProposeConfChange(cc).ok());
  c.Stabilize();
  EXPECT_EQ(c.core(l).voters().size(), 4u);
  // Remove a follower while writing.
  uint64_t victim = l == 2 ? 3 : 2;
  cc.set_type(api::ConfChange::TYPE_REMOVE_NODE);
  cc.set_node_id(victim);
  ASSERT_TRUE(c.core(l).ProposeConfChange(cc).ok());
  ASSERT_TRUE(c.core(l).Propose("P after 1").ok());
  c.Stabilize();
  c.TickAll();
  c.Stabilize();
  EXPECT_EQ(c.core(l).voters().size(), 3u);
  EXPECT_EQ(c.core(l).voters().count(victim), 0u);
  c.Crash(victim);
  ASSERT_TRUE(c.core(l).Propose("P after 2").ok());
  c.Stabilize();
  c.TickAll();
  c.Stabilize();
  EXPECT_EQ(c.node(4).kv["after"], "2");
  // Remove the leader itself: it steps down and the rest elect a new one.
  cc.set_node_id(l);
  ASSERT_TRUE(c.core(l).ProposeConfChange(cc).ok());
  c.Stabilize();
  EXPECT_NE(c.core(l).role(), Role::kLeader);
  c.Crash(l);
  uint64_t nl = c.ElectLeader();
  ASSERT_NE(nl, 0u);
  EXPECT_NE(nl, l);
}

TEST(RaftCore, SnapshotInChunksToLaggingAndNewMember) {
  Config tmpl;
  tmpl.snapshot_chunk_size = 16;  // many chunks
  tmpl.snapshot_window = 2;
  SimCluster c({1, 2, 3}, 31, tmpl);
  uint64_t l = c.ElectLeader();
  ASSERT_NE(l, 0u);
  uint64_t lag = l == 3 ? 2 : 3;
  c.Crash(lag);
  for (int i = 0; i < 40; ++i) {
    ASSERT_TRUE(c.core(l).Propose("P key" + std::to_string(i) + " val" + std::to_string(i)).ok());
  }
  c.Stabilize();
  c.Snapshot(l);
  EXPECT_GT(c.core(l).log().first_index(), 40u);
  size_t chunks = 0;
  c.Restart(lag);
  for (int i = 0; i < 30; ++i) {
    c.TickAll();
    c.ProcessAll();
    while (!c.net().empty()) {
      if (c.net().front().type() == api::MSG_SNAPSHOT) ++chunks;
      c.DeliverOne();
    }
  }
  EXPECT_GT(chunks, 3u);
  EXPECT_EQ(c.node(lag).kv, c.node(l).kv);
  EXPECT_EQ(c.node(lag).kv["key39"], "val39");
  // A brand-new member gets the snapshot too.
  c.AddEmptyNode(4);
  api::ConfChange cc;
  cc.set_type(api::ConfChange::TYPE_ADD_NODE);
  cc.set_node_id(4);
  ASSERT_TRUE(c.core(l).ProposeConfChange(cc).ok());
  for (int i = 0; i < 30; ++i) {
    c.TickAll();
    c.Stabilize();
  }
  EXPECT_EQ(c.node(4).kv, c.node(l).kv);
  EXPECT_TRUE(c.core(4).voters().count(4));
}

TEST(RaftCore, UncommittedLogIsBounded) {
  Config tmpl;
  tmpl.max_uncommitted_size = 1000;
  SimCluster c({1, 2, 3}, 41, tmpl);
  uint64_t l = c.ElectLeader();
  ASSERT_NE(l, 0u);
  c.Isolate(l);
  absl::Status last;
  int accepted = 0;
  for (int i = 0; i < 100; ++i) {
    auto r = c.core(l).Propose(std::string(100, 'x'));
    if (!r.ok()) {
      last = r.status();
      break;
    }
    ++accepted;
  }
  EXPECT_EQ(last.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_LE(accepted, 10);
  c.Heal();
  c.TickAll();
  c.Stabilize();
  EXPECT_EQ(c.core(l).uncommitted_size(), 0u);
  EXPECT_TRUE(c.core(l).Propose(std::string(100, 'x')).ok());
}

// Thesis §10.2.1: a leader whose own disk write is still running (Advance(rd, false)) does not
// count its copy: one follower's acknowledgement does not commit an entry, both followers' do;
// with one acknowledgement the entry commits once the leader reports it durable.
TEST(RaftCore, LeaderDiskWriteOverlapsReplication) {
  std::map<uint64_t, std::unique_ptr<Core>> cores;
  for (uint64_t id : {1, 2, 3}) {
    Config cfg;
    cfg.id = id;
    cores[id] = std::make_unique<Core>(cfg, LogWithTerms({}, 1));
  }
  std::vector<api::RaftMessage> held;  // undelivered messages
  // Processes Readies and delivers messages until quiet; the leader defers its disk writes.
  // Messages to `hold` stay in `held`.
  auto pump = [&](uint64_t hold) {
    for (bool busy = true; busy;) {
      busy = false;
      for (auto& [id, c] : cores) {
        while (c->HasReady()) {
          busy = true;
          Ready rd = c->GetReady();
          c->Advance(rd, c->role() != Role::kLeader || rd.snapshot.has_value());
          for (auto& m : rd.messages) held.push_back(m);
        }
      }
      std::vector<api::RaftMessage> now;
      now.swap(held);
      for (auto& m : now) {
        if (m.to() == hold) {
          held.push_back(m);
        } else {
          busy = true;
          cores[m.to()]->Step(m);
        }
      }
    }
  };
  cores[1]->Campaign();
  pump(0);
  ASSERT_EQ(cores[1]->role(), Role::kLeader);
  // The election's no-op: both followers acknowledged it, so it is committed although the
  // leader never reported its own write durable.
  const uint64_t noop = cores[1]->log().last_index();
  EXPECT_EQ(cores[1]->log().committed(), noop);
  EXPECT_LT(cores[1]->durable(), noop);

  // One follower cut off: its acknowledgement alone does not commit.
  auto a = cores[1]->Propose("P a 1");
  ASSERT_TRUE(a.ok());
  pump(3);
  EXPECT_EQ(cores[2]->log().last_index(), *a);
  EXPECT_LT(cores[1]->log().committed(), *a);
  // The leader's write becomes durable: leader + follower 2 are a quorum.
  cores[1]->DurableTo(*a, cores[1]->term());
  EXPECT_EQ(cores[1]->durable(), *a);
  pump(3);
  EXPECT_EQ(cores[1]->log().committed(), *a);
  // A stale report (an entry since replaced, or an older index) changes nothing.
  cores[1]->DurableTo(*a, cores[1]->term() + 1);
  cores[1]->DurableTo(*a - 1, cores[1]->term());
  EXPECT_EQ(cores[1]->durable(), *a);
  // Both followers acknowledge the next entry: committed without the leader's disk.
  auto b = cores[1]->Propose("P b 2");
  ASSERT_TRUE(b.ok());
  pump(0);
  EXPECT_EQ(cores[1]->log().committed(), *b);
  EXPECT_EQ(cores[1]->durable(), *a);
  for (uint64_t id : {2, 3}) EXPECT_EQ(cores[id]->log().committed(), *b) << id;

  // The leader's disk stays stuck (the node sees its fdatasync outlast an election timeout):
  // it steps down in the same term and stops heart-beating; a follower's StepDown is a no-op.
  const uint64_t term = cores[1]->term();
  cores[2]->StepDown();
  EXPECT_EQ(cores[2]->role(), Role::kFollower);
  EXPECT_EQ(cores[2]->lead(), 1u);
  cores[1]->StepDown();
  EXPECT_EQ(cores[1]->role(), Role::kFollower);
  EXPECT_EQ(cores[1]->term(), term);
  EXPECT_EQ(cores[1]->lead(), 0u);
  EXPECT_EQ(cores[1]->Propose("P c 3").status().code(), absl::StatusCode::kFailedPrecondition);
  cores[1]->Tick();
  pump(0);
  EXPECT_EQ(cores[1]->role(), Role::kFollower);
  // Once the others' lease on it has run out, another member takes over with everything
  // committed; the late durable report of the old leader's write changes nothing.
  for (int i = 0; i < Config().election_tick; ++i) cores[3]->Tick();
  pump(0);
  cores[2]->Campaign();
  pump(0);
  uint64_t next = 0;
  for (uint64_t id : {2, 3}) {
    if (cores[id]->role() == Role::kLeader) next = id;
  }
  ASSERT_NE(next, 0u);
  EXPECT_GT(cores[next]->term(), term);
  EXPECT_GE(cores[next]->log().last_index(), *b);
  cores[1]->DurableTo(*b, term);
  auto c = cores[next]->Propose("P c 3");
  ASSERT_TRUE(c.ok());
  pump(0);
  for (uint64_t id : {1, 2, 3}) EXPECT_EQ(cores[id]->log().committed(), *c) << id;
}

}  // namespace
}  // namespace shoal::manager::raft
