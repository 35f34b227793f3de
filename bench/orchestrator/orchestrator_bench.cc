// Service create -> every replica RUNNING, through the whole leader pipeline in one process:
// the store (FakeProposer: in-memory log, no disk, no network), the LeaderLoop with the
// orchestrator, allocator and scheduler, and simulated agents (manager/leader/fake_agents.h)
// on `nodes` nodes that report ASSIGNED -> RUNNING as soon as they see their tasks.
//
// Timed: from the service's creation in the store until the last replica is RUNNING; the loop
// runs rounds back to back (RunOnce without waiting), so the figure is the leader's own work
// (store transactions, watches, reconcile, allocation, scheduling) plus the fake agents'
// status writes. SwarmKit's published figure for the same shape, with real containers on 100
// workers and 3 managers (moby/swarmkit#2763): 1,000 containers scheduled and started in
// < 2.5 s. Not a side-by-side run: there is no SwarmKit to run here.
//
// Args: nodes, replicas, overlay network (0/1: every task also gets an overlay address).
#include <benchmark/benchmark.h>

#include <memory>

#include "absl/strings/str_cat.h"
#include "base/clock.h"
#include "base/random.h"
#include "manager/leader/allocator_component.h"
#include "manager/leader/components.h"
#include "manager/leader/fake_agents.h"
#include "manager/store/fake_proposer.h"
#include "manager/store/store.h"

namespace {

namespace api = ::shoal::api::v1;
namespace store = ::shoal::manager::store;
namespace leader = ::shoal::manager::leader;

struct Cluster {
  Cluster() { proposer.Attach(&st); }
  shoal::base::RealClock clock;
  shoal::base::SystemRandom random;
  store::FakeProposer proposer;
  store::MemoryStore st{&proposer, &clock, &random};
  leader::OrchestratorComponent orchestrator{clock, random};
  leader::AllocatorComponent allocator;
  leader::SchedulerComponent scheduler{clock};
  leader::FakeAgents agents;
  leader::LeaderLoop loop{st, clock, {&orchestrator, &allocator, &scheduler, &agents}};
};

bool AllRunning(const store::ReadView& view, const std::string& service, int replicas) {
  int n = 0;
  for (const auto& t : view.Find<api::Task>(store::ByServiceId(service))) {
    n += t->status().state() == api::TASK_STATE_RUNNING;
  }
  return n == replicas;
}

void BM_CreateToRunning(benchmark::State& state) {
  const int nodes = static_cast<int>(state.range(0));
  const int replicas = static_cast<int>(state.range(1));
  const bool overlay = state.range(2) != 0;
  int64_t rounds = 0;
  for (auto _ : state) {
    state.PauseTiming();
    auto c = std::make_unique<Cluster>();
    c->proposer.set_keep_log(false);
    auto setup = c->st.BatchUpdate([&](store::Batch& b) -> absl::Status {
      for (int i = 0; i < nodes; ++i) {
        api::Node n;
        n.set_id(absl::StrCat("node", i));
        n.mutable_status()->set_state(api::NodeStatus::STATE_READY);
        n.mutable_description()->mutable_resources()->set_nano_cpus(int64_t{8} * 1'000'000'000);
        n.mutable_description()->mutable_resources()->set_memory_bytes(int64_t{32} << 30);
        auto s = b.Update([&](store::Tx& tx) { return tx.Create(n); });
        if (!s.ok()) return s;
      }
      if (!overlay) return absl::OkStatus();
      api::Network net;
      net.set_id("net1");
      net.mutable_spec()->mutable_annotations()->set_name("backend");
      net.mutable_spec()->mutable_ipam()->add_configs()->set_subnet("10.80.0.0/20");
      return b.Update([&](store::Tx& tx) { return tx.Create(net); });
    });
    if (!setup.ok()) {
      state.SkipWithError(std::string(setup.status().message()).c_str());
      break;
    }
    (void)c->loop.RunOnce(absl::ZeroDuration());  // the leader is up and idle
    api::Service svc;
    svc.set_id("svc1");
    svc.set_spec_version(1);
    svc.mutable_spec()->mutable_annotations()->set_name("web");
    svc.mutable_spec()->mutable_task()->mutable_container()->set_image("app:1");
    svc.mutable_spec()->mutable_replicated()->set_replicas(replicas);
    if (overlay) svc.mutable_spec()->mutable_task()->add_networks()->set_target("net1");
    state.ResumeTiming();

    if (!c->st.Update([&](store::Tx& tx) { return tx.Create(svc); }).ok()) {
      state.SkipWithError("create failed");
      break;
    }
    bool done = false;
    for (int i = 0; i < 10000 && !done; ++i) {
      (void)c->loop.RunOnce(absl::ZeroDuration());
      ++rounds;
      done = AllRunning(c->st.View(), "svc1", replicas);
    }
    if (!done) state.SkipWithError("replicas did not all reach RUNNING");

    state.PauseTiming();
    c.reset();
    state.ResumeTiming();
  }
  state.counters["rounds"] =
      benchmark::Counter(static_cast<double>(rounds), benchmark::Counter::kAvgIterations);
}

BENCHMARK(BM_CreateToRunning)
    ->ArgNames({"nodes", "replicas", "overlay"})
    ->Args({100, 1000, 0})
    ->Args({100, 1000, 1})
    ->Args({1000, 10000, 0})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace
