// MemoryStore transactions: versions, timestamps, optimistic concurrency, name uniqueness,
// indexes, atomicity, leadership and proposer failures.
#include "manager/store/store.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
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

std::vector<std::string> Ids(const std::vector<std::shared_ptr<const api::Task>>& tasks) {
  std::vector<std::string> out;
  for (const auto& t : tasks) out.push_back(t->id());
  return out;
}

TEST(StoreTest, CreateSetsVersionToRaftIndexAndTimestampsFromTheProposerClock) {
  StoreEnv env;
  env.proposer.SkipIndexes(4);  // e.g. the election no-op and configuration entries
  auto v = env.store.Update([](Tx& tx) { return tx.Create(MakeService("s1", "web")); });
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(*v, 5u);
  EXPECT_EQ(env.store.version(), 5u);
  auto s = env.store.View().Get<api::Service>("s1");
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->meta().version().index(), 5u);
  EXPECT_EQ(s->meta().created_at().seconds(), absl::ToUnixSeconds(env.clock.Now()));
  EXPECT_EQ(s->meta().updated_at().seconds(), absl::ToUnixSeconds(env.clock.Now()));

  env.clock.Advance(absl::Seconds(10));
  api::Service copy = *s;
  copy.mutable_spec()->mutable_replicated()->set_replicas(3);
  copy.mutable_meta()->mutable_created_at()->set_seconds(1);  // ignored: created_at is the store's
  v = env.store.Update([&](Tx& tx) { return tx.Update(copy); });
  ASSERT_TRUE(v.ok()) << v.status();
  s = env.store.View().Get<api::Service>("s1");
  EXPECT_EQ(s->meta().version().index(), *v);
  EXPECT_EQ(s->spec().replicated().replicas(), 3u);
  EXPECT_EQ(s->meta().created_at().seconds(), absl::ToUnixSeconds(env.clock.Now()) - 10);
  EXPECT_EQ(s->meta().updated_at().seconds(), absl::ToUnixSeconds(env.clock.Now()));
}

TEST(StoreTest, StaleVersionIsRejectedAsOutOfSequenceNamingTheObject) {
  StoreEnv env;
  ASSERT_TRUE(env.store.Update([](Tx& tx) { return tx.Create(MakeService("s1", "web")); }).ok());
  api::Service read1 = *env.store.View().Get<api::Service>("s1");
  api::Service read2 = read1;
  read1.mutable_spec()->mutable_replicated()->set_replicas(2);
  ASSERT_TRUE(env.store.Update([&](Tx& tx) { return tx.Update(read1); }).ok());
  read2.mutable_spec()->mutable_replicated()->set_replicas(9);
  auto v = env.store.Update([&](Tx& tx) { return tx.Update(read2); });
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.status().code(), absl::StatusCode::kAborted);
  EXPECT_THAT(v.status().message(), HasSubstr("update out of sequence: service s1"));
  EXPECT_EQ(env.store.View().Get<api::Service>("s1")->spec().replicated().replicas(), 2u);
}

// The version check also runs when the entry is applied: a write committed by someone else
// between the transaction's read and its commit makes the whole entry fail, on every replica.
TEST(StoreTest, ConflictDetectedAtApplyTimeRejectsTheWholeEntry) {
  StoreEnv env;
  ASSERT_TRUE(env.store
                  .Update([](Tx& tx) {
                    RETURN_IF_ERROR(tx.Create(MakeTask("t1", "svc", "n1", 1)));
                    return tx.Create(MakeTask("t2", "svc", "n1", 2));
                  })
                  .ok());
  api::Task t1 = *env.store.View().Get<api::Task>("t1");
  // Another leader's entry updating t1 lands between our read and our append.
  api::InternalRaftRequest foreign;
  foreign.set_id(12345);
  auto* a = foreign.add_actions();
  a->set_kind(api::StoreAction::KIND_UPDATE);
  *a->mutable_task() = t1;
  a->mutable_task()->set_node_id("n9");
  env.proposer.SetBeforeAppend([&] {
    env.proposer.SetBeforeAppend(nullptr);
    env.proposer.AppendForeign(foreign.SerializeAsString());
  });
  auto v = env.store.Update([&](Tx& tx) {
    api::Task t2 = *tx.Get<api::Task>("t2");
    t2.mutable_status()->set_state(api::TASK_STATE_RUNNING);
    RETURN_IF_ERROR(tx.Update(t2));
    api::Task mine = t1;
    mine.mutable_status()->set_state(api::TASK_STATE_FAILED);
    return tx.Update(mine);
  });
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.status().code(), absl::StatusCode::kAborted);
  EXPECT_THAT(v.status().message(), HasSubstr("rejected at index"));
  EXPECT_THAT(v.status().message(), HasSubstr("update out of sequence: task t1"));
  auto view = env.store.View();
  EXPECT_EQ(view.Get<api::Task>("t1")->node_id(), "n9");  // the foreign write won
  EXPECT_EQ(view.Get<api::Task>("t1")->status().state(), api::TASK_STATE_NEW);
  // All or nothing: t2's change in the same entry did not happen either.
  EXPECT_EQ(view.Get<api::Task>("t2")->status().state(), api::TASK_STATE_NEW);
  EXPECT_EQ(view.version(), env.proposer.last_index());
}

