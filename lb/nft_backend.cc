#include "lb/nft_backend.h"

#include <algorithm>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "base/check.h"
#include "base/status.h"
#include "kernel/nft/plan.h"
#include "lb/maglev.h"

namespace shoal::lb {
namespace nft = kernel::nft;
namespace {

constexpr char kVipRandom[] = "vip-random";
constexpr char kVipMaglev[] = "vip-maglev";
constexpr char kPubRandom[] = "pub-random";
constexpr char kPubMaglev[] = "pub-maglev";

const char* MapFor(const Service& s) {
  bool vip = s.frontend == Frontend::kVip;
  if (s.scheduler == Scheduler::kMaglev) return vip ? kVipMaglev : kPubMaglev;
  return vip ? kVipRandom : kPubRandom;
}

// The objects every fragment shares: base chains, their four dispatch rules, the maps.
void AddSkeleton(nft::Table& t, const NftBackendOptions& o) {
  using nft::Field;
  using Slot = nft::RuleBuilder::Slot;
  Slot random{Slot::kRandom, o.slots, {}, 0};
  Slot maglev{Slot::kHash, o.slots, {Field::kSaddr4, Field::kSport}, o.maglev_seed};
  for (auto [name, hook] :
       {std::pair{"output", nft::Hook::kOutput}, std::pair{"prerouting", nft::Hook::kPrerouting}}) {
    t.chains.push_back(
        {name, nft::BaseChain{nft::ChainType::kNat, hook, nft::kPriorityDstNat, false}});
    std::vector<Field> vip_key = {Field::kDaddr4, Field::kL4Proto, Field::kDport};
    std::vector<Field> pub_key = {Field::kL4Proto, Field::kDport};
    t.rules.push_back(
        nft::RuleBuilder(nft::Family::kIp, name).DnatMap(vip_key, random, kVipRandom));
    t.rules.push_back(
        nft::RuleBuilder(nft::Family::kIp, name).DnatMap(vip_key, maglev, kVipMaglev));
    t.rules.push_back(nft::RuleBuilder(nft::Family::kIp, name)
                          .FibDaddrLocal()
                          .DnatMap(pub_key, random, kPubRandom));
    t.rules.push_back(nft::RuleBuilder(nft::Family::kIp, name)
                          .FibDaddrLocal()
                          .DnatMap(pub_key, maglev, kPubMaglev));
  }
  if (!o.masquerade_oif.empty()) {
    t.chains.push_back({"postrouting", nft::BaseChain{nft::ChainType::kNat, nft::Hook::kPostrouting,
                                                      nft::kPrioritySrcNat, false}});
    t.rules.push_back(nft::RuleBuilder(nft::Family::kIp, "postrouting")
                          .CtStatus(nft::kCtStatusDnat)
                          .OifName(o.masquerade_oif)
                          .Masquerade());
  }
  using FT = nft::FieldType;
  for (const char* name : {kPubMaglev, kPubRandom, kVipMaglev, kVipRandom}) {
    nft::Set m;
    m.name = name;
    bool vip = name == kVipRandom || name == kVipMaglev;
    m.key = vip ? std::vector<FT>{FT::kIpv4Addr, FT::kInetProto, FT::kInetService, FT::kInteger}
                : std::vector<FT>{FT::kInetProto, FT::kInetService, FT::kInteger};
    m.data = {FT::kIpv4Addr, FT::kInetService};
    t.sets.push_back(std::move(m));
  }
}

nft::Set& SetNamed(nft::Table& t, absl::string_view name) {
  for (nft::Set& s : t.sets) {
    if (s.name == name) return s;
  }
  CHECK(false) << "no set " << name;
  return t.sets.front();
}

// The service's slot -> backend elements. A drained backend owns no slot (no new flows); its
// established flows keep their conntrack NAT binding.
absl::Status AddService(nft::Table& t, const Service& s, const NftBackendOptions& o) {
  std::vector<WeightedBackend> wb;
  for (const BackendAddr& b : s.backends) wb.push_back({absl::StrCat(b.ip, ":", b.port), b.weight});
  auto table = BuildMaglevTable(wb, o.slots, o.maglev_seed);
  if (!table.ok()) return base::Annotate(table.status(), absl::StrCat("service ", s.name));
  if (table->empty() || (*table)[0] < 0) return absl::OkStatus();  // every backend drained
  nft::Set& map = SetNamed(t, MapFor(s));
  uint8_t proto = static_cast<uint8_t>(s.protocol);
  for (size_t slot = 0; slot < table->size(); ++slot) {
    const BackendAddr& b = s.backends[(*table)[slot]];
    nft::Element e;
    if (s.frontend == Frontend::kVip) {
      e.key = {nft::Ipv4(s.vip), nft::Proto(proto), nft::Port(s.port),
               nft::U32(static_cast<uint32_t>(slot))};
    } else {
      e.key = {nft::Proto(proto), nft::Port(s.port), nft::U32(static_cast<uint32_t>(slot))};
    }
    e.data = {nft::Ipv4(b.ip), nft::Port(b.port)};
    map.elements.push_back(std::move(e));
  }
  return absl::OkStatus();
}

absl::StatusOr<nft::Table> Fragment(const std::vector<const Service*>& services,
                                    const NftBackendOptions& o) {
  nft::Table t;
  t.family = nft::Family::kIp;
  t.name = o.table;
  AddSkeleton(t, o);
  for (const Service* s : services) RETURN_IF_ERROR(AddService(t, *s, o));
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

absl::StatusOr<nft::Table> NftBackend::DesiredTable(const std::vector<Service>& services,
                                                    const NftBackendOptions& options) {
  std::vector<const Service*> ptrs;
  for (const Service& s : services) ptrs.push_back(&s);
  return Fragment(ptrs, options);
}

absl::StatusOr<std::unique_ptr<NftBackend>> NftBackend::Create(
    std::unique_ptr<nft::Nft> nft, std::unique_ptr<ConntrackCleaner> conntrack,
    NftBackendOptions options) {
  if (!IsPrime(options.slots)) {
    return absl::InvalidArgumentError(
        absl::StrCat("nft backend: slots ", options.slots, " is not prime"));
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
  ASSIGN_OR_RETURN(nft::Table desired, DesiredTable(services_.All(), options_));
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
  ASSIGN_OR_RETURN(nft::Table want, Fragment(after, options_));
  ASSIGN_OR_RETURN(nft::Table have, Fragment(before, options_));
  nft::Batch batch = nft::PlanTable(want, have);
  RETURN_IF_ERROR(nft_->Apply(batch));
  services_.Commit(delta);

  // Removed backends: forget their UDP flows (TCP ones end by themselves or get RST).
  if (conntrack_ == nullptr) return absl::OkStatus();
  auto forget = [&](const Service& old, const Service* neu) -> absl::Status {
    if (old.protocol != Protocol::kUdp) return absl::OkStatus();
    for (const BackendAddr& b : old.backends) {
      bool kept = neu != nullptr && std::any_of(neu->backends.begin(), neu->backends.end(),
                                                [&](const BackendAddr& x) {
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
