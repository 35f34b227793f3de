// Micro-benchmarks for shoal::ipam (no peer: Docker's IPAM is Go inside dockerd; these bound
// the allocator's cost per operation for the manager's allocator loop).
#include <benchmark/benchmark.h>

#include "ipam/ipam.h"
#include "nlohmann/json.hpp"

namespace shoal::ipam {
namespace {

Prefix Pfx(const char* s) { return *ParsePrefix(s); }

// Allocate + release one address in a subnet holding `range(0)` addresses already.
void BM_AllocateRelease(benchmark::State& state) {
  auto pool = AddressPool::Create({Pfx("10.0.0.0/8")});
  for (int64_t i = 0; i < state.range(0); ++i) (void)pool->Allocate();
  for (auto _ : state) {
    auto a = pool->Allocate();
    benchmark::DoNotOptimize(a);
    (void)pool->Release(*a);
  }
}
BENCHMARK(BM_AllocateRelease)->Arg(0)->Arg(1000)->Arg(100000);

// Fill a /24 from empty to exhaustion.
void BM_Fill24(benchmark::State& state) {
  for (auto _ : state) {
    auto pool = AddressPool::Create({Pfx("10.0.0.0/24")});
    while (pool->Allocate().ok()) {
    }
  }
  state.SetItemsProcessed(state.iterations() * 253);
}
BENCHMARK(BM_Fill24);

// Fragmented pool: every other address released, then next-fit allocations.
void BM_AllocateFragmented(benchmark::State& state) {
  auto pool = AddressPool::Create({Pfx("10.0.0.0/16")});
  std::vector<IpAddr> got;
  while (true) {
    auto a = pool->Allocate();
    if (!a.ok()) break;
    got.push_back(*a);
  }
  for (size_t i = 0; i < got.size(); i += 2) (void)pool->Release(got[i]);
  for (auto _ : state) {
    auto a = pool->Allocate();
    if (!a.ok()) {
      state.PauseTiming();
      for (size_t i = 0; i < got.size(); i += 2) (void)pool->Release(got[i]);
      state.ResumeTiming();
      continue;
    }
    benchmark::DoNotOptimize(a);
  }
}
BENCHMARK(BM_AllocateFragmented);

void BM_Ipv6Allocate(benchmark::State& state) {
  auto pool = AddressPool::Create({Pfx("fd00::/64")});
  for (auto _ : state) benchmark::DoNotOptimize(pool->Allocate());
}
BENCHMARK(BM_Ipv6Allocate);

// Subnet allocation from 10.0.0.0/8 with `range(0)` subnets in use.
void BM_SubnetAllocate(benchmark::State& state) {
  auto pools = SubnetPools::Create(DefaultGlobalPools());
  for (int64_t i = 0; i < state.range(0); ++i) (void)pools->Allocate(Scope::kGlobal, false);
  for (auto _ : state) {
    auto p = pools->Allocate(Scope::kGlobal, false);
    (void)pools->Release(*p);
  }
}
BENCHMARK(BM_SubnetAllocate)->Arg(0)->Arg(1000)->Arg(60000);

// JSON round trip of an Ipam with 1000 /24 networks, 100 addresses each.
void BM_JsonRoundTrip(benchmark::State& state) {
  auto ipam = Ipam::Create();
  for (int n = 0; n < 1000; ++n) {
    Prefix net = *ipam->AddSubnet({});
    for (int i = 0; i < 100; ++i) (void)ipam->Allocate(net);
  }
  for (auto _ : state) {
    std::string s = ipam->ToJson().dump();
    auto back = Ipam::FromJson(nlohmann::json::parse(s));
    benchmark::DoNotOptimize(back);
  }
}
BENCHMARK(BM_JsonRoundTrip)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace shoal::ipam
