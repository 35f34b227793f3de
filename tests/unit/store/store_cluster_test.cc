// The store on real raft: three managers, each a MemoryStore on a RaftNode (WAL + snapshots on
// disk, gRPC on loopback), through the StoreCluster harness. What a user of the store observes:
// the same objects with the same meta.version on every manager, stale updates refused, follower
// watches that see each commit once and in order, lagging and new managers brought up to date
// by a raft snapshot, and no acknowledged write lost when the leader goes away.
#include "manager/store/testing/store_cluster.h"

#include <array>
#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/check.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/store/store_testing.h"

namespace shoal::manager::store {
namespace {

using ::shoal::manager::store::testing::MakeNetwork;
using ::shoal::manager::store::testing::MakeService;
using ::shoal::manager::store::testing::MakeTask;
using ::shoal::manager::store::testing::StoreCluster;
using ::shoal::manager::store::testing::StoreClusterOptions;
using ::testing::HasSubstr;

constexpr absl::Duration kWait = absl::Seconds(30);

// Every object of a store: "kind/id" -> (meta.version, serialized object).
using Dump = std::map<std::string, std::pair<uint64_t, std::string>>;
Dump DumpStore(const MemoryStore& s) {
  Dump out;
  ReadView v = s.View();
  for (Kind kind : kAllKinds) {
    v.Scan(kind, All(), [&](const ObjectPtr& o) {
      out[absl::StrCat(KindName(kind), "/", ObjectId(kind, *o))] = {
          ObjectMeta(kind, *o).version().index(), o->SerializeAsString()};
      return true;
    });
  }
  return out;
}

std::unique_ptr<StoreCluster> StartCluster(StoreClusterOptions o = {}) {
  auto c = StoreCluster::Start(std::move(o));
  CHECK_OK(c.status());
  return std::move(*c);
}

// Flattened events of one commit: "version type kind/id".
std::vector<std::string> Describe(const Commit& c) {
  std::vector<std::string> out;
  for (const Event& e : c.events) {
    out.push_back(absl::StrCat(c.version, " ", EventTypeName(e.type), " ", KindName(e.kind), "/",
                               ObjectId(e.kind, *e.object)));
  }
  return out;
}

TEST(StoreClusterTest, WritesReachEveryManagerWithTheSameVersionAndStaleUpdatesAreRefused) {
  auto c = StartCluster();
  auto leader = c->WaitLeader(kWait);
  ASSERT_TRUE(leader.ok()) << leader.status();
  MemoryStore* ls = c->store(*leader);

  auto v1 = ls->Update([](Tx& tx) {
    RETURN_IF_ERROR(tx.Create(MakeService("svc1", "web")));
    RETURN_IF_ERROR(tx.Create(MakeNetwork("net1", "backend")));
    return tx.Create(MakeTask("task1", "svc1", "node1", 1));
  });
  ASSERT_TRUE(v1.ok()) << v1.status();
  ASSERT_TRUE(c->WaitVersion(*v1, kWait).ok());
  for (uint64_t id : c->running()) {
    auto t = c->store(id)->View().Get<api::Task>("task1");
    ASSERT_NE(t, nullptr) << "manager " << id;
    EXPECT_EQ(t->meta().version().index(), *v1) << "manager " << id;
    // Secondary indexes are rebuilt on every replica from the log.
    EXPECT_EQ(c->store(id)->View().Find<api::Task>(ByServiceId("svc1")).size(), 1u);
  }

  // Optimistic concurrency: an update based on version v1 after someone else wrote v2.
  api::Service stale = *ls->View().Get<api::Service>("svc1");
  api::Service fresh = stale;
  fresh.mutable_spec()->mutable_replicated()->set_replicas(5);
  auto v2 = ls->Update([&](Tx& tx) { return tx.Update(fresh); });
  ASSERT_TRUE(v2.ok()) << v2.status();
  stale.mutable_spec()->mutable_replicated()->set_replicas(7);
  auto refused = ls->Update([&](Tx& tx) { return tx.Update(stale); });
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kAborted);
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("out of sequence"));
  ASSERT_TRUE(c->WaitConverged(kWait).ok());
  for (uint64_t id : c->running()) {
    auto s = c->store(id)->View().Get<api::Service>("svc1");
    EXPECT_EQ(s->spec().replicated().replicas(), 5u) << "manager " << id;
    EXPECT_EQ(s->meta().version().index(), *v2) << "manager " << id;
  }

