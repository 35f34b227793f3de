// Runtime library latency on the real kernel (root). Skips when SHOAL_BENCH_ROOTFS is unset.
#include <unistd.h>

#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "benchmark/benchmark.h"
#include "kernel/cgroup/plan.h"
#include "runtime/container.h"

namespace shoal::runtime {
namespace {

struct Env {
  std::string rootfs;
  std::unique_ptr<Runtime> rt;
  int n = 0;
};

Env* Setup(benchmark::State& state) {
  static Env* env = nullptr;
  const char* rootfs = getenv("SHOAL_BENCH_ROOTFS");
  if (!rootfs || geteuid() != 0) {
    state.SkipWithError("needs root and SHOAL_BENCH_ROOTFS (run bench/runtime.sh)");
    return nullptr;
  }
  if (!env) {
    env = new Env;
    env->rootfs = rootfs;
    RuntimeOptions o;
    auto f = kernel::ProbeFeatures();
    o.cgroup.mode = f.ok() ? f->cgroup_mode : kernel::CgroupMode::kV2;
    o.cgroup_parent = absl::StrCat("shoal-bench-", getpid());
    env->rt = std::make_unique<Runtime>(o);
  }
  return env;
}

ContainerSpec Spec(Env* env) {
  ContainerSpec spec;
  spec.id = absl::StrCat("b", ++env->n);
  spec.rootfs = env->rootfs;
  spec.process.args = {"/bin/true"};
  return spec;
}

// Create (namespaces, rootfs, cgroup, caps, seccomp) until the process has exec'd.
void BM_CreateToExec(benchmark::State& state) {
  Env* env = Setup(state);
  if (!env) return;
  for (auto _ : state) {
    auto c = env->rt->Create(Spec(env), {});
    if (!c.ok() || !(*c)->Start().ok()) {
      state.SkipWithError("create/start failed");
      return;
    }
    state.PauseTiming();
    (void)(*c)->Wait();
    (void)(*c)->Delete();
    state.ResumeTiming();
  }
}
BENCHMARK(BM_CreateToExec)->Unit(benchmark::kMillisecond)->UseRealTime();

// Everything a `run` does: create, start, wait for exit, delete (cgroup removed).
void BM_RunTrue(benchmark::State& state) {
  Env* env = Setup(state);
  if (!env) return;
  for (auto _ : state) {
    auto c = env->rt->Create(Spec(env), {});
    if (!c.ok() || !(*c)->Start().ok() || !(*c)->Wait().ok() || !(*c)->Delete().ok()) {
      state.SkipWithError("run failed");
      return;
    }
  }
}
BENCHMARK(BM_RunTrue)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace shoal::runtime

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  // Remove the per-process cgroup parent in every hierarchy (best effort).
  for (const std::string& c : shoal::kernel::V1Controllers()) {
    rmdir(absl::StrCat("/sys/fs/cgroup/", c, "/shoal-bench-", getpid()).c_str());
  }
  rmdir(absl::StrCat("/sys/fs/cgroup/shoal-bench-", getpid()).c_str());
  return 0;
}
