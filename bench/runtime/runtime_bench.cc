// Runtime library latency on the real kernel (root). Skips when SHOAL_BENCH_ROOTFS is unset.
#include <fcntl.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "benchmark/benchmark.h"
#include "kernel/cgroup/plan.h"
#include "runtime/container.h"

namespace shoal::runtime {
namespace {

struct Env {
  std::string rootfs;
  std::unique_ptr<Runtime> rt;         // with a netns pool, as a long-lived agent runs it
  std::unique_ptr<Runtime> rt_nopool;  // every netns made by clone
  int n = 0;
};

// The benchmarks' shared environment; main() destroys it (the pools remove their cgroups).
std::unique_ptr<Env>& TheEnv() {
  static std::unique_ptr<Env>* env = new std::unique_ptr<Env>();
  return *env;
}

Env* Setup(benchmark::State& state) {
  std::unique_ptr<Env>& env = TheEnv();
  const char* rootfs = getenv("SHOAL_BENCH_ROOTFS");
  if (!rootfs || geteuid() != 0) {
    state.SkipWithError("needs root and SHOAL_BENCH_ROOTFS (run bench/runtime.sh)");
    return nullptr;
  }
  if (!env) {
    env = std::make_unique<Env>();
    env->rootfs = rootfs;
    RuntimeOptions o;
    auto f = kernel::ProbeFeatures();
    o.cgroup.mode = f.ok() ? f->cgroup_mode : kernel::CgroupMode::kV2;
    o.cgroup_parent = absl::StrCat("shoal-bench-", getpid());
    env->rt_nopool = std::make_unique<Runtime>(o);
    o.netns_pool = 2;
    o.cgroup_pool = 2;
    env->rt = std::make_unique<Runtime>(o);
  }
  return env.get();
}

ContainerSpec Spec(Env* env) {
  ContainerSpec spec;
  spec.id = absl::StrCat("b", ++env->n);
  spec.rootfs = env->rootfs;
  spec.process.args = {"/bin/true"};
  return spec;
}

double CpuMs() {
  struct rusage self, children;
  getrusage(RUSAGE_SELF, &self);
  getrusage(RUSAGE_CHILDREN, &children);
  auto ms = [](const timeval& t) { return t.tv_sec * 1e3 + t.tv_usec / 1e3; };
  return ms(self.ru_utime) + ms(self.ru_stime) + ms(children.ru_utime) + ms(children.ru_stime);
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

// Runtime::Run (create and start in one round trip) until the process has exec'd.
// Arg 0: without the netns and cgroup pools.
void BM_RunToExec(benchmark::State& state) {
  Env* env = Setup(state);
  if (!env) return;
  Runtime* rt = state.range(0) ? env->rt.get() : env->rt_nopool.get();
  if (rt->netns_pool()) rt->netns_pool()->WaitReady(2);
  if (rt->cgroup_pool()) rt->cgroup_pool()->WaitReady(2);
  double cpu0 = CpuMs();
  for (auto _ : state) {
    auto c = rt->Run(Spec(env), {});
    if (!c.ok()) {
      state.SkipWithError("run failed");
      return;
    }
    state.PauseTiming();
    (void)(*c)->Wait();
    (void)(*c)->Delete();
    state.ResumeTiming();
  }
  // CPU (user + system) per iteration, wait and delete included, the pool's thread too.
  state.counters["cpu_ms"] = (CpuMs() - cpu0) / static_cast<double>(state.iterations());
}
BENCHMARK(BM_RunToExec)->Arg(1)->Arg(0)->Unit(benchmark::kMillisecond)->UseRealTime();

// Run-queue wait of the calling thread so far (schedstat field 2), ms.
double ThreadWaitMs() {
  char buf[128] = {};
  int fd = open("/proc/thread-self/schedstat", O_RDONLY | O_CLOEXEC);
  ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
  if (fd >= 0) close(fd);
  unsigned long long oncpu = 0, wait = 0;
  if (n > 0) sscanf(buf, "%llu %llu", &oncpu, &wait);
  return wait / 1e6;
}

// Where a Run's time goes, independent of the machine's load: the caller thread's CPU time
// inside Run (validate, render, cgroup, clone; it sleeps while the vfork child sets up), and
// the setup child's own on-CPU and run-queue wait time up to exec, read from the container's
// PID 1 (the same task after exec) in /proc/self/schedstat by `cat` (its own exec and read
// add ~0.1 ms to child_cpu_ms), plus the run-queue waits of both. On an idle machine the
// wall time is about caller_cpu_ms + child_cpu_ms; under load the *_wait_ms show the time
// spent waiting for a CPU.
// Arg 0: without the pools.
void BM_RunCriticalPath(benchmark::State& state) {
  Env* env = Setup(state);
  if (!env) return;
  Runtime* rt = state.range(0) ? env->rt.get() : env->rt_nopool.get();
  double caller = 0, caller_wait = 0, child_cpu = 0, child_wait = 0;
  for (auto _ : state) {
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) {
      state.SkipWithError("pipe");
      return;
    }
    if (rt->netns_pool()) rt->netns_pool()->WaitReady(2);
    if (rt->cgroup_pool()) rt->cgroup_pool()->WaitReady(2);
    ContainerSpec spec = Spec(env);
    spec.process.args = {"/bin/cat", "/proc/self/schedstat"};
    struct timespec t0, t1;
    double wait0 = ThreadWaitMs();
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0);
    auto c = rt->Run(spec, Stdio{-1, p[1], p[1]});
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t1);
    caller_wait += ThreadWaitMs() - wait0;
    close(p[1]);
    state.PauseTiming();
    char buf[128] = {};
    ssize_t n = read(p[0], buf, sizeof(buf) - 1);
    close(p[0]);
    if (!c.ok() || n <= 0) {
      state.SkipWithError("run failed");
      return;
    }
    (void)(*c)->Wait();
    (void)(*c)->Delete();
    unsigned long long oncpu = 0, wait = 0;
    sscanf(buf, "%llu %llu", &oncpu, &wait);
    caller += (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6;
    child_cpu += oncpu / 1e6;
    child_wait += wait / 1e6;
    state.ResumeTiming();
  }
  double iters = static_cast<double>(state.iterations());
  state.counters["caller_cpu_ms"] = caller / iters;
  state.counters["caller_wait_ms"] = caller_wait / iters;
  state.counters["child_cpu_ms"] = child_cpu / iters;
  state.counters["child_wait_ms"] = child_wait / iters;
}
BENCHMARK(BM_RunCriticalPath)->Arg(1)->Arg(0)->Unit(benchmark::kMillisecond)->UseRealTime();

// Everything a `run` does: create + start (Runtime::Run), wait for exit, delete (cgroup
// removed). cpu_ms = CPU time (user + system) of this process and the reaped container
// processes per run: less sensitive to the machine's load than the wall time.
void BM_RunTrue(benchmark::State& state) {
  Env* env = Setup(state);
  if (!env) return;
  double cpu0 = CpuMs();
  for (auto _ : state) {
    auto c = env->rt->Run(Spec(env), {});
    if (!c.ok() || !(*c)->Wait().ok() || !(*c)->Delete().ok()) {
      state.SkipWithError("run failed");
      return;
    }
  }
  state.counters["cpu_ms"] = (CpuMs() - cpu0) / static_cast<double>(state.iterations());
}
BENCHMARK(BM_RunTrue)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace shoal::runtime

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  shoal::runtime::TheEnv().reset();
  // Remove the per-process cgroup parent in every hierarchy (best effort).
  for (const std::string& c : shoal::kernel::V1Controllers()) {
    rmdir(absl::StrCat("/sys/fs/cgroup/", c, "/shoal-bench-", getpid()).c_str());
  }
  rmdir(absl::StrCat("/sys/fs/cgroup/shoal-bench-", getpid()).c_str());
  return 0;
}
