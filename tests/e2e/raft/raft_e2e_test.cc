// Real shoal-raft-server processes on loopback: kill -9 of the leader in a loop while a
// client writes (every acknowledged write must survive), snapshot install to a lagging and to
// a new member, and membership changes while writing.
#include <atomic>
#include <filesystem>
#include <mutex>
#include <thread>

#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/e2e/raft/raft_cluster.h"

namespace shoal::manager::raft::e2e {
namespace {

// Writes unique keys until stopped; remembers every acknowledged one.
class Writer {
 public:
  explicit Writer(ProcCluster& c, std::string prefix) : c_(c), prefix_(std::move(prefix)) {
    thread_ = std::thread([this] {
      for (int n = 0; !stop_; ++n) {
        std::string k = prefix_ + std::to_string(n), v = "value-" + std::to_string(n);
        if (c_.Put(k, v)) {
          std::lock_guard<std::mutex> l(mu_);
          acked_.emplace_back(k, v);
        }
      }
    });
  }
  ~Writer() { Stop(); }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  size_t count() {
    std::lock_guard<std::mutex> l(mu_);
    return acked_.size();
  }
  std::vector<std::pair<std::string, std::string>> acked() {
    std::lock_guard<std::mutex> l(mu_);
    return acked_;
  }
  // Polls until `n` more writes are acknowledged; false after `secs`.
  bool WaitMore(size_t n, double secs) {
    size_t target = count() + n;
    absl::Time deadline = absl::Now() + absl::Seconds(secs);
    while (count() < target) {
      if (absl::Now() > deadline) return false;
      absl::SleepFor(absl::Milliseconds(10));
    }
    return true;
  }

 private:
  ProcCluster& c_;
  std::string prefix_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::vector<std::pair<std::string, std::string>> acked_;
  std::thread thread_;
};

void ExpectAllPresent(ProcCluster& c, int member,
                      const std::vector<std::pair<std::string, std::string>>& acked) {
  size_t missing = 0;
  for (auto& [k, v] : acked) {
    auto r = c.Get(member, k);
    ASSERT_TRUE(r.has_value()) << "member " << member << " did not answer a read";
    if (!r->has_value() || **r != v) {
      if (++missing <= 5) ADD_FAILURE() << "member " << member << ": acknowledged " << k << " lost";
    }
  }
  EXPECT_EQ(missing, 0u) << "member " << member << " lost acknowledged writes";
}

bool WaitFor(const std::function<bool()>& cond, double secs) {
  absl::Time deadline = absl::Now() + absl::Seconds(secs);
  while (!cond()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(50));
  }
  return true;
}

TEST(RaftE2E, KillNineTheLeaderTwentyTimesWhileWriting) {
  ProcCluster c;
  c.StartBootstrap({1, 2, 3});
  ASSERT_NE(c.WaitLeader(20), 0) << "no leader elected";
  Writer w(c, "kill-");
  ASSERT_TRUE(w.WaitMore(10, 20));
  std::set<int> leaders;
  for (int round = 0; round < 20; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    int l = c.WaitLeader(20);
    ASSERT_NE(l, 0) << "no leader";
    leaders.insert(l);
    c.Kill9(l);
    ASSERT_TRUE(w.WaitMore(1, 30)) << "no write committed after killing leader " << l;
    c.Restart(l);
    ASSERT_TRUE(WaitFor([&] { return c.Status(l).has_value(); }, 20)) << "restart of " << l;
    ASSERT_TRUE(w.WaitMore(5, 30));
  }
  w.Stop();
  auto acked = w.acked();
  EXPECT_GT(acked.size(), 100u);
  EXPECT_GE(leaders.size(), 2u) << "leadership never moved";
  for (int m : {1, 2, 3}) ExpectAllPresent(c, m, acked);
}

TEST(RaftE2E, SnapshotToLaggingAndNewMemberAndMembershipChangesWhileWriting) {
  ProcCluster c({"--snapshot-interval", "200", "--snapshot-keep", "20"});
  c.StartBootstrap({1, 2, 3});
  int l = c.WaitLeader(20);
  ASSERT_NE(l, 0);
  int lag = l == 3 ? 2 : 3;
  c.Kill9(lag);
  {
    Writer w(c, "lag-");
    ASSERT_TRUE(w.WaitMore(600, 120)) << "writes stalled with one member down";
    w.Stop();
    c.Restart(lag);
    // The leader compacted past what `lag` has: it can only catch up through a snapshot.
    ASSERT_TRUE(WaitFor(
        [&] {
          auto s = c.Status(lag);
          auto ls = c.Status(c.WaitLeader(5));
          return s && ls && s->applied() >= ls->commit() && s->keys() >= w.count();
        },
        60))
        << "lagging member did not catch up";
    ExpectAllPresent(c, lag, w.acked());
  }
  Writer w(c, "member-");
  ASSERT_TRUE(w.WaitMore(50, 30));
  // A brand-new member joins while writes continue: learner, snapshot, promotion.
  c.StartJoin(4, 1);
  ASSERT_TRUE(WaitFor(
      [&] {
        auto s = c.Status(c.WaitLeader(5));
        if (!s) return false;
        int voters = 0;
        for (auto& m : s->members()) voters += !m.learner();
        return voters == 4;
      },
      60))
      << "new member was not promoted to voter";
  ASSERT_TRUE(w.WaitMore(50, 30));
  // Remove a member (not the leader) while writing.
  int leader = c.WaitLeader(10);
  int victim = leader == 2 ? 3 : 2;
  ASSERT_TRUE(c.RemoveMember(victim));
  ASSERT_TRUE(WaitFor(
      [&] {
        auto s = c.Status(c.WaitLeader(5));
        return s && s->members_size() == 3;
      },
      30));
  c.Kill9(victim);
  ASSERT_TRUE(w.WaitMore(50, 30)) << "writes stalled after removing a member";
  w.Stop();
  auto acked = w.acked();
  for (int m : {1, 2, 3, 4}) {
    if (m != victim) ExpectAllPresent(c, m, acked);
  }
}

}  // namespace
}  // namespace shoal::manager::raft::e2e
