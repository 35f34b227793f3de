#include "lb/nft_backend.h"

#include <algorithm>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "base/status.h"
#include "kernel/nft/plan.h"
#include "lb/maglev.h"

namespace shoal::lb {
namespace nft = kernel::nft;
namespace {

constexpr char kServices[] = "services";
constexpr char kPublished[] = "published";

std::string SvcChain(const Service& s) { return "svc-" + s.name; }
std::string SvcMap(const Service& s) { return "svc-" + s.name + "-be"; }
std::string BeChain(const Service& s, const BackendAddr& b) {
  return absl::StrCat("be-", s.name, "-", b.ip, "-", b.port);
}

// The objects every fragment shares: base chains, their dispatch rules, the frontend maps.
void AddSkeleton(nft::Table& t) {
  using nft::Field;
  for (auto [name, hook] : {std::pair{"prerouting", nft::Hook::kPrerouting},
                            std::pair{"output", nft::Hook::kOutput}}) {
    t.chains.push_back(
        {name, nft::BaseChain{nft::ChainType::kNat, hook, nft::kPriorityDstNat, false}});
    t.rules.push_back(nft::RuleBuilder(nft::Family::kIp, name)
                          .Vmap({Field::kDaddr4, Field::kL4Proto, Field::kDport}, kServices));
    t.rules.push_back(nft::RuleBuilder(nft::Family::kIp, name)
                          .FibDaddrLocal()
                          .Vmap({Field::kL4Proto, Field::kDport}, kPublished));
  }
  nft::Set services;
  services.name = kServices;
  services.key = {nft::FieldType::kIpv4Addr, nft::FieldType::kInetProto,
                  nft::FieldType::kInetService};
  services.verdict_map = true;
  t.sets.push_back(services);
  nft::Set published;
  published.name = kPublished;
  published.key = {nft::FieldType::kInetProto, nft::FieldType::kInetService};
  published.verdict_map = true;
  t.sets.push_back(published);
}

void AddService(nft::Table& t, const Service& s, const NftBackendOptions& o) {
  // Frontend element.
  nft::Element fe;
  fe.verdict = nft::Goto(SvcChain(s));
  uint8_t proto = static_cast<uint8_t>(s.protocol);
  if (s.frontend == Frontend::kVip) {
    fe.key = {nft::Ipv4(s.vip), nft::Proto(proto), nft::Port(s.port)};
    t.sets[0].elements.push_back(std::move(fe));
  } else {
    fe.key = {nft::Proto(proto), nft::Port(s.port)};
    t.sets[1].elements.push_back(std::move(fe));
  }
  // Backend chains (drained ones too: they keep their DNAT for flows already bound).
  for (const BackendAddr& b : s.backends) {
    std::string chain = BeChain(s, b);
    t.chains.push_back({chain, std::nullopt});
    t.rules.push_back(nft::RuleBuilder(nft::Family::kIp, chain)
                          .Counter()
                          .Dnat(*nft::ParseAddr(b.ip), b.port));
  }
  // Slot map.
  std::vector<int32_t> slots;
  if (s.scheduler == Scheduler::kMaglev) {
    std::vector<WeightedBackend> wb;
    for (const BackendAddr& b : s.backends) wb.push_back({absl::StrCat(b.ip, ":", b.port), b.weight});
    auto table = BuildMaglevTable(wb, o.maglev_size, o.maglev_seed);
    if (table.ok() && !table->empty() && (*table)[0] >= 0) slots = *std::move(table);
  } else {
    for (size_t i = 0; i < s.backends.size(); ++i) {
      for (uint32_t w = 0; w < s.backends[i].weight; ++w) slots.push_back(static_cast<int32_t>(i));
    }
  }
  nft::Set map;
  map.name = SvcMap(s);
  map.key = {nft::FieldType::kInteger};
  map.verdict_map = true;
  for (size_t i = 0; i < slots.size(); ++i) {
    nft::Element e;
    e.key = {nft::U32(static_cast<uint32_t>(i))};
    e.verdict = nft::Goto(BeChain(s, s.backends[slots[i]]));
    map.elements.push_back(std::move(e));
  }
  t.sets.push_back(std::move(map));
  // Service chain.
  std::string chain = SvcChain(s);
  t.chains.push_back({chain, std::nullopt});
  nft::RuleBuilder rb(nft::Family::kIp, chain);
  if (slots.empty()) {
    t.rules.push_back(rb.Counter().Verdict(nft::Drop()));  // every backend drained
  } else if (s.scheduler == Scheduler::kMaglev) {
    t.rules.push_back(rb.HashVmap({nft::Field::kSaddr4, nft::Field::kSport},
                                  static_cast<uint32_t>(slots.size()), o.maglev_seed, SvcMap(s)));
  } else {
    t.rules.push_back(rb.NumgenVmap(static_cast<uint32_t>(slots.size()), SvcMap(s)));
  }
}

nft::Table Fragment(const std::vector<const Service*>& services, const NftBackendOptions& o) {
  nft::Table t;
  t.family = nft::Family::kIp;
  t.name = o.table;
  AddSkeleton(t);
  for (const Service* s : services) AddService(t, *s, o);
  return t;
}

absl::Status CheckIpv4(const Change& change) {
  for (const Service& s : change.upsert) {
    if (s.frontend == Frontend::kVip && s.vip.find(':') != std::string::npos) {
      return absl::UnimplementedError(
          absl::StrCat("service ", s.name, ": IPv6 VIPs are not supported by the nft backend yet"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

nft::Table NftBackend::DesiredTable(const std::vector<Service>& services,
                                    const NftBackendOptions& options) {
  std::vector<const Service*> ptrs;
  for (const Service& s : services) ptrs.push_back(&s);
  return Fragment(ptrs, options);
}

absl::StatusOr<std::unique_ptr<NftBackend>> NftBackend::Create(
    std::unique_ptr<nft::Nft> nft, std::unique_ptr<ConntrackCleaner> conntrack,
    NftBackendOptions options) {
  if (!IsPrime(options.maglev_size)) {
    return absl::InvalidArgumentError(
        absl::StrCat("nft backend: maglev_size ", options.maglev_size, " is not prime"));
  }
  std::unique_ptr<NftBackend> b(
      new NftBackend(std::move(nft), std::move(conntrack), std::move(options)));
  RETURN_IF_ERROR(b->Resync());
  return b;
}

absl::Status NftBackend::Resync() {
  std::lock_guard lock(mu_);
  nft::TableRef ref{nft::Family::kIp, options_.table};
  std::optional<nft::Table> observed;
  auto got = nft_->GetTable(ref);
  if (got.ok()) {
    observed = *std::move(got);
  } else if (!absl::IsNotFound(got.status())) {
    return got.status();
  }
  nft::Table desired = DesiredTable(services_.All(), options_);
  return nft_->Apply(nft::PlanTable(desired, observed));
}

absl::Status NftBackend::Apply(const Change& change) {
  RETURN_IF_ERROR(CheckIpv4(change));
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(Delta delta, services_.Plan(change));
  if (delta.empty()) return absl::OkStatus();
  std::vector<const Service*> before, after;
  for (const Service& s : delta.removed) before.push_back(&s);
  for (const auto& [old, neu] : delta.changed) {
    before.push_back(&old);
    after.push_back(&neu);
  }
  for (const Service& s : delta.added) after.push_back(&s);
  nft::Batch batch = nft::PlanTable(Fragment(after, options_), Fragment(before, options_));
  RETURN_IF_ERROR(nft_->Apply(batch));
  services_.Commit(delta);

  // Removed backends: forget their UDP flows (TCP ones end by themselves or get RST).
  if (conntrack_ == nullptr) return absl::OkStatus();
  auto forget = [&](const Service& old, const Service* neu) -> absl::Status {
    if (old.protocol != Protocol::kUdp) return absl::OkStatus();
    for (const BackendAddr& b : old.backends) {
      bool kept = neu != nullptr &&
                  std::any_of(neu->backends.begin(), neu->backends.end(), [&](const BackendAddr& x) {
                    return x.ip == b.ip && x.port == b.port;
                  });
      if (kept) continue;
      auto n = conntrack_->DeleteFlowsTo(static_cast<uint8_t>(Protocol::kUdp), b.ip, b.port);
      if (!n.ok()) return base::Annotate(n.status(), "lb: delete stale UDP conntrack entries");
    }
    return absl::OkStatus();
  };
  for (const Service& s : delta.removed) RETURN_IF_ERROR(forget(s, nullptr));
  for (const auto& [old, neu] : delta.changed) RETURN_IF_ERROR(forget(old, &neu));
  return absl::OkStatus();
}

std::vector<Service> NftBackend::Services() const {
  std::lock_guard lock(mu_);
  return services_.All();
}

absl::Status NftBackend::Destroy() {
  std::lock_guard lock(mu_);
  return nft::DeleteTableIfExists(*nft_, nft::TableRef{nft::Family::kIp, options_.table});
}

}  // namespace shoal::lb
