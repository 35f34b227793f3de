// RaftNode in-process: three members with real storage and gRPC transport on loopback, a small
// counting state machine; proposals, followers refusing, ReadBarrier, leadership transfer and
// restart from disk.
#include "manager/raft/node.h"

#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>

#include "absl/time/clock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"

namespace shoal::manager::raft {
namespace {

class ListMachine final : public StateMachine {
 public:
  void Apply(uint64_t index, absl::string_view data) override {
    std::lock_guard<std::mutex> l(mu_);
    items_.emplace_back(data);
  }
  absl::StatusOr<std::string> Snapshot() override {
    std::lock_guard<std::mutex> l(mu_);
    std::string out;
    for (auto& i : items_) out += i + "\n";
    return out;
  }
  absl::Status Restore(uint64_t, absl::string_view snap) override {
    std::lock_guard<std::mutex> l(mu_);
    items_.clear();
    size_t pos = 0;
    while (pos < snap.size()) {
      size_t nl = snap.find('\n', pos);
      items_.emplace_back(snap.substr(pos, nl - pos));
      pos = nl + 1;
    }
    return absl::OkStatus();
  }
  std::vector<std::string> items() {
    std::lock_guard<std::mutex> l(mu_);
    return items_;
  }
  // While held, snapshot serializers (run on the node's writer thread) block.
  absl::StatusOr<Serializer> CaptureSnapshot() override {
    auto data = Snapshot();
    if (!data.ok()) return data.status();
    return Serializer([this, d = *data]() -> absl::StatusOr<std::string> {
      std::unique_lock<std::mutex> l(gate_mu_);
      ++serializing_;
      gate_cv_.wait(l, [&] { return !held_; });
      return d;
    });
  }
  void Hold(bool held) {
    std::lock_guard<std::mutex> l(gate_mu_);
    held_ = held;
    gate_cv_.notify_all();
  }
  int serializing() {
    std::lock_guard<std::mutex> l(gate_mu_);
    return serializing_;
  }

 private:
  std::mutex mu_;
  std::vector<std::string> items_;
  std::mutex gate_mu_;
  std::condition_variable gate_cv_;
  bool held_ = false;
  int serializing_ = 0;
};

struct Member {
  ListMachine sm;
  std::unique_ptr<RaftNode> node;
  std::unique_ptr<grpc::Server> server;
};

class NodeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/shoaltest-raft-node-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    int base = 33000 + (::getpid() % 500) * 4;
    for (uint64_t id = 1; id <= 3; ++id) {
      api::RaftMember m;
      m.set_raft_id(id);
      m.set_addr("127.0.0.1:" + std::to_string(base + id));
      members_.push_back(m);
    }
    for (uint64_t id = 1; id <= 3; ++id) Start(id);
  }
  void TearDown() override {
    for (auto& [id, m] : nodes_) {
      if (m) m->sm.Hold(false);
      Stop(id);
    }
    std::filesystem::remove_all(dir_);
  }
  void Start(uint64_t id) {
    auto m = std::make_unique<Member>();
    NodeOptions o;
    o.id = id;
    o.addr = members_[id - 1].addr();
    o.dir = dir_ + "/n" + std::to_string(id);
    o.tick = absl::Milliseconds(20);
    o.bootstrap = members_;
    o.snapshot_interval = 50;
    o.snapshot_keep = 5;
    o.overlap_leader_sync = overlap_leader_sync_;
    auto n = RaftNode::Create(o, &m->sm);
    ASSERT_TRUE(n.ok()) << n.status();
    m->node = std::move(*n);
    grpc::ServerBuilder b;
    b.AddListeningPort(o.addr, grpc::InsecureServerCredentials());
    b.RegisterService(m->node->service());
    m->server = b.BuildAndStart();
    ASSERT_NE(m->server, nullptr);
    m->node->Start();
    nodes_[id] = std::move(m);
  }
  void Stop(uint64_t id) {
    auto& m = nodes_[id];
    if (!m) return;
    m->server->Shutdown(std::chrono::system_clock::now());
    m->node->Stop();
    m.reset();
  }
  uint64_t WaitLeader() {
    absl::Time deadline = absl::Now() + absl::Seconds(20);
    while (absl::Now() < deadline) {
      for (auto& [id, m] : nodes_) {
        if (m && m->node->IsLeader()) return id;
      }
      absl::SleepFor(absl::Milliseconds(10));
    }
    return 0;
  }

  bool overlap_leader_sync_ = false;
  std::string dir_;
  std::vector<api::RaftMember> members_;
  std::map<uint64_t, std::unique_ptr<Member>> nodes_;
};