  // Followers do not accept writes (no forwarding at the store layer), through the store or
  // the raft node, and nothing is replicated from them.
  const uint64_t before = ls->version();
  for (uint64_t f : c->Followers(*leader)) {
    auto w = c->store(f)->Update([](Tx& tx) { return tx.Create(MakeService("svc2", "api")); });
    EXPECT_EQ(w.status().code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_THAT(std::string(w.status().message()), HasSubstr("not the raft leader"));
    auto p = c->node(f)->ProposeAndWait("x", absl::Seconds(1));
    EXPECT_EQ(p.status().code(), absl::StatusCode::kFailedPrecondition);
  }
  ASSERT_TRUE(c->WaitConverged(kWait).ok());
  EXPECT_EQ(ls->version(), before);
  EXPECT_EQ(ls->View().Get<api::Service>("svc2"), nullptr);

  Dump want = DumpStore(*ls);
  for (uint64_t id : c->running()) EXPECT_EQ(DumpStore(*c->store(id)), want) << "manager " << id;
}

TEST(StoreClusterTest, FollowerWatchSeesEveryCommitOnceInOrder) {
  auto c = StartCluster();
  auto leader = c->WaitLeader(kWait);
  ASSERT_TRUE(leader.ok()) << leader.status();
  MemoryStore* ls = c->store(*leader);
  const uint64_t f = c->Followers(*leader).front();
  auto fw = c->store(f)->Watch();
  auto lw = ls->Watch();
  ASSERT_TRUE(fw.ok() && lw.ok());

  // Creates, updates and deletes, several objects per transaction; a refused transaction
  // (name taken) produces no event anywhere.
  std::vector<uint64_t> versions;
  for (int i = 0; i < 40; ++i) {
    auto v = ls->Update([&](Tx& tx) {
      RETURN_IF_ERROR(tx.Create(MakeService(absl::StrCat("s", i), absl::StrCat("svc-", i))));
      RETURN_IF_ERROR(tx.Create(MakeTask(absl::StrCat("t", i), absl::StrCat("s", i), "n1", 1)));
      if (i > 0) {
        api::Task prev = *tx.Get<api::Task>(absl::StrCat("t", i - 1));
        prev.mutable_status()->set_state(api::TASK_STATE_RUNNING);
        RETURN_IF_ERROR(tx.Update(prev));
      }
      if (i > 1) RETURN_IF_ERROR(tx.Delete<api::Service>(absl::StrCat("s", i - 2)));
      return absl::OkStatus();
    });
    ASSERT_TRUE(v.ok()) << v.status();
    versions.push_back(*v);
    if (i == 0) {
      auto dup = ls->Update([&](Tx& tx) { return tx.Create(MakeService("dup", "svc-0")); });
      EXPECT_EQ(dup.status().code(), absl::StatusCode::kAlreadyExists);
    }
  }

  auto collect = [&](Watcher& w) {
    std::vector<uint64_t> seen;
    std::vector<std::string> events;
    while (seen.empty() || seen.back() < versions.back()) {
      auto commit = w.Next(kWait);
      if (!commit.ok()) {
        ADD_FAILURE() << commit.status();
        break;
      }
      seen.push_back(commit->version);
      for (auto& d : Describe(*commit)) events.push_back(d);
    }
    return std::make_pair(seen, events);
  };
  auto [fseen, fevents] = collect(**fw);
  auto [lseen, levents] = collect(**lw);
  // Each successful transaction is one commit on the follower, at the leader's version, once.
  EXPECT_EQ(fseen, versions);
  EXPECT_EQ(fevents, levents);
  EXPECT_FALSE((*fw)->TryNext().has_value());
  EXPECT_EQ(DumpStore(*c->store(f)), DumpStore(*ls));
}

TEST(StoreClusterTest, RaftSnapshotBringsALaggingFollowerAndANewManagerUpToDate) {
  StoreClusterOptions o;
  o.snapshot_interval = 20;
  o.snapshot_keep = 5;
  auto c = StartCluster(o);
  auto leader = c->WaitLeader(kWait);
  ASSERT_TRUE(leader.ok()) << leader.status();
  MemoryStore* ls = c->store(*leader);
  const uint64_t f = c->Followers(*leader).front();
  ASSERT_TRUE(ls->Update([](Tx& tx) { return tx.Create(MakeService("base", "base")); }).ok());
  ASSERT_TRUE(c->WaitConverged(kWait).ok());

  // The follower keeps running (and its watcher) but hears nothing while 100 transactions
  // commit; the leader compacts its log past the follower's position meanwhile.
  auto fw = c->store(f)->Watch();
  ASSERT_TRUE(fw.ok());
  const uint64_t lag_from = c->store(f)->version();
  ASSERT_TRUE(c->Disconnect(f).ok());
  for (int i = 0; i < 100; ++i) {
    auto v = ls->Update([&](Tx& tx) {
      RETURN_IF_ERROR(tx.Create(MakeTask(absl::StrCat("t", i), "base", "n1", i + 1)));
      if (i % 10 == 9) RETURN_IF_ERROR(tx.Delete<api::Task>(absl::StrCat("t", i - 5)));
      return absl::OkStatus();
    });
    ASSERT_TRUE(v.ok()) << v.status();
  }
  EXPECT_EQ(c->store(f)->version(), lag_from);
  ASSERT_TRUE(c->Reconnect(f).ok());
  ASSERT_TRUE(c->WaitConverged(kWait).ok());
  const Dump want = DumpStore(*ls);
  EXPECT_EQ(DumpStore(*c->store(f)), want);

  // The follower's watcher continued: replaying its events over the pre-lag state gives the
  // leader's state, and it got fewer commits than the 100 transactions (the snapshot jump is
  // one commit of create/update/delete events), so the state came from a snapshot.
  std::set<std::string> live = {"service/base"};
  size_t commits = 0;
  while (auto commit = (*fw)->TryNext()) {
    ++commits;
    for (const Event& e : commit->events) {
      std::string key = absl::StrCat(KindName(e.kind), "/", ObjectId(e.kind, *e.object));
      if (e.type == EventType::kDelete) {
        EXPECT_EQ(live.erase(key), 1u) << key;
      } else {
        live.insert(key);
      }
    }
  }
  std::set<std::string> want_keys;
  for (auto& [k, v] : want) want_keys.insert(k);
  EXPECT_EQ(live, want_keys);
  EXPECT_GE(commits, 1u);
  EXPECT_LT(commits, 100u);

  // A new manager joins: it gets the snapshot plus the log after it, becomes a voter, and
  // then follows new writes.
  auto added = c->AddManager(kWait);
  ASSERT_TRUE(added.ok()) << added.status();
  EXPECT_EQ(DumpStore(*c->store(*added)), DumpStore(*ls));
  auto v = ls->Update([](Tx& tx) { return tx.Create(MakeService("after-join", "after-join")); });
  ASSERT_TRUE(v.ok()) << v.status();
  ASSERT_TRUE(c->WaitVersion(*v, kWait).ok());
  EXPECT_NE(c->store(*added)->View().Get<api::Service>("after-join"), nullptr);
  EXPECT_EQ(c->node(*leader)->Status().members.size(), 4u);
}

TEST(StoreClusterTest, LeaderStopsWhileWritingAndNoAcknowledgedWriteIsLost) {
  auto c = StartCluster();
  auto leader = c->WaitLeader(kWait);
  ASSERT_TRUE(leader.ok()) << leader.status();
  std::vector<MemoryStore*> stores;
  for (uint64_t id : c->running()) stores.push_back(c->store(id));

  // One writer creating services through whichever store accepts them; it never touches the
  // cluster object itself (stores of stopped managers answer Unavailable).
  std::atomic<bool> stop{false};
  std::atomic<int> acked_count{0};
  std::map<std::string, uint64_t> acked;  // id -> version, writer thread only until join
  std::set<std::string> attempted;
  std::thread writer([&] {
    for (int i = 0; !stop.load(); ++i) {
      const std::string id = absl::StrCat("w", i);
      attempted.insert(id);
      bool done = false;
      while (!done && !stop.load()) {
        for (MemoryStore* s : stores) {
          auto v = s->Update([&](Tx& tx) { return tx.Create(MakeService(id, id)); });
          if (v.ok()) {
            acked[id] = *v;
            acked_count.fetch_add(1);
            done = true;
            break;
          }
          // AlreadyExists: an earlier attempt whose outcome was unknown did commit.
          if (v.status().code() == absl::StatusCode::kAlreadyExists) {
            done = true;
            break;
          }
        }
        if (!done) absl::SleepFor(absl::Milliseconds(2));
      }
    }
  });
  auto wait_acks = [&](int n) {
    const absl::Time deadline = absl::Now() + kWait;
    while (acked_count.load() < n && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(2));
    return acked_count.load() >= n;
  };
  EXPECT_TRUE(wait_acks(20));
  ASSERT_TRUE(c->Stop(*leader).ok());
  const int at_stop = acked_count.load();
  auto next = c->WaitLeader(kWait);
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_NE(*next, *leader);
  // The new leader keeps accepting writes.
  EXPECT_TRUE(wait_acks(at_stop + 20));
  ASSERT_TRUE(c->Restart(*leader).ok());
  EXPECT_TRUE(wait_acks(acked_count.load() + 10));
  stop = true;
  writer.join();

  ASSERT_TRUE(c->WaitConverged(kWait).ok());
  const Dump want = DumpStore(*c->store(*next));
  for (uint64_t id : c->running()) EXPECT_EQ(DumpStore(*c->store(id)), want) << "manager " << id;
  for (auto& [id, version] : acked) {
    auto it = want.find("service/" + id);
    ASSERT_NE(it, want.end()) << "acknowledged write " << id << " lost";
    EXPECT_EQ(it->second.first, version) << id;
  }
  // Nothing appeared that was never written.
  for (auto& [key, v] : want) {
    EXPECT_TRUE(attempted.count(key.substr(std::string("service/").size())) > 0) << key;
  }
}

// What every member reports (for failure messages).
std::string DescribeMembers(const StoreCluster& c) {
  std::string out;
  for (uint64_t id : c.running()) {
    raft::NodeStatus s = c.node(id)->Status();
    absl::StrAppend(&out, "\n  member ", id, ": ", raft::RoleName(s.role), " term ", s.term,
                    " leader ", s.leader, " commit ", s.commit, " applied ", s.applied);
  }
  return out;
}

// Disk-stall fencing (etcd#13527: a leader whose fdatasync hangs kept heart-beating). With the
// synchronous leader write (default) the raft node sends heartbeats from the same loop that
// writes its log, so a leader stuck in fdatasync goes silent; with the overlapped leader write
// the loop goes on and the leader steps down once its fdatasync has run for an election
// timeout. Either way the others elect a new leader, and the stalled one can neither serve a
// linearizable read nor see later writes until its disk recovers and it catches up as a
// follower. With the synchronous write it acknowledges nothing during the stall; with the
// overlapped one it may acknowledge a write its followers made durable (committed by a
// majority of disks: never lost).
void StalledLeaderDiskIsFenced(bool overlap_leader_sync) {
  std::array<std::atomic<bool>, 8> stalled{};
  StoreClusterOptions o;
  // The production timing (100 ms ticks: 1 s election timeout), not the harness's 20 ms. The
  // fencing treats a member whose fdatasync outlasts an election timeout as failed (its
  // heartbeats or acks stop meanwhile), so with a 200 ms timeout a loaded machine's ordinary
  // fsync spikes churn leadership among the two healthy members (the likely cause of the
  // once-seen failure "no new leader while the leader's disk is stalled" at load ~10, not
  // reproduced as such). Delaying every member's fdatasync by a random 0-1000 ms in this test:
  // 3 of 4 runs failed with 20 ms ticks (a write lost its leader mid-way), 0 of 4 with 100 ms.
  o.tick = absl::Milliseconds(100);
  o.node_options = [&stalled, overlap_leader_sync](uint64_t id, raft::NodeOptions& n) {
    n.overlap_leader_sync = overlap_leader_sync;
    n.storage.before_sync = [&stalled, id] {
      while (stalled[id].load()) absl::SleepFor(absl::Milliseconds(1));
    };
  };
  auto c = StartCluster(o);
  auto old = c->WaitLeader(kWait);
  ASSERT_TRUE(old.ok()) << old.status();
  ASSERT_TRUE(c->store(*old)->Update([](Tx& tx) { return tx.Create(MakeService("a", "a")); }).ok());

  MemoryStore* stalled_store = c->store(*old);
  raft::RaftNode* stalled_node = c->node(*old);
  std::atomic<bool> returned{false};
  absl::StatusOr<uint64_t> during = absl::UnknownError("not run");
  std::thread writer;
  struct Cleanup {  // unstall and join even when an assertion fails
    std::array<std::atomic<bool>, 8>& stalled;
    std::thread& writer;
    ~Cleanup() {
      for (auto& s : stalled) s = false;
      if (writer.joinable()) writer.join();
    }
  } cleanup{stalled, writer};
  stalled[*old] = true;
  writer = std::thread([&] {
    during = stalled_store->Update([](Tx& tx) { return tx.Create(MakeService("b", "b")); });
    returned = true;
  });

  // A new leader among the others, and it takes writes.
  uint64_t next = 0;
  const absl::Time deadline = absl::Now() + kWait;
  while (next == 0 && absl::Now() < deadline) {
    for (uint64_t id : c->Followers(*old)) {
      if (c->node(id)->IsLeader() && c->node(id)->ReadBarrier(absl::Seconds(1)).ok()) next = id;
    }
    absl::SleepFor(absl::Milliseconds(5));
  }
  ASSERT_NE(next, 0u) << "no new leader while the leader's disk is stalled (stalled member " << *old
                      << ", writer returned: " << returned.load() << ")" << DescribeMembers(*c);
  auto after = c->store(next)->Update([](Tx& tx) { return tx.Create(MakeService("c", "c")); });
  ASSERT_TRUE(after.ok()) << after.status();

  // The stalled member cannot confirm a read and has not seen the later write. With the
  // synchronous write it acknowledged nothing (its loop is stuck: it still believes it leads);
  // with the overlapped one it stepped down.
  if (overlap_leader_sync) {
    EXPECT_FALSE(stalled_node->IsLeader());
  } else {
    EXPECT_FALSE(returned.load());
  }
  EXPECT_FALSE(stalled_node->ReadBarrier(absl::Milliseconds(500)).ok());
  EXPECT_EQ(stalled_store->View().Get<api::Service>("c"), nullptr);

  // The disk recovers: the old leader catches up as a follower.
  stalled[*old] = false;
  writer.join();
  ASSERT_TRUE(c->WaitConverged(kWait).ok()) << DescribeMembers(*c);
  EXPECT_FALSE(c->node(*old)->IsLeader());
  const Dump want = DumpStore(*c->store(next));
  for (uint64_t id : c->running()) EXPECT_EQ(DumpStore(*c->store(id)), want) << "manager " << id;
  EXPECT_EQ(want.count("service/c"), 1u);
  // The write made during the stall has an unknown outcome unless acknowledged; if it was,
  // it is everywhere at that version.
  if (during.ok()) {
    ASSERT_EQ(want.count("service/b"), 1u);
    EXPECT_EQ(want.at("service/b").first, *during);
  }
}

TEST(StoreClusterTest, LeaderWithAStalledDiskIsReplacedAndServesNothingStale) {
  StalledLeaderDiskIsFenced(/*overlap_leader_sync=*/false);
}

TEST(StoreClusterTest, OverlappedSyncLeaderWithAStalledDiskStepsDownAndServesNothingStale) {
  StalledLeaderDiskIsFenced(/*overlap_leader_sync=*/true);
}

// Membership changes while a client writes: a manager joins, a follower is removed, then the
// leader removes itself (it steps down once the change is applied; the rest elect a leader).
TEST(StoreClusterTest, MembershipChangesWhileWritingLoseNoAcknowledgedWrite) {
  auto c = StartCluster();
  auto leader = c->WaitLeader(kWait);
  ASSERT_TRUE(leader.ok()) << leader.status();

  std::mutex mu;
  std::vector<MemoryStore*> stores;  // guarded by mu; the writer tries each in turn
  for (uint64_t id : c->running()) stores.push_back(c->store(id));
  std::atomic<bool> stop{false};
  std::atomic<int> acked_count{0};
  std::map<std::string, uint64_t> acked;  // writer thread only until join
  std::thread writer([&] {
    for (int i = 0; !stop.load(); ++i) {
      const std::string id = absl::StrCat("m", i);
      bool done = false;
      while (!done && !stop.load()) {
        std::vector<MemoryStore*> now;
        {
          std::lock_guard<std::mutex> l(mu);
          now = stores;
        }
        for (MemoryStore* s : now) {
          auto v = s->Update([&](Tx& tx) { return tx.Create(MakeService(id, id)); });
          if (v.ok()) acked[id] = *v;
          if (v.ok() || v.status().code() == absl::StatusCode::kAlreadyExists) {
            acked_count.fetch_add(v.ok() ? 1 : 0);
            done = true;
            break;
          }
        }
        if (!done) absl::SleepFor(absl::Milliseconds(2));
      }
    }
  });
  struct Join {
    std::atomic<bool>& stop;
    std::thread& t;
    ~Join() {
      stop = true;
      if (t.joinable()) t.join();
    }
  } join{stop, writer};
  auto wait_acks = [&](int more) {
    const int want = acked_count.load() + more;
    const absl::Time deadline = absl::Now() + kWait;
    while (acked_count.load() < want && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(2));
    }
    return acked_count.load() >= want;
  };
  ASSERT_TRUE(wait_acks(20));

