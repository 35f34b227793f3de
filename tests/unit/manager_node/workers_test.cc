// Manager clusters with simulated workers (SimWorker): placement, a silent worker's tasks
// moving, a rolling update resuming on the next leader, the manager list sessions receive.
#include "tests/unit/manager_node/fixture.h"

namespace shoal::manager::node::clustertest {
namespace {

TEST_F(ManagerClusterTest, HundredReplicasRunOnSimulatedWorkersAndMoveWhenOneGoesSilent) {
  StartThree();
  Manager* leader = Leader();
  ASSERT_NE(leader, nullptr);
  auto tokens = leader->JoinTokens();
  ASSERT_TRUE(tokens.ok());
  std::vector<SimWorker> workers(5);
  for (auto& w : workers) {
    auto joined = ca::Join(leader->address(), tokens->first, clock_);
    ASSERT_TRUE(joined.ok()) << joined.status();
    w.cert = *joined;
    // No node id header: the dispatcher takes the identity from the certificate.
    w.agent = std::make_unique<dispatcher::testing::FakeAgent>(
        ca::DialManager(leader->address(), ca::ChannelCredentials(w.cert.tls)), "");
    w.session = w.agent->OpenSession();
    ASSERT_FALSE(w.agent->session_id.empty()) << "no session for " << w.cert.identity.node_id;
    w.assignments = w.agent->Assignments();
    // Leadership may move under load (not the subject here): workers follow it.
    w.locate = [this] {
      Manager* l = Leader();
      return l != nullptr ? l->address() : std::string();
    };
  }
  api::Service svc;
  auto stub = LocalControl(IndexOf(leader));
  ASSERT_TRUE(CreateService(*stub, "web", 100, &svc).ok());
  auto running = [&](Manager& m) {
    size_t n = 0;
    for (const auto& t : m.store().View().Find<api::Task>(store::ByServiceId(svc.id()))) {
      n += t->status().state() == api::TASK_STATE_RUNNING;
    }
    return n;
  };
  ASSERT_TRUE(WaitFor(
      [&] {
        for (auto& w : workers) w.Step();
        return running(*leader) == 100;
      },
      absl::Seconds(60)))
      << running(*leader) << " of 100 running";
  // Spread over the five workers (the managers have no session, so they get nothing), and
  // every replica agrees.
  std::map<std::string, int> per_node;
  for (const auto& t : leader->store().View().Find<api::Task>(store::ByServiceId(svc.id()))) {
    per_node[t->node_id()]++;
  }
  EXPECT_EQ(per_node.size(), 5u);
  for (const auto& [node, n] : per_node) EXPECT_EQ(n, 20) << node;
  for (auto& m : managers_) {
    EXPECT_TRUE(WaitFor([&] { return running(*m) == 100; })) << m->identity().node_id;
  }

  // Worker 0 goes silent (no heartbeats, streams dropped): after 3 missed periods it is DOWN
  // and its 20 tasks are replaced on the other four.
  const std::string gone = workers[0].cert.identity.node_id;
  workers[0].assignments.reset();
  workers[0].session.reset();
  workers[0].agent.reset();
  auto replaced = [&] {
    size_t on_gone = 0, ok = 0;
    for (const auto& t : leader->store().View().Find<api::Task>(store::ByServiceId(svc.id()))) {
      if (t->desired_state() != api::TASK_STATE_RUNNING) continue;
      if (t->node_id() == gone) ++on_gone;
      if (t->status().state() == api::TASK_STATE_RUNNING) ++ok;
    }
    return on_gone == 0 && ok == 100;
  };
  ASSERT_TRUE(WaitFor(
      [&] {
        for (size_t i = 1; i < workers.size(); ++i) workers[i].Step();
        return replaced();
      },
      absl::Seconds(60)))
      << "tasks of the silent worker were not replaced";
  auto node = leader->store().View().Get<api::Node>(gone);
  ASSERT_NE(node, nullptr);
  EXPECT_EQ(node->status().state(), api::NodeStatus::STATE_DOWN);
}

TEST_F(ManagerClusterTest, RollingUpdateResumesOnTheNextLeaderAfterTheLeaderIsStopped) {
  StartThree();
  Manager* leader = Leader();
  ASSERT_NE(leader, nullptr);
  auto tokens = leader->JoinTokens();
  ASSERT_TRUE(tokens.ok());
  std::vector<SimWorker> workers(4);
  for (auto& w : workers) {
    auto joined = ca::Join(leader->address(), tokens->first, clock_);
    ASSERT_TRUE(joined.ok()) << joined.status();
    w.cert = *joined;
    w.Connect(leader->address());
  }
  auto stub = LocalControl(IndexOf(leader));
  api::Service svc;
  {
    grpc::ClientContext ctx;
    api::CreateServiceRequest req;
    auto* spec = req.mutable_spec();
    spec->mutable_annotations()->set_name("web");
    spec->mutable_replicated()->set_replicas(4);
    spec->mutable_task()->mutable_container()->set_image("app:1");
    spec->mutable_update()->set_parallelism(1);
    spec->mutable_update()->mutable_delay()->set_seconds(1);
    spec->mutable_update()->mutable_monitor()->set_nanos(200000000);
    api::CreateServiceResponse resp;
    ASSERT_TRUE(stub->CreateService(&ctx, req, &resp).ok());
    svc = resp.service();
  }
  auto tasks_with = [&](Manager& m, const std::string& image, bool running_only) {
    size_t n = 0;
    for (const auto& t : m.store().View().Find<api::Task>(store::ByServiceId(svc.id()))) {
      if (t->spec().container().image() != image) continue;
      if (running_only && (t->desired_state() != api::TASK_STATE_RUNNING ||
                           t->status().state() != api::TASK_STATE_RUNNING)) {
        continue;
      }
      ++n;
    }
    return n;
  };
  auto step_all = [&] {
    for (auto& w : workers) w.Step();
  };
  ASSERT_TRUE(WaitFor(
      [&] {
        step_all();
        return tasks_with(*leader, "app:1", true) == 4;
      },
      absl::Seconds(60)));
  {
    grpc::ClientContext ctx;
    api::UpdateServiceRequest req;
    auto current = leader->store().View().Get<api::Service>(svc.id());
    req.set_service_id(svc.id());
    *req.mutable_service_version() = current->meta().version();
    *req.mutable_spec() = current->spec();
    req.mutable_spec()->mutable_task()->mutable_container()->set_image("app:2");
    api::UpdateServiceResponse resp;
    auto s = stub->UpdateService(&ctx, req, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  // Stop the leader once the update is under way but not finished.
  ASSERT_TRUE(WaitFor(
      [&] {
        step_all();
        return tasks_with(*leader, "app:2", true) >= 1;
      },
      absl::Seconds(60)));
  ASSERT_LT(tasks_with(*leader, "app:2", true), 4u) << "the update finished before the kill";
  int old_index = IndexOf(leader);
  leader->Stop();
  Manager* next = nullptr;
  ASSERT_TRUE(WaitFor([&] {
    for (size_t i = 0; i < managers_.size(); ++i) {
      if (static_cast<int>(i) != old_index && managers_[i]->IsLeader()) next = managers_[i].get();
    }
    return next != nullptr;
  }));
  for (auto& w : workers) w.Connect(next->address());
  ASSERT_TRUE(WaitFor(
      [&] {
        step_all();
        auto s = next->store().View().Get<api::Service>(svc.id());
        return s->update_status().state() == api::UpdateStatus::STATE_COMPLETED &&
               tasks_with(*next, "app:2", true) == 4;
      },
      absl::Seconds(90)))
      << tasks_with(*next, "app:2", true) << " of 4 updated; state "
      << next->store().View().Get<api::Service>(svc.id())->update_status().state();
  // Every slot runs the new image and no old task runs, and each slot got exactly one app:2
  // task: the update replaced every slot exactly once across the leader change.
  EXPECT_EQ(tasks_with(*next, "app:1", true), 0u);
  auto final_svc = next->store().View().Get<api::Service>(svc.id());
  std::map<uint64_t, int> new_per_slot;
  std::string table;
  for (const auto& t : next->store().View().Find<api::Task>(store::ByServiceId(svc.id()))) {
    if (t->spec_version() == final_svc->spec_version()) new_per_slot[t->slot()]++;
    absl::StrAppend(&table, "  slot ", t->slot(), " ", t->spec().container().image(), " v",
                    t->spec_version(), " desired ", api::TaskState_Name(t->desired_state()),
                    " state ", api::TaskState_Name(t->status().state()), " node ",
                    t->node_id().substr(0, 6), " created ", t->meta().created_at().seconds(), ".",
                    t->meta().created_at().nanos() / 1000000, " '", t->status().message(), "' ",
                    t->id().substr(0, 6), "\n");
  }
  for (const auto& n : next->store().View().Find<api::Node>(store::All())) {
    absl::StrAppend(&table, "  node ", n->id().substr(0, 6), " ",
                    api::NodeStatus::State_Name(n->status().state()), " '", n->status().message(),
                    "' updated ", n->meta().updated_at().seconds(), "\n");
  }
  EXPECT_EQ(new_per_slot.size(), 4u) << table;
  for (const auto& [slot, n] : new_per_slot) EXPECT_EQ(n, 1) << "slot " << slot << "\n" << table;
}

// SessionMessage.managers: every manager the leader records (leader first), re-sent to open
// sessions when the membership changes — how agents learn managers beyond their --join address.
TEST_F(ManagerClusterTest, SessionsReceiveTheCurrentManagerList) {
  Manager* m0 = StartInit();
  ASSERT_NE(m0, nullptr);
  auto tokens = m0->JoinTokens();
  ASSERT_TRUE(tokens.ok());
  auto joined = ca::Join(m0->address(), tokens->first, clock_);
  ASSERT_TRUE(joined.ok()) << joined.status();
  dispatcher::testing::FakeAgent agent(
      ca::DialManager(m0->address(), ca::ChannelCredentials(joined->tls)), "");
  auto session = agent.OpenSession();
  ASSERT_FALSE(agent.session_id.empty());
  auto addrs = [](const api::SessionMessage& m) {
    std::vector<std::string> out;
    for (const auto& p : m.managers()) out.push_back(p.addr());
    return out;
  };
  // The latest message lists `want` (in this order).
  auto latest_is = [&](const std::vector<std::string>& want) {
    size_t n = session->count();
    return n > 0 && addrs(*session->Wait(n - 1)) == want;
  };
  EXPECT_TRUE(WaitFor([&] { return latest_is({m0->address()}); }))
      << "no session message listing the only manager";

  ASSERT_NE(StartJoin(1, m0->address(), tokens->second), nullptr);
  ASSERT_NE(StartJoin(2, m0->address(), tokens->second), nullptr);
  ASSERT_TRUE(m0->IsLeader());
  std::vector<std::string> others = {managers_[1]->address(), managers_[2]->address()};
  std::sort(others.begin(), others.end());
  EXPECT_TRUE(WaitFor([&] {
    size_t n = session->count();
    if (n == 0) return false;
    auto got = addrs(*session->Wait(n - 1));
    if (got.size() != 3 || got[0] != m0->address()) return false;  // the leader first
    std::vector<std::string> rest(got.begin() + 1, got.end());
    std::sort(rest.begin(), rest.end());
    return rest == others;
  })) << "the open session was not sent the three managers";
}
}  // namespace
}  // namespace shoal::manager::node::clustertest
