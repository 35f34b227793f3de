// In-process multi-manager clusters: real raft over mTLS gRPC on loopback, real stores, the
// leader components moving with leadership. Each manager has its own state directory.
#include "manager/node/manager.h"

#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "api/control.grpc.pb.h"
#include "api/dispatcher.grpc.pb.h"
#include "base/clock.h"
#include "base/random.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "manager/ca/join.h"
#include "manager/ca/tls.h"
#include "tests/unit/dispatcher/fake_agent.h"

namespace shoal::manager::node {
namespace {

namespace api = ::shoal::api::v1;

bool WaitFor(const std::function<bool()>& cond, absl::Duration timeout = absl::Seconds(20)) {
  absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (cond()) return true;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return cond();
}

class ManagerClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/shoal-mgr-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    for (auto& m : managers_) {
      if (m) m->Stop();
    }
    managers_.clear();
    std::filesystem::remove_all(dir_);
  }

  ManagerOptions Options(int i) {
    ManagerOptions o;
    o.state_dir = absl::StrCat(dir_, "/m", i);
    o.listen_addr = "127.0.0.1:0";
    o.control_socket = absl::StrCat(dir_, "/m", i, ".sock");
    o.clock = &clock_;
    o.random = &random_;
    o.heartbeat_period = absl::Seconds(1);  // a silent worker is DOWN after ~3 s
    return o;
  }
  Manager* StartInit() {
    ManagerOptions o = Options(0);
    o.init = true;
    auto m = Manager::Start(o);
    EXPECT_TRUE(m.ok()) << m.status();
    if (!m.ok()) return nullptr;
    managers_.push_back(*std::move(m));
    return managers_.back().get();
  }
  Manager* StartJoin(int i, const std::string& via, const std::string& token) {
    ManagerOptions o = Options(i);
    o.join_addr = via;
    o.join_token = token;
    auto m = Manager::Start(o);
    EXPECT_TRUE(m.ok()) << m.status();
    if (!m.ok()) return nullptr;
    managers_.push_back(*std::move(m));
    return managers_.back().get();
  }
  // Three managers; returns once all three are raft voters.
  void StartThree() {
    Manager* m0 = StartInit();
    ASSERT_NE(m0, nullptr);
    auto tokens = m0->JoinTokens();
    ASSERT_TRUE(tokens.ok());
    ASSERT_NE(StartJoin(1, m0->address(), tokens->second), nullptr);
    ASSERT_NE(StartJoin(2, m0->address(), tokens->second), nullptr);
    ASSERT_TRUE(WaitFor([&] {
      auto st = m0->RaftStatus();
      return st.members.size() == 3 && st.learners.empty();
    })) << "the joiners never became voters";
  }
  Manager* Leader() {
    for (auto& m : managers_) {
      if (m && m->IsLeader()) return m.get();
    }
    return nullptr;
  }
  std::unique_ptr<api::Control::Stub> LocalControl(int i) {
    return api::Control::NewStub(grpc::CreateChannel(
        absl::StrCat("unix:", dir_, "/m", i, ".sock"), grpc::InsecureChannelCredentials()));
  }
  grpc::Status CreateService(api::Control::Stub& stub, const std::string& name, int replicas,
                             api::Service* out = nullptr) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    api::CreateServiceRequest req;
    req.mutable_spec()->mutable_annotations()->set_name(name);
    req.mutable_spec()->mutable_replicated()->set_replicas(replicas);
    req.mutable_spec()->mutable_task()->mutable_container()->set_image("busybox");
    api::CreateServiceResponse resp;
    auto s = stub.CreateService(&ctx, req, &resp);
    if (out) *out = resp.service();
    return s;
  }
  static size_t TasksOf(Manager& m, const std::string& service_id) {
    return m.store().View().Find<api::Task>(store::ByServiceId(service_id)).size();
  }
  int IndexOf(Manager* m) {
    for (size_t i = 0; i < managers_.size(); ++i) {
      if (managers_[i].get() == m) return static_cast<int>(i);
    }
    return -1;
  }

  base::RealClock clock_;
  base::SystemRandom random_;
  std::string dir_;
  std::vector<std::unique_ptr<Manager>> managers_;
};