TEST_F(NodeTest, ProposeReadTransferRestart) {
  uint64_t l = WaitLeader();
  ASSERT_NE(l, 0u);
  for (int i = 0; i < 120; ++i) {
    auto r = nodes_[l]->node->ProposeAndWait("item" + std::to_string(i), absl::Seconds(10));
    ASSERT_TRUE(r.ok()) << r.status();
  }
  EXPECT_EQ(nodes_[l]->sm.items().size(), 120u);
  uint64_t f = l == 1 ? 2 : 1;
  auto refused = nodes_[f]->node->ProposeAndWait("x", absl::Seconds(1));
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  // A follower's ReadBarrier makes everything acknowledged so far visible there.
  ASSERT_TRUE(nodes_[f]->node->ReadBarrier(absl::Seconds(10)).ok());
  EXPECT_EQ(nodes_[f]->sm.items().size(), 120u);
  // Leadership transfer.
  ASSERT_TRUE(nodes_[l]->node->TransferLeadership(f, absl::Seconds(10)).ok());
  EXPECT_EQ(WaitLeader(), f);
  // Restart a member from its disk (snapshots were taken every 50 entries).
  uint64_t r = 6 - l - f;
  Stop(r);
  ASSERT_TRUE(nodes_[f]->node->ProposeAndWait("after", absl::Seconds(10)).ok());
  Start(r);
  ASSERT_TRUE(nodes_[r]->node->ReadBarrier(absl::Seconds(20)).ok());
  auto items = nodes_[r]->sm.items();
  ASSERT_EQ(items.size(), 121u);
  EXPECT_EQ(items.back(), "after");
}

// Serializing a snapshot runs off the raft loop: while every member's serializer is stuck,
// the cluster keeps committing; the log is compacted once the file is written.
TEST_F(NodeTest, SnapshotSerializationDoesNotStallTheLoop) {
  for (auto& [id, m] : nodes_) m->sm.Hold(true);
  // A settled leader: it answers a read barrier (it committed an entry of its term).
  uint64_t l = 0;
  for (int attempt = 0; attempt < 50 && l == 0; ++attempt) {
    uint64_t c = WaitLeader();
    if (c != 0 && nodes_[c]->node->ReadBarrier(absl::Seconds(2)).ok() &&
        nodes_[c]->node->IsLeader()) {
      l = c;
    }
  }
  ASSERT_NE(l, 0u);
  for (int i = 0; i < 60; ++i) {  // snapshot_interval is 50
    ASSERT_TRUE(nodes_[l]->node->ProposeAndWait("a" + std::to_string(i), absl::Seconds(10)).ok());
  }
  // Every member's serializer is now blocked (each captured a snapshot at 50 entries). Were
  // the loop blocked too, nothing would commit from here on; 100 more writes must.
  std::vector<std::string> acked;
  const absl::Time deadline = absl::Now() + absl::Seconds(120);
  for (int i = 0; acked.size() < 100 && absl::Now() < deadline; ++i) {
    std::string item = "b" + std::to_string(i);
    if (nodes_[l]->node->ProposeAndWait(item, absl::Seconds(10)).ok()) {
      acked.push_back(item);
    } else {
      l = WaitLeader();  // a leader change on a loaded machine is allowed, a stall is not
      ASSERT_NE(l, 0u);
    }
  }
  ASSERT_EQ(acked.size(), 100u);
  for (auto& [id, m] : nodes_) EXPECT_GE(m->sm.serializing(), 1) << "member " << id;
  for (auto& [id, m] : nodes_) m->sm.Hold(false);
  // After the snapshot is written, a restarted member recovers everything.
  l = WaitLeader();
  ASSERT_NE(l, 0u);
  ASSERT_TRUE(nodes_[l]->node->ProposeAndWait("last", absl::Seconds(10)).ok());
  uint64_t r = l == 1 ? 2 : 1;
  Stop(r);
  Start(r);
  ASSERT_TRUE(nodes_[r]->node->ReadBarrier(absl::Seconds(20)).ok());
  auto items = nodes_[r]->sm.items();
  ASSERT_FALSE(items.empty());
  EXPECT_EQ(items.back(), "last");
  EXPECT_EQ(items, nodes_[l]->sm.items());
  for (const std::string& a : acked) {
    EXPECT_NE(std::find(items.begin(), items.end(), a), items.end()) << a;
  }
}

