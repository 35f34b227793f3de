// Test harness for in-process manager clusters (manager/node/manager.h): real raft over mTLS
// gRPC on loopback, real stores, the leader components moving with leadership; each manager
// has its own state directory. ManagerClusterTest starts managers; SimWorker is a simulated
// worker (a FakeAgent session that reports its tasks RUNNING).
#pragma once

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

namespace shoal::manager::node::clustertest {

namespace api = ::shoal::api::v1;

inline bool WaitFor(const std::function<bool()>& cond, absl::Duration timeout = absl::Seconds(20)) {
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
    return api::Control::NewStub(grpc::CreateChannel(absl::StrCat("unix:", dir_, "/m", i, ".sock"),
                                                     grpc::InsecureChannelCredentials()));
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

}  // namespace shoal::manager::node::clustertest
