// The dispatcher in the leader pipeline: the real LeaderLoop (orchestrator, allocator,
// scheduler) places a service's tasks on nodes that registered through the dispatcher; fake
// agents learn their tasks, secret and network state only from their assignment streams and
// report RUNNING through UpdateTaskStatus.
#include <map>

#include "manager/leader/allocator_component.h"
#include "manager/leader/components.h"
#include "manager/leader/loop.h"
#include "tests/unit/dispatcher/fake_agent.h"

namespace shoal::manager::dispatcher::testing {
namespace {

// What an agent holds after applying its assignment messages in order.
struct AgentView {
  std::map<std::string, api::Task> tasks;
  std::map<std::string, api::Secret> secrets;
  std::map<std::string, api::EndpointRecord> endpoints;
  std::map<std::string, api::Service> services;
  std::string version;
  size_t applied = 0;

  void Apply(const api::AssignmentsMessage& m) {
    if (m.type() == api::AssignmentsMessage::TYPE_COMPLETE) {
      *this = AgentView{.applied = applied};
    } else {
      EXPECT_EQ(m.applies_to(), version) << "assignment messages out of sequence";
    }
    version = m.results_in();
    for (const auto& c : m.changes()) {
      bool remove = c.action() == api::AssignmentChange::ACTION_REMOVE;
      const auto& a = c.assignment();
      auto put = [&](auto& map, const std::string& key, const auto& value) {
        if (remove) {
          map.erase(key);
        } else {
          map[key] = value;
        }
      };
      if (a.has_task()) put(tasks, a.task().id(), a.task());
      if (a.has_secret()) put(secrets, a.secret().id(), a.secret());
      if (a.has_service()) put(services, a.service().id(), a.service());
      if (a.has_endpoint()) {
        put(endpoints, a.endpoint().task_id() + "/" + a.endpoint().network_id(), a.endpoint());
      }
    }
    ++applied;
  }
};

class PipelineTest : public DispatcherFixture {
 protected:
  struct Node {
    std::unique_ptr<FakeAgent> agent;
    std::unique_ptr<StreamReader<api::SessionMessage>> session;
    std::unique_ptr<StreamReader<api::AssignmentsMessage>> assignments;
    AgentView view;
    std::map<std::string, bool> reported;
  };

  // One round: the leader acts, every agent applies what arrived and reports its new tasks
  // RUNNING, the dispatcher writes the statuses.
  void Round() {
    (void)loop_.RunOnce(absl::ZeroDuration());
    for (auto& [id, n] : nodes_) {
      ASSERT_TRUE(n.agent->Heartbeat().ok()) << id;
      while (n.view.applied < n.assignments->count()) {
        n.view.Apply(*n.assignments->Wait(n.view.applied));
      }
      for (const auto& [tid, t] : n.view.tasks) {
        if (t.desired_state() == api::TASK_STATE_RUNNING && !n.reported[tid]) {
          ASSERT_TRUE(n.agent->Report(tid, api::TASK_STATE_RUNNING).ok());
          n.reported[tid] = true;
        }
      }
    }
    clock_.Advance(absl::Milliseconds(100));
    dispatcher_->Tick();
  }

  leader::OrchestratorComponent orchestrator_{clock_, random_};
  leader::AllocatorComponent allocator_;
  leader::SchedulerComponent scheduler_{clock_};
  leader::LeaderLoop loop_{store_, clock_, {&orchestrator_, &allocator_, &scheduler_}};
  std::map<std::string, Node> nodes_;
};

TEST_F(PipelineTest, HundredReplicasReachRunningThroughTheDispatcher) {
  api::Network net;
  net.set_id("netA");
  net.mutable_spec()->mutable_annotations()->set_name("backend");
  net.mutable_spec()->mutable_driver_config()->set_name("overlay");
  Create(net);
  api::Secret secret;
  secret.set_id("secret1");
  secret.mutable_spec()->mutable_annotations()->set_name("token");
  secret.mutable_spec()->set_data("t0ken");
  Create(secret);
  for (int i = 0; i < 10; ++i) {
    std::string id = absl::StrCat("node", i);
    AddNode(id);
    Node& n = nodes_[id];
    n.agent = std::make_unique<FakeAgent>(Agent(id));
    n.session = n.agent->OpenSession(absl::StrCat("192.168.60.", i + 1));
    n.assignments = n.agent->Assignments();
  }
  api::Service svc;
  svc.set_id("svc1");
  svc.set_spec_version(1);
  svc.mutable_spec()->mutable_annotations()->set_name("web");
  svc.mutable_spec()->mutable_replicated()->set_replicas(100);
  svc.mutable_spec()->mutable_task()->mutable_container()->set_image("app:1");
  svc.mutable_spec()->mutable_task()->mutable_container()->add_secrets()->set_secret_id("secret1");
  svc.mutable_spec()->mutable_task()->add_networks()->set_target("netA");
  Create(svc);

  auto running = [&] {
    int n = 0;
    for (const auto& t : store_.View().Find<api::Task>(store::ByServiceId("svc1"))) {
      n += t->status().state() == api::TASK_STATE_RUNNING;
    }
    return n;
  };
  for (int i = 0; i < 300 && running() < 100; ++i) Round();
  ASSERT_EQ(running(), 100);

  // Every agent converges on exactly its tasks, the secret, and all 100 endpoints (running)
  // with the VTEP of the node that runs each, plus the service's VIP.
  auto converged = [&] {
    Round();
    for (auto& [id, n] : nodes_) {
      if (n.view.tasks.size() != store_.View().Find<api::Task>(store::ByNodeId(id)).size()) {
        return false;
      }
      if (n.view.endpoints.size() != 100) return false;
      for (const auto& [key, e] : n.view.endpoints) {
        if (!e.running()) return false;
      }
    }
    return true;
  };
  ASSERT_TRUE(Eventually(converged));
  for (auto& [id, n] : nodes_) {
    EXPECT_EQ(n.view.tasks.size(), 10u) << id;  // spread evenly
    EXPECT_EQ(n.view.secrets.count("secret1"), 1u) << id;
    ASSERT_EQ(n.view.services.count("svc1"), 1u) << id;
    EXPECT_EQ(n.view.services["svc1"].endpoint().virtual_ips_size(), 1) << id;
    for (const auto& [key, e] : n.view.endpoints) {
      std::string host = store_.View().Get<api::Node>(e.node_id())->vtep_addr();
      EXPECT_EQ(e.node_vtep(), host) << key;
      EXPECT_FALSE(e.ip().empty()) << key;
    }
  }
}

}  // namespace
}  // namespace shoal::manager::dispatcher::testing
