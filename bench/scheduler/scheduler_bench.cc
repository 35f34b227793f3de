// Scheduling throughput: N tasks of one service on M nodes, as SwarmKit's
// BenchmarkScheduler{1kNodes1kTasks,...,1kNodes100kTasks} and BenchmarkSchedulerConstraints.
// SwarmKit's published figure: 100k tasks on 1k nodes in 22.6 s.
//
// Args: nodes, tasks, mode (0 plain, 1 with a constraint matching half the nodes,
// 2 with a spread preference over 10 racks).
#include <benchmark/benchmark.h>

#include "absl/strings/str_cat.h"
#include "base/clock.h"
#include "manager/scheduler/scheduler.h"

namespace {

using shoal::api::v1::Node;
using shoal::api::v1::Task;
using shoal::manager::scheduler::Scheduler;

Node MakeNode(int i) {
  Node n;
  n.set_id(absl::StrCat("node", i));
  n.mutable_status()->set_state(shoal::api::v1::NodeStatus::STATE_READY);
  auto& labels = *n.mutable_spec()->mutable_annotations()->mutable_labels();
  labels["half"] = i % 2 == 0 ? "even" : "odd";
  labels["rack"] = absl::StrCat("r", i % 10);
  n.mutable_description()->mutable_resources()->set_nano_cpus(int64_t{64} * 1'000'000'000);
  n.mutable_description()->mutable_resources()->set_memory_bytes(int64_t{256} << 30);
  return n;
}

void BM_Schedule(benchmark::State& state) {
  const int nodes = static_cast<int>(state.range(0));
  const int ntasks = static_cast<int>(state.range(1));
  const int mode = static_cast<int>(state.range(2));
  std::vector<Task> tasks(ntasks);
  for (int i = 0; i < ntasks; ++i) {
    Task& t = tasks[i];
    t.set_id(absl::StrCat("task", i));
    t.set_service_id("svc");
    t.set_spec_version(1);
    t.mutable_status()->set_state(shoal::api::v1::TASK_STATE_PENDING);
    t.mutable_spec()->mutable_resources()->mutable_reservations()->set_memory_bytes(1 << 20);
    if (mode == 1) t.mutable_spec()->mutable_placement()->add_constraints("node.labels.half==even");
    if (mode == 2) {
      t.mutable_spec()->mutable_placement()->add_preferences()->set_spread_descriptor(
          "node.labels.rack");
    }
  }
  std::vector<const Task*> ptrs;
  for (const Task& t : tasks) ptrs.push_back(&t);
  shoal::base::RealClock clock;
  for (auto _ : state) {
    state.PauseTiming();
    Scheduler s(clock);
    for (int i = 0; i < nodes; ++i) s.UpsertNode(MakeNode(i));
    state.ResumeTiming();
    auto r = s.Schedule(ptrs);
    if (r.assigned.size() != static_cast<size_t>(ntasks)) state.SkipWithError("not all placed");
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations() * ntasks);
}

BENCHMARK(BM_Schedule)
    ->ArgNames({"nodes", "tasks", "mode"})
    ->ArgsProduct({{1000, 5000}, {1000, 10000, 100000}, {0, 1, 2}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace
