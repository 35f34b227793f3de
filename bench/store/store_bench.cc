// manager/store micro-benchmarks with 100k tasks (1000 services x 100 tasks, 100 nodes) on an
// in-process FakeProposer: the store's own cost per transaction and per read, without raft.
// (The replicated write path against etcd is bench/raft's job.)
//
//   build-<you>/bench/store/bench_store --benchmark_min_time=0.5
#include <benchmark/benchmark.h>
#include <malloc.h>

#include <atomic>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/clock.h"
#include "base/random.h"
#include "base/status.h"
#include "manager/store/fake_proposer.h"
#include "manager/store/store.h"

namespace shoal::manager::store {
namespace {

constexpr int kServices = 1000;
constexpr int kTasksPerService = 100;
constexpr int kTasks = kServices * kTasksPerService;
constexpr int kNodes = 100;

std::string TaskId(int i) { return absl::StrCat("task", i); }
std::string ServiceId(int s) { return absl::StrCat("svc", s); }
std::string NodeId(int n) { return absl::StrCat("node", n); }

api::Task NewTask(int i) {
  api::Task t;
  t.set_id(TaskId(i));
  t.set_service_id(ServiceId(i / kTasksPerService));
  t.set_slot(i % kTasksPerService + 1);
  t.set_node_id(NodeId(i % kNodes));
  t.set_desired_state(api::TASK_STATE_RUNNING);
  t.mutable_status()->set_state(api::TASK_STATE_RUNNING);
  t.mutable_annotations()->set_name(absl::StrCat("web", i / kTasksPerService, ".", i % 100));
  t.mutable_spec()->mutable_container()->set_image("registry.local/app:1.0");
  t.add_networks()->set_network_id("net0");
  return t;
}

// One populated store shared by all benchmarks in this process (built on first use).
struct Env {
  Env() : random(1), store(&proposer, &clock, &random) {
    proposer.Attach(&store);
    proposer.set_keep_log(false);
    size_t before = mallinfo2().uordblks;
    auto v = store.BatchUpdate([](Batch& b) {
      for (int i = 0; i < kTasks; ++i) {
        RETURN_IF_ERROR(b.Update([&](Tx& tx) { return tx.Create(NewTask(i)); }));
      }
      return absl::OkStatus();
    });
    if (!v.ok()) std::fprintf(stderr, "populate: %s\n", std::string(v.status().message()).c_str());
    size_t after = mallinfo2().uordblks;
    std::fprintf(stderr,
                 "store: %d tasks, %.0f bytes of heap per task (object + 8 index entries)\n",
                 kTasks, static_cast<double>(after - before) / kTasks);
  }
  base::RealClock clock;
  base::FakeRandom random;
  FakeProposer proposer;
  MemoryStore store;
};

Env& GetEnv() {
  static Env* env = new Env();  // never destroyed: benchmarks may run in any order
  return *env;
}

// One Update with one task status change: validate, serialize, "replicate", apply, publish.
void BM_UpdateOneTask(benchmark::State& state) {
  Env& env = GetEnv();
  int i = 0;
  for (auto _ : state) {
    std::string id = TaskId(i++ % kTasks);
    auto v = env.store.Update([&](Tx& tx) {
      api::Task t = *tx.Get<api::Task>(id);
      t.mutable_status()->set_message(absl::StrCat("heartbeat ", i));
      return tx.Update(t);
    });
    if (!v.ok()) state.SkipWithError("update failed");
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_UpdateOneTask);

// 200 task updates per raft entry through BatchUpdate (the dispatcher/orchestrator path).
void BM_BatchUpdate200Tasks(benchmark::State& state) {
  Env& env = GetEnv();
  int i = 0;
  for (auto _ : state) {
    auto v = env.store.BatchUpdate([&](Batch& b) {
      for (int k = 0; k < 200; ++k) {
        std::string id = TaskId(i++ % kTasks);
        RETURN_IF_ERROR(b.Update([&](Tx& tx) {
          api::Task t = *tx.Get<api::Task>(id);
          t.mutable_status()->set_message(absl::StrCat("batch ", i));
          return tx.Update(t);
        }));
      }
      return absl::OkStatus();
    });
    if (!v.ok()) state.SkipWithError("batch failed");
  }
  state.SetItemsProcessed(state.iterations() * 200);
}
BENCHMARK(BM_BatchUpdate200Tasks);

// Taking a read snapshot and reading one task by id.
void BM_ViewGet(benchmark::State& state) {
  Env& env = GetEnv();
  int i = 0;
  for (auto _ : state) {
    ReadView v = env.store.View();
    benchmark::DoNotOptimize(v.Get<api::Task>(TaskId(i++ % kTasks)));
  }
}
BENCHMARK(BM_ViewGet);

// Index lookups: 100 tasks of a service, 1000 tasks of a node.
void BM_ViewFindByService(benchmark::State& state) {
  Env& env = GetEnv();
  int s = 0;
  for (auto _ : state) {
    ReadView v = env.store.View();
    auto tasks = v.Find<api::Task>(ByServiceId(ServiceId(s++ % kServices)));
    if (tasks.size() != kTasksPerService) state.SkipWithError("wrong count");
  }
  state.SetItemsProcessed(state.iterations() * kTasksPerService);
}
BENCHMARK(BM_ViewFindByService);

void BM_ViewFindByNode(benchmark::State& state) {
  Env& env = GetEnv();
  int n = 0;
  for (auto _ : state) {
    ReadView v = env.store.View();
    auto tasks = v.Find<api::Task>(ByNodeId(NodeId(n++ % kNodes)));
    if (tasks.size() != kTasks / kNodes) state.SkipWithError("wrong count");
  }
  state.SetItemsProcessed(state.iterations() * (kTasks / kNodes));
}
BENCHMARK(BM_ViewFindByNode);

// View + Get while another thread commits task updates as fast as it can: readers must not
// slow down much (no lock shared with the writer beyond a pointer copy).
void BM_ViewGetDuringWrites(benchmark::State& state) {
  Env& env = GetEnv();
  std::atomic<bool> stop{false};
  std::atomic<int64_t> writes{0};
  std::thread writer([&] {
    int i = 0;
    while (!stop.load(std::memory_order_relaxed)) {
      std::string id = TaskId(i++ % kTasks);
      auto v = env.store.Update([&](Tx& tx) {
        api::Task t = *tx.Get<api::Task>(id);
        t.mutable_status()->set_message("w");
        return tx.Update(t);
      });
      if (v.ok()) writes.fetch_add(1, std::memory_order_relaxed);
    }
  });
  int i = 0;
  for (auto _ : state) {
    ReadView v = env.store.View();
    benchmark::DoNotOptimize(v.Get<api::Task>(TaskId(i++ % kTasks)));
  }
  stop.store(true);
  writer.join();
  state.counters["concurrent_writes"] = static_cast<double>(writes.load());
}
BENCHMARK(BM_ViewGetDuringWrites)->UseRealTime();

// Commit-to-watcher latency: one Update, then the watcher receives it.
void BM_UpdateToWatchEvent(benchmark::State& state) {
  Env& env = GetEnv();
  WatchOptions o;
  o.kinds = {Kind::kTask};
  auto w = env.store.Watch(o);
  if (!w.ok()) {
    state.SkipWithError("watch failed");
    return;
  }
  int i = 0;
  for (auto _ : state) {
    std::string id = TaskId(i++ % kTasks);
    auto v = env.store.Update([&](Tx& tx) {
      api::Task t = *tx.Get<api::Task>(id);
      t.mutable_status()->set_message("watch");
      return tx.Update(t);
    });
    auto c = (*w)->Next(absl::Seconds(5));
    if (!v.ok() || !c.ok()) state.SkipWithError("update or watch failed");
  }
}
BENCHMARK(BM_UpdateToWatchEvent);

// Raft snapshot of the whole store (100k tasks) and restore into a fresh store.
void BM_SnapshotAndRestore100kTasks(benchmark::State& state) {
  Env& env = GetEnv();
  size_t bytes = 0;
  for (auto _ : state) {
    auto snap = env.store.Snapshot();
    if (!snap.ok()) state.SkipWithError("snapshot failed");
    bytes = snap->size();
    FakeProposer p;
    base::FakeRandom r(2);
    MemoryStore fresh(&p, &env.clock, &r);
    if (!fresh.Restore(env.store.version(), *snap).ok()) state.SkipWithError("restore failed");
  }
  state.counters["snapshot_MiB"] = static_cast<double>(bytes) / (1 << 20);
}
BENCHMARK(BM_SnapshotAndRestore100kTasks)->Unit(benchmark::kMillisecond)->Iterations(3);

}  // namespace
}  // namespace shoal::manager::store