  auto added = c->AddManager(kWait);
  ASSERT_TRUE(added.ok()) << added.status();
  {
    std::lock_guard<std::mutex> l(mu);
    stores.push_back(c->store(*added));
  }
  ASSERT_TRUE(wait_acks(20));

  leader = c->WaitLeader(kWait);
  ASSERT_TRUE(leader.ok());
  uint64_t follower = 0;
  for (uint64_t id : c->Followers(*leader)) {
    if (id != *added) follower = id;
  }
  ASSERT_TRUE(c->RemoveManager(follower, kWait).ok());
  ASSERT_TRUE(wait_acks(20)) << "writes stalled after removing a follower";

  // The leader removes itself, without handing over leadership first.
  leader = c->WaitLeader(kWait);
  ASSERT_TRUE(leader.ok());
  const uint64_t old_leader = *leader;
  ASSERT_TRUE(c->node(old_leader)->RemoveMember(old_leader, kWait).ok());
  ASSERT_TRUE(c->Stop(old_leader).ok());
  auto next = c->WaitLeader(kWait);
  ASSERT_TRUE(next.ok()) << next.status();
  ASSERT_TRUE(wait_acks(20)) << "writes stalled after the leader removed itself";
  EXPECT_EQ(c->node(*next)->Status().members.size(), 2u);

  stop = true;
  writer.join();
  ASSERT_TRUE(c->WaitConverged(kWait).ok());
  const Dump want = DumpStore(*c->store(*next));
  EXPECT_EQ(c->running().size(), 2u);
  for (uint64_t id : c->running()) EXPECT_EQ(DumpStore(*c->store(id)), want) << "manager " << id;
  for (auto& [id, version] : acked) {
    auto it = want.find("service/" + id);
    ASSERT_NE(it, want.end()) << "acknowledged write " << id << " lost";
    EXPECT_EQ(it->second.first, version) << id;
  }
}

}  // namespace
}  // namespace shoal::manager::store
