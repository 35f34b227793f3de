// Watch streams: event content and order, filters, ViewAndWatch, resume from a version,
// history bounds, slow consumers.
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "manager/store/store.h"
#include "tests/unit/store/store_testing.h"

namespace shoal::manager::store {
namespace {

using ::shoal::manager::store::testing::MakeService;
using ::shoal::manager::store::testing::MakeTask;
using ::shoal::manager::store::testing::StoreEnv;
using ::testing::HasSubstr;

constexpr absl::Duration kWait = absl::Seconds(10);

TEST(WatchTest, DeliversEachCommitWithItsEventsAndVersion) {
  StoreEnv env;
  auto w = env.store.Watch();
  ASSERT_TRUE(w.ok()) << w.status();
  auto v1 = env.store.Update([](Tx& tx) {
    RETURN_IF_ERROR(tx.Create(MakeService("s1", "web")));
    return tx.Create(MakeTask("t1", "s1", "", 1));
  });
  ASSERT_TRUE(v1.ok());
  api::Task t = *env.store.View().Get<api::Task>("t1");
  t.set_node_id("n1");
  auto v2 = env.store.Update([&](Tx& tx) { return tx.Update(t); });
  auto v3 = env.store.Update([](Tx& tx) { return tx.Delete<api::Task>("t1"); });
  ASSERT_TRUE(v2.ok() && v3.ok());

  auto c1 = (*w)->Next(kWait);
  ASSERT_TRUE(c1.ok()) << c1.status();
  EXPECT_EQ(c1->version, *v1);
  ASSERT_EQ(c1->events.size(), 2u);
  EXPECT_EQ(c1->events[0].type, EventType::kCreate);
  ASSERT_NE(c1->events[0].Get<api::Service>(), nullptr);
  EXPECT_EQ(c1->events[0].Get<api::Task>(), nullptr);
  EXPECT_EQ(c1->events[1].Get<api::Task>()->meta().version().index(), *v1);

  auto c2 = (*w)->Next(kWait);
  ASSERT_TRUE(c2.ok());
  EXPECT_EQ(c2->version, *v2);
  ASSERT_EQ(c2->events.size(), 1u);
  EXPECT_EQ(c2->events[0].type, EventType::kUpdate);
  EXPECT_EQ(c2->events[0].Get<api::Task>()->node_id(), "n1");
  EXPECT_EQ(c2->events[0].Old<api::Task>()->node_id(), "");

  auto c3 = (*w)->Next(kWait);
  ASSERT_TRUE(c3.ok());
  EXPECT_EQ(c3->events[0].type, EventType::kDelete);
  EXPECT_EQ(c3->events[0].Get<api::Task>()->node_id(), "n1");  // last state
  EXPECT_EQ((*w)->last_version(), *v3);

  EXPECT_FALSE((*w)->TryNext().has_value());
  auto none = (*w)->Next(absl::Milliseconds(1));
  EXPECT_EQ(none.status().code(), absl::StatusCode::kDeadlineExceeded);
}

TEST(WatchTest, RejectedEntriesProduceNoEvents) {
  StoreEnv env;
  auto w = *env.store.Watch();
  env.proposer.AppendForeign("garbage");
  ASSERT_TRUE(env.store.Update([](Tx& tx) { return tx.Create(MakeService("s1", "web")); }).ok());
  auto c = w->Next(kWait);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->version, 2u);
  EXPECT_FALSE(w->TryNext().has_value());
}

TEST(WatchTest, KindAndPredicateFilters) {
  StoreEnv env;
  WatchOptions only_tasks;
  only_tasks.kinds = {Kind::kTask};
  auto tasks = *env.store.Watch(only_tasks);
  WatchOptions running;
  running.filter = [](const Event& e) {
    const api::Task* t = e.Get<api::Task>();
    return t != nullptr && t->status().state() == api::TASK_STATE_RUNNING;
  };
  auto run = *env.store.Watch(running);
  ASSERT_TRUE(env.store
                  .Update([](Tx& tx) {
                    RETURN_IF_ERROR(tx.Create(MakeService("s1", "web")));
                    return tx.Create(MakeTask("t1", "s1", "n1", 1));
                  })
                  .ok());
  ASSERT_TRUE(env.store.Update([](Tx& tx) { return tx.Create(MakeService("s2", "api")); }).ok());
  api::Task t = *env.store.View().Get<api::Task>("t1");
  t.mutable_status()->set_state(api::TASK_STATE_RUNNING);
  ASSERT_TRUE(env.store.Update([&](Tx& tx) { return tx.Update(t); }).ok());

  auto c = tasks->Next(kWait);
  ASSERT_TRUE(c.ok());
  ASSERT_EQ(c->events.size(), 1u);  // the service create in the same commit is filtered out
  EXPECT_NE(c->events[0].Get<api::Task>(), nullptr);
  c = tasks->Next(kWait);  // the commit with only a service is skipped entirely
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->events[0].type, EventType::kUpdate);
  EXPECT_FALSE(tasks->TryNext().has_value());

  c = run->Next(kWait);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->events.size(), 1u);
  EXPECT_EQ(c->events[0].type, EventType::kUpdate);
  EXPECT_FALSE(run->TryNext().has_value());
}

