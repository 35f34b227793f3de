// Store snapshot / restore through raft snapshots (StoreSnapshot).
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "manager/store/store.h"
#include "tests/unit/store/store_testing.h"

namespace shoal::manager::store {
namespace {

using ::shoal::manager::store::testing::MakeConfig;
using ::shoal::manager::store::testing::MakeNetwork;
using ::shoal::manager::store::testing::MakeNode;
using ::shoal::manager::store::testing::MakeSecret;
using ::shoal::manager::store::testing::MakeService;
using ::shoal::manager::store::testing::MakeTask;
using ::shoal::manager::store::testing::StoreEnv;
using ::testing::HasSubstr;

void Populate(MemoryStore& store) {
  ASSERT_TRUE(store
                  .Update([](Tx& tx) {
                    RETURN_IF_ERROR(tx.Create(MakeNode("n1", "host1")));
                    RETURN_IF_ERROR(tx.Create(MakeService("s1", "web")));
                    RETURN_IF_ERROR(tx.Create(MakeNetwork("net1", "overlay1")));
                    RETURN_IF_ERROR(tx.Create(MakeSecret("x1", "pw")));
                    RETURN_IF_ERROR(tx.Create(MakeConfig("c1", "conf")));
                    api::Cluster c;
                    c.set_id("cl");
                    c.mutable_spec()->mutable_annotations()->set_name("default");
                    RETURN_IF_ERROR(tx.Create(c));
                    for (int i = 0; i < 20; ++i) {
                      RETURN_IF_ERROR(tx.Create(MakeTask(absl::StrCat("t", i), "s1", "n1", i)));
                    }
                    return absl::OkStatus();
                  })
                  .ok());
}

TEST(SnapshotTest, RestoreIntoAFreshStoreReproducesEverythingWithIndexes) {
  StoreEnv leader;
  Populate(leader.store);
  ASSERT_TRUE(leader.store.Update([](Tx& tx) { return tx.Delete<api::Task>("t3"); }).ok());
  auto snap = leader.store.Snapshot();
  ASSERT_TRUE(snap.ok());

  StoreEnv fresh;
  ASSERT_TRUE(fresh.store.Restore(leader.store.version(), *snap).ok());
  EXPECT_EQ(fresh.store.version(), leader.store.version());
  EXPECT_EQ(*fresh.store.Snapshot(), *snap);
  auto v = fresh.store.View();
  EXPECT_EQ(v.Count<api::Task>(), 19u);
  EXPECT_EQ(v.Find<api::Task>(ByServiceId("s1")).size(), 19u);
  EXPECT_EQ(v.Find<api::Network>(ByName("OVERLAY1")).size(), 1u);
  EXPECT_EQ(v.Get<api::Task>("t5")->meta().version().index(),
            leader.store.View().Get<api::Task>("t5")->meta().version().index());
  // Names stay unique after a restore.
  fresh.proposer.SkipIndexes(fresh.store.version());
  auto dup = fresh.store.Update([](Tx& tx) { return tx.Create(MakeService("s9", "web")); });
  EXPECT_EQ(dup.status().code(), absl::StatusCode::kAlreadyExists);
}

// A lagging follower gets a snapshot: its watchers see the jump as ordinary events and the
// entries after the snapshot continue the stream.
TEST(SnapshotTest, RestoreOverExistingStateEmitsTheDifferenceToWatchers) {
  StoreEnv leader;
  Populate(leader.store);
  StoreEnv follower;
  Populate(follower.store);  // same objects, different history (versions)
  ASSERT_TRUE(
      follower.store
          .Update([](Tx& tx) { return tx.Create(MakeTask("only-on-follower", "s1", "n1", 99)); })
          .ok());
  api::Task t1 = *leader.store.View().Get<api::Task>("t1");
  t1.set_node_id("n2");
  ASSERT_TRUE(leader.store
                  .Update([&](Tx& tx) {
                    RETURN_IF_ERROR(tx.Update(t1));
                    return tx.Create(MakeTask("new", "s1", "n1", 100));
                  })
                  .ok());
  leader.proposer.SkipIndexes(10);
  ASSERT_TRUE(leader.store.Update([](Tx& tx) { return tx.Delete<api::Task>("t2"); }).ok());

  auto w = *follower.store.Watch();
  uint64_t at = leader.store.version();
  ASSERT_TRUE(follower.store.Restore(at, *leader.store.Snapshot()).ok());
  auto c = w->Next(absl::Seconds(10));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->version, at);
  int creates = 0, updates = 0, deletes = 0;
  for (const Event& e : c->events) {
    if (e.type == EventType::kCreate) ++creates;
    if (e.type == EventType::kUpdate) ++updates;
    if (e.type == EventType::kDelete) ++deletes;
  }
  // Objects written by the same entry (same version) are unchanged; t1 was updated, "new"
  // created, "only-on-follower" and t2 deleted.
  EXPECT_EQ(creates, 1);
  EXPECT_EQ(deletes, 2);
  EXPECT_EQ(updates, 1);
  EXPECT_EQ(*follower.store.Snapshot(), *leader.store.Snapshot());
  // Entries after the snapshot apply on top; older ones are ignored.
  follower.store.Apply(at, "");
  EXPECT_EQ(follower.store.version(), at);
}

TEST(SnapshotTest, RestoringTheSameStateEmitsNothing) {
  StoreEnv env;
  Populate(env.store);
  auto w = *env.store.Watch();
  ASSERT_TRUE(env.store.Restore(env.store.version(), *env.store.Snapshot()).ok());
  EXPECT_FALSE(w->TryNext().has_value());
}

TEST(SnapshotTest, CorruptOrInconsistentSnapshotsAreRefusedAndStateKept) {
  StoreEnv env;
  Populate(env.store);
  uint64_t v = env.store.version();
  auto s = env.store.Restore(v + 1, "\xff\xfe garbage");
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(s.message(), HasSubstr("not a valid StoreSnapshot"));

  api::StoreSnapshot dup;
  *dup.add_services() = MakeService("a", "web");
  *dup.add_services() = MakeService("b", "WEB");
  s = env.store.Restore(v + 1, dup.SerializeAsString());
  EXPECT_EQ(s.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(s.message(), HasSubstr("restore store snapshot at index"));

  s = env.store.Restore(v - 1, api::StoreSnapshot().SerializeAsString());
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(env.store.version(), v);
  EXPECT_EQ(env.store.View().Count<api::Task>(), 20u);
}

}  // namespace
}  // namespace shoal::manager::store
