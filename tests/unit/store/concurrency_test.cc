// Concurrency: readers during writes see whole transactions only; watchers under concurrent
// writers see every commit exactly once. Written to run under ThreadSanitizer
// (make test SANITIZE=thread): all sharing goes through the store's own synchronization.
#include <algorithm>
#include <atomic>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "manager/store/store.h"
#include "tests/unit/store/store_testing.h"

namespace shoal::manager::store {
namespace {

using ::shoal::manager::store::testing::MakeTask;
using ::shoal::manager::store::testing::StoreEnv;

constexpr int kTasks = 500;

TEST(ConcurrencyTest, ReadersSeeOnlyWholeTransactionsWhileWritersCommit) {
  StoreEnv env;
  ASSERT_TRUE(env.store
                  .Update([](Tx& tx) {
                    for (int i = 0; i < kTasks; ++i) {
                      RETURN_IF_ERROR(tx.Create(MakeTask(absl::StrCat("t", i), "svc", "nA", i)));
                    }
                    return absl::OkStatus();
                  })
                  .ok());

  std::atomic<bool> stop{false};
  std::atomic<int> views{0};
  std::vector<std::thread> readers;
  std::vector<std::string> failures[3];
  for (int r = 0; r < 3; ++r) {
    readers.emplace_back([&, r] {
      uint64_t last = 0;
      while (!stop.load()) {
        ReadView v = env.store.View();
        size_t a = v.Find<api::Task>(ByNodeId("nA")).size();
        size_t b = v.Find<api::Task>(ByNodeId("nB")).size();
        uint64_t first_version = 0;
        bool same_version = true;
        v.ForEach<api::Task>(All(), [&](const std::shared_ptr<const api::Task>& t) {
          if (first_version == 0) first_version = t->meta().version().index();
          same_version &= t->meta().version().index() == first_version;
          return true;
        });
        if (!((a == kTasks && b == 0) || (a == 0 && b == kTasks))) {
          failures[r].push_back(absl::StrCat("torn view at ", v.version(), ": ", a, "/", b));
        }
        if (!same_version) failures[r].push_back(absl::StrCat("mixed versions at ", v.version()));
        if (v.version() < last) failures[r].push_back("version went backwards");
        last = v.version();
        views.fetch_add(1);
      }
    });
  }
  // The writer moves every task between two nodes in one transaction, 30 times.
  for (int round = 0; round < 30; ++round) {
    const std::string to = round % 2 == 0 ? "nB" : "nA";
    auto v = env.store.Update([&](Tx& tx) {
      for (const auto& t : tx.Find<api::Task>(All())) {
        api::Task copy = *t;
        copy.set_node_id(to);
        RETURN_IF_ERROR(tx.Update(copy));
      }
      return absl::OkStatus();
    });
    ASSERT_TRUE(v.ok()) << v.status();
  }
  // Let readers overlap with at least some writes, then stop.
  while (views.load() < 30) std::this_thread::yield();
  stop.store(true);
  for (auto& t : readers) t.join();
  for (const auto& f : failures) EXPECT_TRUE(f.empty()) << f.front();
}

TEST(ConcurrencyTest, WatchersNeverMissOrDuplicateUnderConcurrentWriters) {
  StoreEnv env;
  auto early = env.store.Watch();
  ASSERT_TRUE(early.ok());

  constexpr int kWriters = 4;
  constexpr int kPerWriter = 60;
  std::vector<std::vector<uint64_t>> committed(kWriters);
  std::atomic<int> started{0};
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      for (int i = 0; i < kPerWriter; ++i) {
        std::string id = absl::StrCat("w", w, "-", i);
        auto v = env.store.Update([&](Tx& tx) { return tx.Create(MakeTask(id, "svc", "n", i)); });
        if (v.ok()) committed[w].push_back(*v);
        // Update the previous task too (update events), and delete every 5th.
        if (i > 0) {
          std::string prev = absl::StrCat("w", w, "-", i - 1);
          auto u = env.store.Update([&](Tx& tx) {
            if (i % 5 == 0) return tx.Delete<api::Task>(prev);
            api::Task t = *tx.Get<api::Task>(prev);
            t.mutable_status()->set_state(api::TASK_STATE_RUNNING);
            return tx.Update(t);
          });
          if (u.ok()) committed[w].push_back(*u);
        }
        started.fetch_add(1);
      }
    });
  }

  // A late watcher joins mid-stream with ViewAndWatch and rebuilds the state from events.
  while (started.load() < kWriters * kPerWriter / 3) std::this_thread::yield();
  std::map<std::string, uint64_t> mirror;  // task id -> version
  auto late = env.store.ViewAndWatch([&](const ReadView& v) {
    v.ForEach<api::Task>(All(), [&](const std::shared_ptr<const api::Task>& t) {
      mirror[t->id()] = t->meta().version().index();
      return true;
    });
  });
  ASSERT_TRUE(late.ok());
  const uint64_t late_start = (*late)->last_version();

  // Consume the early watcher concurrently with the writers.
  std::vector<uint64_t> seen;
  std::thread consumer([&] {
    while (true) {
      auto c = (*early)->Next(absl::Seconds(30));
      if (!c.ok()) return;  // closed at the end
      seen.push_back(c->version);
    }
  });
  for (auto& t : writers) t.join();
  std::vector<uint64_t> all;
  for (const auto& c : committed) all.insert(all.end(), c.begin(), c.end());
  std::sort(all.begin(), all.end());
  ASSERT_EQ(all.size(), static_cast<size_t>(kWriters * (2 * kPerWriter - 1)));
  const uint64_t final_version = env.store.version();
  ASSERT_EQ(all.back(), final_version);

  // Drain the late watcher.
  std::vector<uint64_t> late_seen;
  while ((*late)->last_version() < final_version) {
    auto c = (*late)->Next(absl::Seconds(30));
    ASSERT_TRUE(c.ok()) << c.status();
    late_seen.push_back(c->version);
    for (const Event& e : c->events) {
      const auto* t = e.Get<api::Task>();
      ASSERT_NE(t, nullptr);
      if (e.type == EventType::kDelete) {
        ASSERT_EQ(mirror.erase(t->id()), 1u) << "delete of unknown " << t->id();
      } else {
        if (e.type == EventType::kCreate) {
          EXPECT_EQ(mirror.count(t->id()), 0u);
        }
        mirror[t->id()] = e.version;
      }
    }
  }
  // Wait until the early consumer has everything, then stop it.
  while (true) {
    // `seen` is only read after join below; poll the watcher's own position instead.
    if ((*early)->last_version() >= final_version) break;
    std::this_thread::yield();
  }
  (*early)->Close();
  consumer.join();

  EXPECT_EQ(seen, all);  // every commit exactly once, in order
  std::vector<uint64_t> want_late;
  for (uint64_t v : all) {
    if (v > late_start) want_late.push_back(v);
  }
  EXPECT_EQ(late_seen, want_late);
  std::map<std::string, uint64_t> truth;
  env.store.View().ForEach<api::Task>(All(), [&](const std::shared_ptr<const api::Task>& t) {
    truth[t->id()] = t->meta().version().index();
    return true;
  });
  EXPECT_EQ(mirror, truth);
}

TEST(ConcurrencyTest, ConcurrentWritersOfOneObjectSerializeWithoutLostUpdates) {
  StoreEnv env;
  ASSERT_TRUE(
      env.store.Update([](Tx& tx) { return tx.Create(MakeTask("t", "svc", "n", 0)); }).ok());
  constexpr int kThreads = 4;
  constexpr int kIncrements = 50;
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&] {
      for (int j = 0; j < kIncrements; ++j) {
        // Read-modify-write inside the transaction: local writers are serialized.
        auto v = env.store.Update([](Tx& tx) {
          api::Task t = *tx.Get<api::Task>("t");
          t.set_slot(t.slot() + 1);
          return tx.Update(t);
        });
        ASSERT_TRUE(v.ok()) << v.status();
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(env.store.View().Get<api::Task>("t")->slot(), uint64_t{kThreads * kIncrements});
}

}  // namespace
}  // namespace shoal::manager::store