TEST(WatchTest, ViewAndWatchStartsExactlyAfterTheView) {
  StoreEnv env;
  ASSERT_TRUE(env.store.Update([](Tx& tx) { return tx.Create(MakeService("s1", "web")); }).ok());
  size_t seen = 0;
  uint64_t view_version = 0;
  auto w = env.store.ViewAndWatch([&](const ReadView& v) {
    seen = v.Count<api::Service>();
    view_version = v.version();
  });
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(seen, 1u);
  EXPECT_EQ((*w)->last_version(), view_version);
  ASSERT_TRUE(env.store.Update([](Tx& tx) { return tx.Create(MakeService("s2", "api")); }).ok());
  auto c = (*w)->Next(kWait);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->events[0].Get<api::Service>()->id(), "s2");
  EXPECT_FALSE((*w)->TryNext().has_value());
}

TEST(WatchTest, ResumeFromVersionReplaysHistoryWithoutGapsOrDuplicates) {
  StoreEnv env;
  std::vector<uint64_t> versions;
  for (int i = 0; i < 10; ++i) {
    auto v = env.store.Update(
        [&](Tx& tx) { return tx.Create(MakeTask(absl::StrCat("t", i), "s", "n", i)); });
    ASSERT_TRUE(v.ok());
    versions.push_back(*v);
  }
  WatchOptions o;
  o.from_version = versions[3];
  auto w = *env.store.Watch(o);
  for (size_t i = 4; i < versions.size(); ++i) {
    auto c = w->Next(kWait);
    ASSERT_TRUE(c.ok());
    EXPECT_EQ(c->version, versions[i]);
  }
  EXPECT_FALSE(w->TryNext().has_value());
  o.from_version = env.store.version() + 5;
  auto future = env.store.Watch(o);
  EXPECT_EQ(future.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(WatchTest, TooOldVersionIsAClearError) {
  StoreOptions opts;
  opts.history_commits = 5;
  StoreEnv env(opts);
  for (int i = 0; i < 12; ++i) {
    ASSERT_TRUE(
        env.store
            .Update([&](Tx& tx) { return tx.Create(MakeTask(absl::StrCat("t", i), "s", "n", i)); })
            .ok());
  }
  EXPECT_EQ(env.store.watch_history_floor(), 7u);  // versions 8..12 are kept
  WatchOptions o;
  o.from_version = 6;
  auto w = env.store.Watch(o);
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_THAT(w.status().message(), HasSubstr("watch from version 6: too old"));
  o.from_version = 7;
  auto ok = env.store.Watch(o);
  ASSERT_TRUE(ok.ok());
  auto c = (*ok)->Next(kWait);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->version, 8u);
}

TEST(WatchTest, HistoryIsAlsoBoundedByEvents) {
  StoreOptions opts;
  opts.history_events = 10;
  StoreEnv env(opts);
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(env.store
                    .Update([&](Tx& tx) {
                      for (int j = 0; j < 4; ++j) {
                        RETURN_IF_ERROR(
                            tx.Create(MakeTask(absl::StrCat("t", i, "-", j), "s", "n", j)));
                      }
                      return absl::OkStatus();
                    })
                    .ok());
  }
  // 4 commits of 4 events: only the last two fit in 10 events.
  EXPECT_EQ(env.store.watch_history_floor(), 2u);
  WatchOptions o;
  o.from_version = 1;
  EXPECT_EQ(env.store.Watch(o).status().code(), absl::StatusCode::kOutOfRange);
}

TEST(WatchTest, SlowConsumerFailsLoudlyAndResumesWithoutLoss) {
  StoreOptions opts;
  opts.watch_queue_limit = 3;
  StoreEnv env(opts);
  auto w = *env.store.Watch();
  for (int i = 0; i < 6; ++i) {
    ASSERT_TRUE(
        env.store
            .Update([&](Tx& tx) { return tx.Create(MakeTask(absl::StrCat("t", i), "s", "n", i)); })
            .ok());
  }
  std::vector<uint64_t> got;
  for (int i = 0; i < 3; ++i) got.push_back(w->Next(kWait)->version);
  auto err = w->Next(kWait);
  ASSERT_FALSE(err.ok());
  EXPECT_EQ(err.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(err.status().message(), HasSubstr("fell behind"));
  WatchOptions o;
  o.from_version = w->last_version();
  auto resumed = *env.store.Watch(o);
  while (auto c = resumed->TryNext()) got.push_back(c->version);
  EXPECT_EQ(got, (std::vector<uint64_t>{1, 2, 3, 4, 5, 6}));
}

TEST(WatchTest, CloseAndStoreShutdownEndTheStream) {
  auto env = std::make_unique<StoreEnv>();
  auto w1 = *env->store.Watch();
  auto w2 = *env->store.Watch();
  w1->Close();
  EXPECT_EQ(w1->Next(kWait).status().code(), absl::StatusCode::kCancelled);
  env.reset();
  auto s = w2->Next(kWait);
  EXPECT_EQ(s.status().code(), absl::StatusCode::kCancelled);
  EXPECT_THAT(s.status().message(), HasSubstr("store shut down"));
}

}  // namespace
}  // namespace shoal::manager::store