// Peers(): on the leader every member is reachable with its match index; a stopped follower
// becomes unreachable within a few election timeouts and reachable again after a restart; a
// follower knows only about its leader.
TEST_F(NodeTest, PeersReportReachability) {
  auto find = [](const std::vector<PeerStatus>& ps, uint64_t id) -> PeerStatus {
    for (const PeerStatus& p : ps) {
      if (p.raft_id == id) return p;
    }
    ADD_FAILURE() << "member " << id << " missing from Peers()";
    return {};
  };
  // Polls the leader's view until `pred` holds (the leader may change on a loaded machine).
  auto poll = [&](const std::function<bool(uint64_t, const std::vector<PeerStatus>&)>& pred) {
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    while (absl::Now() < deadline) {
      uint64_t l = WaitLeader();
      if (l != 0 && pred(l, nodes_[l]->node->Peers())) return l;
      absl::SleepFor(absl::Milliseconds(20));
    }
    return uint64_t{0};
  };
  uint64_t l = WaitLeader();
  ASSERT_NE(l, 0u);
  ASSERT_TRUE(nodes_[l]->node->ProposeAndWait("x", absl::Seconds(10)).ok());
  l = poll([](uint64_t, const std::vector<PeerStatus>& ps) {
    return ps.size() == 3 && std::all_of(ps.begin(), ps.end(), [](const PeerStatus& p) {
             return p.reachability == Reachability::kReachable && p.match >= 4;
           });
  });
  ASSERT_NE(l, 0u);
  std::vector<PeerStatus> ps = nodes_[l]->node->Peers();
  EXPECT_TRUE(find(ps, l).self);
  EXPECT_TRUE(find(ps, l).is_leader);
  for (const PeerStatus& p : ps) {
    EXPECT_EQ(p.addr, members_[p.raft_id - 1].addr());
    EXPECT_FALSE(p.learner);
    if (p.raft_id != l) {
      EXPECT_FALSE(p.is_leader);
    }
  }
  // A follower: the leader reachable, the other follower unknown, no match indexes.
  uint64_t f = l == 1 ? 2 : 1;
  uint64_t other = 6 - l - f;
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  PeerStatus seen;
  while (absl::Now() < deadline) {
    seen = find(nodes_[f]->node->Peers(), l);
    if (seen.reachability == Reachability::kReachable) break;
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_TRUE(seen.is_leader);
  EXPECT_EQ(seen.reachability, Reachability::kReachable);
  EXPECT_EQ(find(nodes_[f]->node->Peers(), other).reachability, Reachability::kUnknown);
  EXPECT_EQ(find(nodes_[f]->node->Peers(), other).match, 0u);

  // Stop a follower: the leader reports it unreachable, the rest reachable.
  Stop(other);
  l = poll([&](uint64_t, const std::vector<PeerStatus>& ps) {
    for (const PeerStatus& p : ps) {
      auto want = p.raft_id == other ? Reachability::kUnreachable : Reachability::kReachable;
      if (p.reachability != want) return false;
    }
    return true;
  });
  ASSERT_NE(l, 0u) << "the stopped member never became unreachable on the leader";
  EXPECT_GE(find(nodes_[l]->node->Peers(), other).since_contact,
            absl::Milliseconds(20) * 10);  // the election timeout of this test (20 ms ticks)
  // Restarted, it is reachable again.
  Start(other);
  l = poll([&](uint64_t, const std::vector<PeerStatus>& ps) {
    return find(ps, other).reachability == Reachability::kReachable;
  });
  EXPECT_NE(l, 0u) << "the restarted member never became reachable again";
}

// NodeOptions::overlap_leader_sync: the leader's fdatasync on the sync thread. Writes commit and
// apply everywhere, and members restarted from disk (the leader included) have all of them.
TEST_F(NodeTest, OverlappedLeaderSyncCommitsAndRecovers) {
  overlap_leader_sync_ = true;
  for (uint64_t id = 1; id <= 3; ++id) Stop(id);
  for (uint64_t id = 1; id <= 3; ++id) Start(id);
  uint64_t l = WaitLeader();
  ASSERT_NE(l, 0u);
  std::vector<std::string> acked;
  for (int i = 0; i < 80; ++i) {
    std::string item = "o" + std::to_string(i);
    if (nodes_[l]->node->ProposeAndWait(item, absl::Seconds(10)).ok()) {
      acked.push_back(item);
    } else {
      l = WaitLeader();  // a leader change on a loaded machine is allowed
      ASSERT_NE(l, 0u);
    }
  }
  ASSERT_GE(acked.size(), 70u);
  // Restart every member (the leader too) from its disk; every acknowledged write survives.
  for (uint64_t id = 1; id <= 3; ++id) Stop(id);
  for (uint64_t id = 1; id <= 3; ++id) Start(id);
  l = WaitLeader();
  ASSERT_NE(l, 0u);
  for (uint64_t id = 1; id <= 3; ++id) {
    ASSERT_TRUE(nodes_[id]->node->ReadBarrier(absl::Seconds(20)).ok()) << id;
    auto items = nodes_[id]->sm.items();
    for (const std::string& a : acked) {
      EXPECT_NE(std::find(items.begin(), items.end(), a), items.end()) << a << " on " << id;
    }
  }
}

}  // namespace
}  // namespace shoal::manager::raft
