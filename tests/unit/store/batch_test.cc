// BatchUpdate: splitting at the change and byte limits, sub-update atomicity.
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "manager/store/store.h"
#include "tests/unit/store/store_testing.h"

namespace shoal::manager::store {
namespace {

using ::shoal::manager::store::testing::MakeSecret;
using ::shoal::manager::store::testing::MakeTask;
using ::shoal::manager::store::testing::StoreEnv;

std::vector<int> ActionsPerEntry(const FakeProposer& p) {
  std::vector<int> out;
  for (const auto& [index, data] : p.Log()) {
    api::InternalRaftRequest req;
    EXPECT_TRUE(req.ParseFromString(data));
    out.push_back(req.actions_size());
  }
  return out;
}

TEST(BatchTest, SplitsAt200Changes) {
  StoreEnv env;
  auto v = env.store.BatchUpdate([](Batch& b) {
    for (int i = 0; i < 450; ++i) {
      RETURN_IF_ERROR(b.Update(
          [&](Tx& tx) { return tx.Create(MakeTask(absl::StrCat("t", i), "svc", "n1", i)); }));
    }
    EXPECT_EQ(b.transactions(), 2u);
    return absl::OkStatus();
  });
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(ActionsPerEntry(env.proposer), (std::vector<int>{200, 200, 50}));
  EXPECT_EQ(*v, 3u);
  EXPECT_EQ(env.store.View().Count<api::Task>(), 450u);
}

TEST(BatchTest, SubUpdatesAreNeverSplitAcrossEntries) {
  StoreEnv env;
  auto v = env.store.BatchUpdate([](Batch& b) {
    for (int i = 0; i < 100; ++i) {
      RETURN_IF_ERROR(b.Update([&](Tx& tx) {
        for (int j = 0; j < 3; ++j) {
          RETURN_IF_ERROR(tx.Create(MakeTask(absl::StrCat("t", i, "-", j), "svc", "n1", j)));
        }
        return absl::OkStatus();
      }));
    }
    return absl::OkStatus();
  });
  ASSERT_TRUE(v.ok()) << v.status();
  // 66 sub-updates (198 changes) fit; the 67th would make 201, so it starts the next entry.
  EXPECT_EQ(ActionsPerEntry(env.proposer), (std::vector<int>{198, 102}));
}

TEST(BatchTest, SplitsByBytesBelowTheEntryLimit) {
  StoreOptions o;
  o.max_tx_bytes = 64 * 1024;
  StoreEnv env(o);
  auto v = env.store.BatchUpdate([](Batch& b) {
    for (int i = 0; i < 40; ++i) {
      RETURN_IF_ERROR(b.Update([&](Tx& tx) {
        return tx.Create(MakeSecret(absl::StrCat("x", i), absl::StrCat("s", i),
                                    std::string(10 * 1024, 'a' + i % 26)));
      }));
    }
    return absl::OkStatus();
  });
  ASSERT_TRUE(v.ok()) << v.status();
  size_t total = 0;
  for (const auto& [index, data] : env.proposer.Log()) {
    EXPECT_LE(data.size(), o.max_tx_bytes);
    api::InternalRaftRequest req;
    ASSERT_TRUE(req.ParseFromString(data));
    total += req.actions_size();
  }
  EXPECT_EQ(total, 40u);
  EXPECT_GE(env.proposer.Log().size(), 7u);  // 40 x 10 KiB, flushed at 3/4 of 64 KiB
  EXPECT_EQ(env.store.View().Count<api::Secret>(), 40u);
}

TEST(BatchTest, OversizedSubUpdateIsMovedToItsOwnEntry) {
  StoreOptions o;
  o.max_tx_bytes = 64 * 1024;
  StoreEnv env(o);
  int runs = 0;
  auto v = env.store.BatchUpdate([&](Batch& b) {
    RETURN_IF_ERROR(b.Update(
        [](Tx& tx) { return tx.Create(MakeSecret("x1", "a", std::string(30 * 1024, 'a'))); }));
    // 30 KiB + 40 KiB does not fit 64 KiB: rolled back, x1 committed, then run again.
    return b.Update([&](Tx& tx) {
      ++runs;
      return tx.Create(MakeSecret("x2", "b", std::string(40 * 1024, 'b')));
    });
  });
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(runs, 2);
  EXPECT_EQ(ActionsPerEntry(env.proposer), (std::vector<int>{1, 1}));
  EXPECT_EQ(env.store.View().Count<api::Secret>(), 2u);
}

TEST(BatchTest, FailedSubUpdateIsRolledBackAndEarlierOnesStay) {
  StoreEnv env;
  auto v = env.store.BatchUpdate([](Batch& b) {
    RETURN_IF_ERROR(b.Update([](Tx& tx) { return tx.Create(MakeTask("t1", "svc", "n1", 1)); }));
    absl::Status s = b.Update([](Tx& tx) {
      RETURN_IF_ERROR(tx.Create(MakeTask("t2", "svc", "n1", 2)));
      return tx.Create(MakeTask("t1", "svc", "n1", 1));  // duplicate: AlreadyExists
    });
    EXPECT_EQ(s.code(), absl::StatusCode::kAlreadyExists);
    return b.Update([](Tx& tx) {
      EXPECT_EQ(tx.Get<api::Task>("t2"), nullptr);  // the failed sub-update left nothing
      return tx.Create(MakeTask("t3", "svc", "n1", 3));
    });
  });
  ASSERT_TRUE(v.ok()) << v.status();
  auto view = env.store.View();
  EXPECT_NE(view.Get<api::Task>("t1"), nullptr);
  EXPECT_EQ(view.Get<api::Task>("t2"), nullptr);
  EXPECT_NE(view.Get<api::Task>("t3"), nullptr);
  EXPECT_EQ(ActionsPerEntry(env.proposer), std::vector<int>{2});
}

TEST(BatchTest, RollbackRestoresActionsReplacedAfterTheMark) {
  StoreEnv env;
  ASSERT_TRUE(
      env.store.Update([](Tx& tx) { return tx.Create(MakeTask("t1", "svc", "n1", 1)); }).ok());
  auto v = env.store.BatchUpdate([](Batch& b) {
    RETURN_IF_ERROR(b.Update([](Tx& tx) {
      api::Task t = *tx.Get<api::Task>("t1");
      t.set_node_id("n2");
      return tx.Update(t);
    }));
    absl::Status s = b.Update([](Tx& tx) {
      RETURN_IF_ERROR(tx.Delete<api::Task>("t1"));    // replaces the update action...
      return absl::InternalError("changed my mind");  // ...and is undone
    });
    EXPECT_FALSE(s.ok());
    return absl::OkStatus();
  });
  ASSERT_TRUE(v.ok()) << v.status();
  auto t = env.store.View().Get<api::Task>("t1");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->node_id(), "n2");
}

}  // namespace
}  // namespace shoal::manager::store
