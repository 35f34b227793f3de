// kernel/nft benchmarks: cost of one service change as the table grows (1k vs 10k services,
// each with its own chain, a service-map element and a DNAT rule).
//   BM_PlanAddOneService  pure PlanTable delta against an observed table;
//   BM_KernelAddOneService  one atomic batch (add chain + element + rule) sent to the kernel in
//                           a throwaway netns "sni-bench-<pid>" (needs root; skipped otherwise).
// bench/nft.sh runs the kernel case side by side with `nft -f` doing the same change.
#include <fcntl.h>
#include <unistd.h>

#include <benchmark/benchmark.h>

#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"
#include "kernel/nft/netlink_nft.h"
#include "kernel/nft/plan.h"

namespace shoal::kernel::nft {
namespace {

const TableRef kTable{Family::kIp, "sni-bench"};

std::string SvcChain(int i) { return absl::StrCat("svc-", i); }

Datum Vip(int i) { return Ipv4(0x0a640000u + static_cast<uint32_t>(i)); }  // 10.100.x.y

Table ServicesTable(int n) {
  Table t;
  t.family = kTable.family;
  t.name = kTable.name;
  t.chains.push_back({"prerouting", BaseChain{ChainType::kNat, Hook::kPrerouting, kPriorityDstNat}});
  Set map{"service-ips", {FieldType::kIpv4Addr, FieldType::kInetProto, FieldType::kInetService},
          true, {}, {}};
  t.rules.push_back(RuleBuilder(t.family, "prerouting")
                        .Vmap({Field::kDaddr4, Field::kL4Proto, Field::kDport}, "service-ips"));
  for (int i = 0; i < n; ++i) {
    t.chains.push_back({SvcChain(i), std::nullopt});
    map.elements.push_back({{Vip(i), Proto(6), Port(80)}, Goto(SvcChain(i)), {}});
    t.rules.push_back(RuleBuilder(t.family, SvcChain(i)).L4Proto(6).Dnat(*ParseAddr("10.0.0.2"), 8080));
  }
  t.sets.push_back(std::move(map));
  std::sort(t.chains.begin(), t.chains.end(),
            [](const Chain& a, const Chain& b) { return a.name < b.name; });
  return t;
}

Batch AddService(int i) {
  Batch b;
  b.AddChain(kTable, {SvcChain(i), std::nullopt});
  b.AddElements(kTable, "service-ips", {{{Vip(i), Proto(6), Port(80)}, Goto(SvcChain(i)), {}}});
  b.AddRule(kTable, RuleBuilder(kTable.family, SvcChain(i)).L4Proto(6).Dnat(*ParseAddr("10.0.0.2"), 8080));
  return b;
}

Batch RemoveService(int i) {
  Batch b;
  b.DeleteElements(kTable, "service-ips", {{{Vip(i), Proto(6), Port(80)}, std::nullopt, {}}});
  b.FlushChain(kTable, SvcChain(i));
  b.DeleteChain(kTable, SvcChain(i));
  return b;
}

void BM_PlanAddOneService(benchmark::State& state) {
  int n = static_cast<int>(state.range(0));
  Table observed = ServicesTable(n);
  Table desired = ServicesTable(n + 1);
  for (auto _ : state) {
    Batch b = PlanTable(desired, observed);
    benchmark::DoNotOptimize(b);
  }
}
BENCHMARK(BM_PlanAddOneService)->Arg(1000)->Arg(10000)->Unit(benchmark::kMillisecond);

enum Variant { kFull = 0, kChainOnly = 1, kChainAndRule = 2, kElementToExisting = 3 };

Batch AddVariant(int i, int n, int v) {
  Batch b;
  if (v == kFull) return AddService(i);
  if (v == kElementToExisting) {
    b.AddElements(kTable, "service-ips", {{{Vip(i), Proto(6), Port(81)}, Goto(SvcChain(0)), {}}});
    return b;
  }
  b.AddChain(kTable, {SvcChain(i), std::nullopt});
  if (v == kChainAndRule) {
    b.AddRule(kTable, RuleBuilder(kTable.family, SvcChain(i)).L4Proto(6).Dnat(*ParseAddr("10.0.0.2"), 8080));
  }
  return b;
}

Batch RemoveVariant(int i, int v) {
  Batch b;
  if (v == kFull) return RemoveService(i);
  if (v == kElementToExisting) {
    b.DeleteElements(kTable, "service-ips", {{{Vip(i), Proto(6), Port(81)}, std::nullopt, {}}});
    return b;
  }
  b.FlushChain(kTable, SvcChain(i));
  b.DeleteChain(kTable, SvcChain(i));
  return b;
}

void BM_KernelAddOneService(benchmark::State& state) {
  if (geteuid() != 0) {
    state.SkipWithError("needs root");
    return;
  }
  int n = static_cast<int>(state.range(0));
  std::string ns = absl::StrCat("sni-bench-", getpid());
  if (std::system(("ip netns add " + ns).c_str()) != 0) {
    state.SkipWithError("ip netns add failed");
    return;
  }
  int fd = open(("/var/run/netns/" + ns).c_str(), O_RDONLY | O_CLOEXEC);
  auto nft = OpenNft(fd);
  close(fd);
  absl::Status st = nft.ok() ? (*nft)->Apply(PlanTable(ServicesTable(n), std::nullopt))
                             : nft.status();
  if (!st.ok()) {
    state.SkipWithError(std::string(st.message()).c_str());
  } else {
    for (auto _ : state) {
      st = (*nft)->Apply(AddVariant(n, n, static_cast<int>(state.range(1))));
      state.PauseTiming();
      if (st.ok()) st = (*nft)->Apply(RemoveVariant(n, static_cast<int>(state.range(1))));
      if (!st.ok()) state.SkipWithError(std::string(st.message()).c_str());
      state.ResumeTiming();
      if (!st.ok()) break;
    }
  }
  nft = absl::InternalError("closed");
  std::system(("ip netns del " + ns).c_str());
}
// Second argument: 0 = full service (chain + element + rule), 1 = chain only, 2 = chain + rule,
// 3 = one more element pointing at an existing chain (shows where the kernel spends the time).
BENCHMARK(BM_KernelAddOneService)
    ->ArgsProduct({{1000, 10000}, {0, 1, 2, 3}})
    ->Unit(benchmark::kMicrosecond)
    ->Iterations(100);

// The chain-free layout (RuleBuilder::DnatMap): every service is `kSlots` elements of one
// typed map; adding a service adds elements with plain data only.
constexpr int kSlots = 4;
const TableRef kMapTable{Family::kIp, "sni-bench-map"};

std::vector<Element> ServiceSlots(int i) {
  std::vector<Element> out;
  for (int k = 0; k < kSlots; ++k) {
    out.push_back({{Vip(i), Proto(6), Port(80), U32(static_cast<uint32_t>(k))}, std::nullopt,
                   {Ipv4(0x0a000002u + static_cast<uint32_t>(k)), Port(8080)}});
  }
  return out;
}

void BM_KernelAddOneServiceDnatMap(benchmark::State& state) {
  if (geteuid() != 0) {
    state.SkipWithError("needs root");
    return;
  }
  int n = static_cast<int>(state.range(0));
  std::string ns = absl::StrCat("sni-bench-", getpid());
  if (std::system(("ip netns add " + ns).c_str()) != 0) {
    state.SkipWithError("ip netns add failed");
    return;
  }
  int fd = open(("/var/run/netns/" + ns).c_str(), O_RDONLY | O_CLOEXEC);
  auto nft = OpenNft(fd);
  close(fd);
  Table t;
  t.family = kMapTable.family;
  t.name = kMapTable.name;
  t.chains = {{"prerouting", BaseChain{ChainType::kNat, Hook::kPrerouting, kPriorityDstNat}}};
  Set m{"backends",
        {FieldType::kIpv4Addr, FieldType::kInetProto, FieldType::kInetService, FieldType::kInteger},
        false, {FieldType::kIpv4Addr, FieldType::kInetService}, {}};
  for (int i = 0; i < n; ++i) {
    for (Element& e : ServiceSlots(i)) m.elements.push_back(std::move(e));
  }
  t.sets = {std::move(m)};
  t.rules = {RuleBuilder(t.family, "prerouting")
                 .DnatMap({Field::kDaddr4, Field::kL4Proto, Field::kDport},
                          {RuleBuilder::Slot::kRandom, kSlots, {}, 0}, "backends")};
  absl::Status st = nft.ok() ? (*nft)->Apply(PlanTable(t, std::nullopt)) : nft.status();
  if (!st.ok()) {
    state.SkipWithError(std::string(st.message()).c_str());
  } else {
    for (auto _ : state) {
      st = (*nft)->Apply(Batch().AddElements(kMapTable, "backends", ServiceSlots(n)));
      state.PauseTiming();
      if (st.ok()) st = (*nft)->Apply(Batch().DeleteElements(kMapTable, "backends", ServiceSlots(n)));
      if (!st.ok()) state.SkipWithError(std::string(st.message()).c_str());
      state.ResumeTiming();
      if (!st.ok()) break;
    }
  }
  nft = absl::InternalError("closed");
  std::system(("ip netns del " + ns).c_str());
}
BENCHMARK(BM_KernelAddOneServiceDnatMap)->Arg(1000)->Arg(10000)->Unit(benchmark::kMicrosecond)
    ->Iterations(100);

}  // namespace
}  // namespace shoal::kernel::nft