TEST(StoreTest, NamesAreUniquePerKindCaseInsensitive) {
  StoreEnv env;
  ASSERT_TRUE(env.store
                  .Update([](Tx& tx) {
                    RETURN_IF_ERROR(tx.Create(MakeService("s1", "web")));
                    RETURN_IF_ERROR(tx.Create(MakeNetwork("n1", "web")));  // other kind: fine
                    RETURN_IF_ERROR(tx.Create(MakeSecret("x1", "web")));
                    return tx.Create(MakeConfig("c1", "web"));
                  })
                  .ok());
  auto v = env.store.Update([](Tx& tx) { return tx.Create(MakeService("s2", "WEB")); });
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(v.status().message(), HasSubstr("name \"WEB\" is already used by service s1"));
  for (auto fn : std::vector<std::function<absl::Status(Tx&)>>{
           [](Tx& tx) { return tx.Create(MakeNetwork("n2", "Web")); },
           [](Tx& tx) { return tx.Create(MakeSecret("x2", "web")); },
           [](Tx& tx) { return tx.Create(MakeConfig("c2", "web")); }}) {
    auto r = env.store.Update(fn);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kAlreadyExists) << r.status();
  }
  // Renaming onto a taken name fails; renaming to a free one frees the old name.
  ASSERT_TRUE(env.store.Update([](Tx& tx) { return tx.Create(MakeService("s2", "api")); }).ok());
  api::Service s2 = *env.store.View().Get<api::Service>("s2");
  s2.mutable_spec()->mutable_annotations()->set_name("Web");
  EXPECT_EQ(env.store.Update([&](Tx& tx) { return tx.Update(s2); }).status().code(),
            absl::StatusCode::kAlreadyExists);
  api::Service s1 = *env.store.View().Get<api::Service>("s1");
  s1.mutable_spec()->mutable_annotations()->set_name("frontend");
  ASSERT_TRUE(env.store.Update([&](Tx& tx) { return tx.Update(s1); }).ok());
  EXPECT_TRUE(env.store.Update([&](Tx& tx) { return tx.Update(s2); }).ok());
  EXPECT_EQ(env.store.View().Find<api::Service>(ByName("WEB")).size(), 1u);
  // Nodes and tasks may share names.
  EXPECT_TRUE(env.store
                  .Update([](Tx& tx) {
                    RETURN_IF_ERROR(tx.Create(MakeNode("node1", "host")));
                    return tx.Create(MakeNode("node2", "host"));
                  })
                  .ok());
  EXPECT_EQ(env.store.View().Find<api::Node>(ByName("host")).size(), 2u);
}

