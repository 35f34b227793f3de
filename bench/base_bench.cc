// Micro-benchmarks of base/ primitives used on hot paths (ids for every task and container).
#include <benchmark/benchmark.h>

#include "base/random.h"

namespace {

void BM_NewIdSystemRandom(benchmark::State& state) {
  shoal::base::SystemRandom random;
  for (auto _ : state) benchmark::DoNotOptimize(shoal::base::NewId(random));
}
BENCHMARK(BM_NewIdSystemRandom);

void BM_NewIdFakeRandom(benchmark::State& state) {
  shoal::base::FakeRandom random(1);
  for (auto _ : state) benchmark::DoNotOptimize(shoal::base::NewId(random));
}
BENCHMARK(BM_NewIdFakeRandom);

}  // namespace