TEST_F(ManagerClusterTest, ThreeManagersReplicateAndTheLeaderCreatesTasks) {
  StartThree();
  ASSERT_EQ(managers_.size(), 3u);
  Manager* leader = Leader();
  ASSERT_NE(leader, nullptr);
  api::Service svc;
  auto stub = LocalControl(IndexOf(leader));
  ASSERT_TRUE(CreateService(*stub, "web", 3, &svc).ok());
  // Every replica sees the service and the three tasks the leader's orchestrator created.
  for (auto& m : managers_) {
    ASSERT_TRUE(WaitFor([&] { return TasksOf(*m, svc.id()) == 3; }))
        << "manager " << m->identity().node_id << " has " << TasksOf(*m, svc.id()) << " tasks";
    EXPECT_NE(m->store().View().Get<api::Service>(svc.id()), nullptr);
  }
  // Three manager Node objects with manager certificates.
  auto nodes = leader->store().View().Find<api::Node>(store::All());
  EXPECT_EQ(nodes.size(), 3u);
  for (const auto& n : nodes) EXPECT_EQ(n->role(), api::NODE_ROLE_MANAGER);
  // The leader records every manager's raft id and address, and which one leads.
  EXPECT_TRUE(WaitFor([&] {
    int leaders = 0, with_addr = 0;
    for (const auto& n : leader->store().View().Find<api::Node>(store::All())) {
      leaders += n->manager_status().leader() ? 1 : 0;
      with_addr += n->manager_status().addr().empty() ? 0 : 1;
    }
    return leaders == 1 && with_addr == 3;
  })) << "Node.manager_status not published";
}

TEST_F(ManagerClusterTest, FollowerForwardsControlCallsToTheLeader) {
  StartThree();
  Manager* leader = Leader();
  ASSERT_NE(leader, nullptr);
  int follower = (IndexOf(leader) + 1) % 3;
  EXPECT_EQ(managers_[follower]->leader_address(), leader->address());
  // Over the follower's local socket: the write lands through the leader.
  auto stub = LocalControl(follower);
  api::Service svc;
  auto s = CreateService(*stub, "via-follower", 2, &svc);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_FALSE(svc.id().empty());
  EXPECT_NE(leader->store().View().Get<api::Service>(svc.id()), nullptr);
  // Validation errors come back from the leader unchanged.
  auto dup = CreateService(*stub, "via-follower", 1);
  EXPECT_EQ(dup.error_code(), grpc::StatusCode::ALREADY_EXISTS) << dup.error_message();
  // And over the follower's mTLS listener with a manager certificate.
  auto remote = api::Control::NewStub(ca::DialManager(
      managers_[follower]->address(), ca::ChannelCredentials(managers_[follower]->tls())));
  grpc::ClientContext ctx;
  api::GetServiceRequest get;
  get.set_service_id("via-follower");
  api::GetServiceResponse got;
  ASSERT_TRUE(remote->GetService(&ctx, get, &got).ok());
  EXPECT_EQ(got.service().id(), svc.id());
}

TEST_F(ManagerClusterTest, LeaderLossMovesTheLeaderComponents) {
  StartThree();
  Manager* old = Leader();
  ASSERT_NE(old, nullptr);
  int old_index = IndexOf(old);
  old->Stop();
  Manager* next = nullptr;
  ASSERT_TRUE(WaitFor([&] {
    for (size_t i = 0; i < managers_.size(); ++i) {
      if (static_cast<int>(i) != old_index && managers_[i]->IsLeader()) next = managers_[i].get();
    }
    return next != nullptr;
  })) << "no new leader among the two remaining managers";
  api::Service svc;
  auto stub = LocalControl(IndexOf(next));
  ASSERT_TRUE(WaitFor([&] { return CreateService(*stub, "after", 2, &svc).ok(); }));
  EXPECT_TRUE(WaitFor([&] { return TasksOf(*next, svc.id()) == 2; }))
      << "the new leader's orchestrator did not create the tasks";
}

TEST_F(ManagerClusterTest, RestartedManagerCatchesUpFromItsStateDir) {
  StartThree();
  Manager* leader = Leader();
  ASSERT_NE(leader, nullptr);
  int victim = (IndexOf(leader) + 1) % 3;
  std::string node_id = managers_[victim]->identity().node_id;
  std::string addr = managers_[victim]->address();  // peers know it by this address
  managers_[victim]->Stop();
  managers_[victim].reset();
  api::Service svc;
  auto stub = LocalControl(IndexOf(leader));
  ASSERT_TRUE(CreateService(*stub, "while-down", 1, &svc).ok());

  ManagerOptions o = Options(victim);
  o.listen_addr = addr;
  auto restarted = Manager::Start(o);
  ASSERT_TRUE(restarted.ok()) << restarted.status();
  managers_[victim] = *std::move(restarted);
  EXPECT_EQ(managers_[victim]->identity().node_id, node_id) << "same identity after restart";
  EXPECT_TRUE(WaitFor([&] {
    return managers_[victim]->store().View().Get<api::Service>(svc.id()) != nullptr;
  })) << "the restarted manager never caught up";
}