TEST(StoreTest, BadObjectsGetClearErrorsAndNothingIsProposed) {
  StoreEnv env;
  int before = env.proposer.proposals();
  auto v = env.store.Update([](Tx& tx) { return tx.Create(MakeService("", "web")); });
  EXPECT_EQ(v.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(v.status().message(), HasSubstr("service: field id is empty"));
  v = env.store.Update([](Tx& tx) { return tx.Create(MakeService("s1", "")); });
  EXPECT_THAT(v.status().message(), HasSubstr("service s1: field spec.annotations.name is empty"));
  v = env.store.Update([](Tx& tx) { return tx.Update(MakeService("nope", "x")); });
  EXPECT_EQ(v.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(v.status().message(), HasSubstr("update service nope: no such object"));
  v = env.store.Update([](Tx& tx) { return tx.Delete<api::Task>("nope"); });
  EXPECT_EQ(v.status().code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(env.store.Update([](Tx& tx) { return tx.Create(MakeService("s1", "a")); }).ok());
  v = env.store.Update([](Tx& tx) { return tx.Create(MakeService("s1", "b")); });
  EXPECT_EQ(v.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(v.status().message(), HasSubstr("create service s1: an object with this id"));
  EXPECT_EQ(env.proposer.proposals(), before + 1);
}

TEST(StoreTest, FailingTransactionFunctionProposesNothing) {
  StoreEnv env;
  auto v = env.store.Update([](Tx& tx) {
    RETURN_IF_ERROR(tx.Create(MakeService("s1", "web")));
    return absl::InternalError("boom");
  });
  EXPECT_EQ(v.status(), absl::InternalError("boom"));
  EXPECT_EQ(env.proposer.proposals(), 0);
  EXPECT_EQ(env.store.View().Get<api::Service>("s1"), nullptr);
}

TEST(StoreTest, TransactionReadsItsOwnWritesThroughIndexesAndCollapsesActions) {
  StoreEnv env;
  ASSERT_TRUE(
      env.store.Update([](Tx& tx) { return tx.Create(MakeTask("old", "svc", "n1", 1)); }).ok());
  auto v = env.store.Update([](Tx& tx) {
    RETURN_IF_ERROR(tx.Create(MakeTask("t1", "svc", "n1", 2)));
    EXPECT_EQ(tx.Find<api::Task>(ByServiceId("svc")).size(), 2u);
    api::Task t = *tx.Get<api::Task>("t1");
    t.set_node_id("n2");
    RETURN_IF_ERROR(tx.Update(t));  // create + update = one create
    EXPECT_EQ(tx.Find<api::Task>(ByNodeId("n2")).size(), 1u);
    RETURN_IF_ERROR(tx.Create(MakeTask("tmp", "svc", "n1", 3)));
    RETURN_IF_ERROR(tx.Delete<api::Task>("tmp"));  // create + delete = nothing
    RETURN_IF_ERROR(tx.Delete<api::Task>("old"));
    EXPECT_EQ(tx.Find<api::Task>(ByServiceId("svc")).size(), 1u);
    EXPECT_EQ(tx.changes(), 2u);
    return absl::OkStatus();
  });
  ASSERT_TRUE(v.ok()) << v.status();
  auto log = env.proposer.Log();
  api::InternalRaftRequest req;
  ASSERT_TRUE(req.ParseFromString(log.back().second));
  ASSERT_EQ(req.actions_size(), 2);
  EXPECT_EQ(req.actions(0).kind(), api::StoreAction::KIND_CREATE);
  EXPECT_EQ(req.actions(0).task().node_id(), "n2");
  EXPECT_EQ(req.actions(1).kind(), api::StoreAction::KIND_REMOVE);
  auto view = env.store.View();
  EXPECT_EQ(Ids(view.Find<api::Task>(All())), std::vector<std::string>{"t1"});
  EXPECT_EQ(view.Get<api::Task>("t1")->node_id(), "n2");
}

TEST(StoreTest, DeleteThenCreateInOneTransactionReplacesTheObject) {
  StoreEnv env;
  ASSERT_TRUE(env.store.Update([](Tx& tx) { return tx.Create(MakeService("s1", "web")); }).ok());
  auto v = env.store.Update([](Tx& tx) {
    RETURN_IF_ERROR(tx.Delete<api::Service>("s1"));
    return tx.Create(MakeService("s1", "web2"));
  });
  ASSERT_TRUE(v.ok()) << v.status();
  auto s = env.store.View().Get<api::Service>("s1");
  EXPECT_EQ(s->spec().annotations().name(), "web2");
  EXPECT_EQ(s->meta().version().index(), *v);
}

TEST(StoreTest, SecondaryIndexes) {
  StoreEnv env;
  ASSERT_TRUE(
      env.store
          .Update([](Tx& tx) {
            api::Task a = MakeTask("a", "svc1", "n1", 1, api::TASK_STATE_RUNNING);
            a.add_networks()->set_network_id("net1");
            a.mutable_spec()->add_networks()->set_target("net2");
            auto* sec = a.mutable_spec()->mutable_container()->add_secrets();
            sec->set_secret_id("sec1");
            a.mutable_spec()->mutable_container()->add_configs()->set_config_id("cfg1");
            RETURN_IF_ERROR(tx.Create(a));
            api::Task b = MakeTask("b", "svc1", "n2", 2, api::TASK_STATE_PENDING);
            b.set_desired_state(api::TASK_STATE_SHUTDOWN);
            RETURN_IF_ERROR(tx.Create(b));
            RETURN_IF_ERROR(tx.Create(MakeTask("c", "svc2", "n1", 1, api::TASK_STATE_RUNNING)));
            api::Service s = MakeService("svc1", "web");
            s.mutable_spec()->mutable_task()->add_networks()->set_target("net1");
            s.mutable_spec()->mutable_task()->mutable_container()->add_secrets()->set_secret_id(
                "sec1");
            RETURN_IF_ERROR(tx.Create(s));
            api::Node n = MakeNode("n1", "host1");
            n.add_attachments()->set_network_id("net1");
            return tx.Create(n);
          })
          .ok());
  auto view = env.store.View();
  EXPECT_EQ(Ids(view.Find<api::Task>(ByServiceId("svc1"))), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(Ids(view.Find<api::Task>(ByNodeId("n1"))), (std::vector<std::string>{"a", "c"}));
  EXPECT_EQ(Ids(view.Find<api::Task>(BySlot("svc1", 1))), std::vector<std::string>{"a"});
  EXPECT_EQ(Ids(view.Find<api::Task>(BySlot("svc1", 3))), std::vector<std::string>{});
  EXPECT_EQ(Ids(view.Find<api::Task>(ByTaskState(api::TASK_STATE_RUNNING))),
            (std::vector<std::string>{"a", "c"}));
  EXPECT_EQ(Ids(view.Find<api::Task>(ByDesiredState(api::TASK_STATE_SHUTDOWN))),
            std::vector<std::string>{"b"});
  EXPECT_EQ(Ids(view.Find<api::Task>(ByNetworkId("net1"))), std::vector<std::string>{"a"});
  EXPECT_EQ(Ids(view.Find<api::Task>(ByNetworkId("net2"))), std::vector<std::string>{"a"});
  EXPECT_EQ(Ids(view.Find<api::Task>(BySecretId("sec1"))), std::vector<std::string>{"a"});
  EXPECT_EQ(Ids(view.Find<api::Task>(ByConfigId("cfg1"))), std::vector<std::string>{"a"});
  EXPECT_EQ(view.Find<api::Service>(ByNetworkId("net1")).size(), 1u);
  EXPECT_EQ(view.Find<api::Service>(BySecretId("sec1")).size(), 1u);
  EXPECT_EQ(view.Find<api::Node>(ByNetworkId("net1")).size(), 1u);
  EXPECT_EQ(view.Find<api::Task>(ByNamePrefix("SVC1.")).size(), 2u);
  EXPECT_EQ(Ids(view.Find<api::Task>(ByIdPrefix("b"))), std::vector<std::string>{"b"});

  // Moving a task updates every index it leaves and enters.
  api::Task a = *view.Get<api::Task>("a");
  a.set_node_id("n3");
  a.mutable_status()->set_state(api::TASK_STATE_FAILED);
  a.clear_networks();
  ASSERT_TRUE(env.store.Update([&](Tx& tx) { return tx.Update(a); }).ok());
  auto v2 = env.store.View();
  EXPECT_EQ(Ids(v2.Find<api::Task>(ByNodeId("n1"))), std::vector<std::string>{"c"});
  EXPECT_EQ(Ids(v2.Find<api::Task>(ByNodeId("n3"))), std::vector<std::string>{"a"});
  EXPECT_EQ(Ids(v2.Find<api::Task>(ByTaskState(api::TASK_STATE_RUNNING))),
            std::vector<std::string>{"c"});
  EXPECT_EQ(Ids(v2.Find<api::Task>(ByNetworkId("net1"))), std::vector<std::string>{});
  EXPECT_EQ(Ids(v2.Find<api::Task>(ByNetworkId("net2"))), std::vector<std::string>{"a"});
  // The old view still answers from its version.
  EXPECT_EQ(Ids(view.Find<api::Task>(ByNodeId("n1"))), (std::vector<std::string>{"a", "c"}));
  // Deleting removes it from every index.
  ASSERT_TRUE(env.store.Update([](Tx& tx) { return tx.Delete<api::Task>("a"); }).ok());
  auto v3 = env.store.View();
  EXPECT_TRUE(v3.Find<api::Task>(ByNetworkId("net2")).empty());
  EXPECT_TRUE(v3.Find<api::Task>(BySecretId("sec1")).empty());
  EXPECT_TRUE(v3.Find<api::Task>(ByNodeId("n3")).empty());
}

TEST(StoreTest, NotLeaderAndProposerFailures) {
  StoreEnv env;
  env.proposer.SetLeader(false);
  auto v = env.store.Update([](Tx& tx) { return tx.Create(MakeService("s1", "web")); });
  EXPECT_EQ(v.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(v.status().message(), HasSubstr("not the raft leader"));
  env.proposer.SetLeader(true);

  // Lost before reaching the log: the error is returned and nothing is applied.
  env.proposer.FailNext(absl::UnavailableError("leadership lost"));
  v = env.store.Update([](Tx& tx) { return tx.Create(MakeService("s1", "web")); });
  EXPECT_EQ(v.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(v.status().message(), HasSubstr("propose store transaction (1 changes)"));
  EXPECT_EQ(env.store.View().Get<api::Service>("s1"), nullptr);

  // Applied, but the raft node reported an error afterwards: the store knows the outcome
  // from its own apply and reports success with the version.
  env.proposer.ApplyThenFail(absl::UnavailableError("leadership lost"));
  v = env.store.Update([](Tx& tx) { return tx.Create(MakeService("s1", "web")); });
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_NE(env.store.View().Get<api::Service>("s1"), nullptr);
}

TEST(StoreTest, OversizedTransactionIsRefusedBeforeProposing) {
  StoreOptions o;
  o.max_tx_bytes = 4096;
  StoreEnv env(o);
  auto v = env.store.Update(
      [](Tx& tx) { return tx.Create(MakeSecret("x1", "big", std::string(8000, 'x'))); });
  EXPECT_EQ(v.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(v.status().message(), HasSubstr("exceeds the limit of 4096 bytes"));
  EXPECT_EQ(env.proposer.proposals(), 0);
}

TEST(StoreTest, MalformedOrEmptyEntriesOnlyAdvanceTheVersion) {
  StoreEnv env;
  env.proposer.AppendForeign("\xff\xff not a proto");
  env.proposer.AppendForeign("");
  EXPECT_EQ(env.store.version(), 2u);
  EXPECT_EQ(env.store.View().Count<api::Task>(), 0u);
  // Replays at or below the current version are ignored.
  env.store.Apply(1, "");
  EXPECT_EQ(env.store.version(), 2u);
}

// A follower applying the same log ends in the same state (versions included).
TEST(StoreTest, FollowerReplayingTheLogConverges) {
  StoreEnv env;
  base::FakeRandom r2(7);
  FakeProposer follower_proposer;
  follower_proposer.SetLeader(false);
  MemoryStore follower(&follower_proposer, &env.clock, &r2);
  env.proposer.Attach(&follower);
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(env.store
                    .Update([&](Tx& tx) {
                      return tx.Create(
                          MakeTask(absl::StrCat("t", i), "svc", absl::StrCat("n", i % 3), i));
                    })
                    .ok());
  }
  ASSERT_TRUE(env.store.Update([](Tx& tx) { return tx.Delete<api::Task>("t7"); }).ok());
  auto a = *env.store.Snapshot();
  auto b = *follower.Snapshot();
  EXPECT_EQ(a, b);
  EXPECT_EQ(follower.version(), env.store.version());
  EXPECT_EQ(follower.View().Find<api::Task>(ByNodeId("n1")).size(),
            env.store.View().Find<api::Task>(ByNodeId("n1")).size());
  // Followers refuse local writes.
  EXPECT_EQ(follower.Update([](Tx& tx) { return tx.Delete<api::Task>("t1"); }).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace shoal::manager::store