TEST_F(ManagerClusterTest, WorkerTokenCannotJoinAsAManagerAndWorkersCannotUseControl) {
  Manager* m0 = StartInit();
  ASSERT_NE(m0, nullptr);
  auto tokens = m0->JoinTokens();
  ASSERT_TRUE(tokens.ok());
  ManagerOptions o = Options(1);
  o.join_addr = m0->address();
  o.join_token = tokens->first;
  auto bad = Manager::Start(o);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument) << bad.status();

  auto worker = ca::Join(m0->address(), tokens->first, clock_);
  ASSERT_TRUE(worker.ok()) << worker.status();
  auto control = api::Control::NewStub(
      ca::DialManager(m0->address(), ca::ChannelCredentials(worker->tls)));
  grpc::ClientContext ctx;
  api::ListNodesResponse resp;
  EXPECT_EQ(control->ListNodes(&ctx, {}, &resp).error_code(), grpc::StatusCode::PERMISSION_DENIED);
}

// Node.manager_status.reachability as the leader's raft sees each manager, and SwarmKit's
// demotion rule on top of it: quorum of the configuration left after the removal, counting
// only managers that are reachable now.
TEST_F(ManagerClusterTest, StoppedManagerIsUnreachableAndDemotionsKeepQuorum) {
  StartThree();
  Manager* leader = Leader();
  ASSERT_NE(leader, nullptr);
  auto stub = LocalControl(IndexOf(leader));
  auto get_node = [&](const std::string& id) {
    grpc::ClientContext ctx;
    api::GetNodeRequest req;
    req.set_node_id(id);
    api::GetNodeResponse resp;
    auto s = stub->GetNode(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp.node();
  };
  auto list_reachability = [&] {
    std::map<std::string, api::ManagerStatus::Reachability> out;
    grpc::ClientContext ctx;
    api::ListNodesResponse resp;
    if (!stub->ListNodes(&ctx, {}, &resp).ok()) return out;
    for (const auto& n : resp.nodes()) out[n.id()] = n.manager_status().reachability();
    return out;
  };
  const auto kReachable = api::ManagerStatus::REACHABILITY_REACHABLE;
  const auto kUnreachable = api::ManagerStatus::REACHABILITY_UNREACHABLE;
  ASSERT_TRUE(WaitFor([&] {
    auto r = list_reachability();
    return r.size() == 3 && std::all_of(r.begin(), r.end(),
                                        [&](auto& kv) { return kv.second == kReachable; });
  })) << "all three managers should be REACHABLE";

  int down_index = (IndexOf(leader) + 1) % 3, up_index = (IndexOf(leader) + 2) % 3;
  const std::string down = managers_[down_index]->identity().node_id;
  const std::string up = managers_[up_index]->identity().node_id;
  managers_[down_index]->Stop();
  ASSERT_TRUE(WaitFor([&] { return list_reachability()[down] == kUnreachable; }))
      << "the stopped manager never showed UNREACHABLE";
  api::Node d = get_node(down);
  EXPECT_EQ(d.manager_status().reachability(), kUnreachable);
  EXPECT_FALSE(d.manager_status().leader());
  EXPECT_EQ(get_node(up).manager_status().reachability(), kReachable);
  api::Node l = get_node(leader->identity().node_id);
  EXPECT_EQ(l.manager_status().reachability(), kReachable);
  EXPECT_TRUE(l.manager_status().leader());

  // Written on change only: nothing changes, so no node is rewritten over several periods.
  std::map<std::string, uint64_t> versions;
  for (const auto& n : leader->store().View().Find<api::Node>(store::All())) {
    versions[n->id()] = n->meta().version().index();
  }
  EXPECT_FALSE(WaitFor(
      [&] {
        for (const auto& n : leader->store().View().Find<api::Node>(store::All())) {
          if (versions[n->id()] != n->meta().version().index()) return true;
        }
        return false;
      },
      absl::Seconds(2)))
      << "manager status rewritten although nothing changed";

  auto demote = [&](const std::string& id) {
    api::Node n = get_node(id);
    grpc::ClientContext ctx;
    api::UpdateNodeRequest req;
    req.set_node_id(id);
    *req.mutable_node_version() = n.meta().version();
    *req.mutable_spec() = n.spec();
    req.mutable_spec()->set_desired_role(api::NODE_ROLE_WORKER);
    api::UpdateNodeResponse resp;
    return stub->UpdateNode(&ctx, req, &resp);
  };
  // Demoting the reachable follower would leave the leader and the stopped one: 1 reachable
  // of the 2 left, whose quorum is 2.
  grpc::Status refused = demote(up);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(refused.error_message().find("loss of quorum"), std::string::npos)
      << refused.error_message();
  // So would demoting the leader itself (the follower alone is 1 of 2).
  EXPECT_EQ(demote(leader->identity().node_id).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  // Demoting the stopped one leaves two reachable managers: allowed, and the role manager
  // takes it out of raft; its manager status goes with it.
  grpc::Status ok = demote(down);
  ASSERT_TRUE(ok.ok()) << ok.error_message();
  EXPECT_TRUE(WaitFor([&] {
    auto st = leader->RaftStatus();
    return st.members.size() == 2 && !get_node(down).has_manager_status();
  })) << "the demoted manager is still a raft member";
}

TEST_F(ManagerClusterTest, RotatedWorkerTokenIsRefusedAndTheNewOneJoins) {
  StartThree();
  Manager* leader = Leader();
  ASSERT_NE(leader, nullptr);
  auto before = leader->JoinTokens();
  ASSERT_TRUE(before.ok());
  // Rotate through a follower's local socket: forwarded to the leader like any write.
  auto stub = LocalControl((IndexOf(leader) + 1) % 3);
  api::Cluster cluster;
  {
    grpc::ClientContext ctx;
    api::GetClusterResponse resp;
    ASSERT_TRUE(stub->GetCluster(&ctx, {}, &resp).ok());
    cluster = resp.cluster();
  }
  {
    grpc::ClientContext ctx;
    api::UpdateClusterRequest req;
    *req.mutable_cluster_version() = cluster.meta().version();
    *req.mutable_spec() = cluster.spec();
    req.set_rotate_worker_token(true);
    api::UpdateClusterResponse resp;
    auto s = stub->UpdateCluster(&ctx, req, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  // Every manager takes joins (a follower forwards them to the leader): the old worker token is
  // refused with a clear error wherever it is presented.
  for (auto& m : managers_) {
    ASSERT_TRUE(WaitFor([&] {
      auto t = m->JoinTokens();
      return t.ok() && t->first != before->first;
    })) << "manager " << m->identity().node_id << " never saw the rotation";
    auto old = ca::Join(m->address(), before->first, clock_);
    EXPECT_EQ(old.status().code(), absl::StatusCode::kPermissionDenied) << old.status();
    EXPECT_NE(old.status().message().find("wrong or rotated"), absl::string_view::npos)
        << old.status();
  }
  auto after = leader->JoinTokens();
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->second, before->second) << "the manager token must not change";
  // The new token joins, here through a follower.
  auto joined = ca::Join(managers_[(IndexOf(leader) + 2) % 3]->address(), after->first, clock_);
  ASSERT_TRUE(joined.ok()) << joined.status();
  EXPECT_EQ(joined->identity.role, ca::Role::kWorker);
  // And the old manager token still makes managers.
  auto manager = ca::Join(leader->address(), before->second, clock_);
  ASSERT_TRUE(manager.ok()) << manager.status();
  EXPECT_EQ(manager->identity.role, ca::Role::kManager);
}

// A renewal may reach any manager: a follower forwards it to the leader naming the node (only
// the leader writes), and the new certificate is read back from the leader.
TEST_F(ManagerClusterTest, RenewalThroughAFollowerIsForwardedToTheLeader) {
  StartThree();
  Manager* leader = Leader();
  ASSERT_NE(leader, nullptr);
  auto tokens = leader->JoinTokens();
  ASSERT_TRUE(tokens.ok());
  const size_t follower = (IndexOf(leader) + 1) % 3;
  auto worker = ca::Join(managers_[follower]->address(), tokens->first, clock_);
  ASSERT_TRUE(worker.ok()) << worker.status();
  auto renewed = ca::Renew(managers_[follower]->address(), worker->tls, clock_);
  ASSERT_TRUE(renewed.ok()) << renewed.status();
  EXPECT_EQ(renewed->identity.node_id, worker->identity.node_id);
  EXPECT_EQ(renewed->identity.role, ca::Role::kWorker);
  EXPECT_NE(renewed->tls.cert_pem, worker->tls.cert_pem);
  // The store (read on the leader) holds the renewed certificate under the worker's id.
  auto stub = LocalControl(IndexOf(leader));
  auto node_of = [&](const std::string& id) {
    grpc::ClientContext ctx;
    api::GetNodeRequest req;
    req.set_node_id(id);
    api::GetNodeResponse resp;
    grpc::Status s = stub->GetNode(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp.node();
  };
  EXPECT_EQ(node_of(worker->identity.node_id).certificate().certificate(), renewed->tls.cert_pem);
}

// Simulated workers: each joins with the worker token (its own certificate), opens a dispatcher
// session on the leader over mTLS, and reports every task assigned to it RUNNING.
struct SimWorker {
  // (Re)connects to the dispatcher of the manager at `address`: a new session and a new
  // assignments stream (COMPLETE first). From then on Step() opens the session again whenever
  // it is missing or broken, as a real agent's session loop does: a manager that raft has just
  // elected starts its dispatcher a moment later and refuses sessions until then.
  void Connect(const std::string& address) {
    target = address;
    Reconnect();
  }
  void Reconnect() {
    last_attempt = absl::Now();
    if (locate) {  // follow the leader, as a real agent finds it by trying the managers
      std::string leader = locate();
      if (leader.empty()) return;
      target = leader;
    }
    assignments.reset();
    session.reset();
    agent = std::make_unique<dispatcher::testing::FakeAgent>(
        ca::DialManager(target, ca::ChannelCredentials(cert.tls)), "");
    session = agent->OpenSession();
    assignments = agent->Assignments();
    applied = 0;
    // Like a real agent, report the state of every task again to the new dispatcher: the old
    // leader's queued (not yet written) statuses were lost with it.
    reported.clear();
    stopped.clear();
  }
  ca::JoinResult cert;
  std::string target;  // set by Connect: the session is re-opened there when it breaks
  // When set, a broken session is re-opened with the manager this names (the current leader).
  std::function<std::string()> locate;
  absl::Time last_attempt = absl::InfinitePast();
  std::unique_ptr<dispatcher::testing::FakeAgent> agent;
  std::unique_ptr<dispatcher::testing::StreamReader<api::AssignmentsMessage>> assignments;
  std::unique_ptr<dispatcher::testing::StreamReader<api::SessionMessage>> session;
  size_t applied = 0;
  std::set<std::string> reported;
  std::set<std::string> stopped;

  // Applies new assignment messages; reports new tasks RUNNING.
  void Step() {
    if (agent->session_id.empty() || !agent->Heartbeat().ok()) {
      if ((!target.empty() || locate) && absl::Now() - last_attempt >= absl::Milliseconds(100)) {
        Reconnect();
      }
      return;
    }
    while (applied < assignments->count()) {
      const api::AssignmentsMessage* m = assignments->Wait(applied++);
      if (m == nullptr) return;
      for (const auto& c : m->changes()) {
        if (c.action() == api::AssignmentChange::ACTION_REMOVE || !c.assignment().has_task()) {
          continue;
        }
        const api::Task& t = c.assignment().task();
        if (t.desired_state() == api::TASK_STATE_RUNNING && reported.insert(t.id()).second) {
          (void)agent->Report(t.id(), api::TASK_STATE_RUNNING);
        }
        if (t.desired_state() > api::TASK_STATE_RUNNING && stopped.insert(t.id()).second) {
          (void)agent->Report(t.id(), api::TASK_STATE_SHUTDOWN);
        }
      }
    }
  }
};

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
                    t->node_id().substr(0, 6), " created ", t->meta().created_at().seconds(),
                    ".", t->meta().created_at().nanos() / 1000000, " '", t->status().message(),
                    "' ", t->id().substr(0, 6), "\n");
  }
  for (const auto& n : next->store().View().Find<api::Node>(store::All())) {
    absl::StrAppend(&table, "  node ", n->id().substr(0, 6), " ",
                    api::NodeStatus::State_Name(n->status().state()), " '", n->status().message(),
                    "' updated ", n->meta().updated_at().seconds(), "\n");
  }
  EXPECT_EQ(new_per_slot.size(), 4u) << table;
  for (const auto& [slot, n] : new_per_slot) EXPECT_EQ(n, 1) << "slot " << slot << "\n" << table;
}

}  // namespace
}  // namespace shoal::manager::node
