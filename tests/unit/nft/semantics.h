// Scenarios shared by the FakeNft unit test and the kernel priv test: the fake must behave like
// the kernel, so the same expectations run against both.
#pragma once

#include "gtest/gtest.h"
#include <random>

#include "kernel/nft/nft.h"
#include "kernel/nft/plan.h"

#define NFT_ASSERT_OK(e)           \
  do {                             \
    absl::Status nft_st_ = (e);    \
    ASSERT_TRUE(nft_st_.ok()) << nft_st_; \
  } while (0)
#define NFT_EXPECT_OK(e)                                \
  do {                                                  \
    absl::Status nft_st_ = (e);                         \
    EXPECT_TRUE(nft_st_.ok()) << nft_st_;               \
  } while (0)

namespace shoal::kernel::nft::testing {

inline Table SampleTable(const std::string& name) {
  Table t;
  t.family = Family::kInet;
  t.name = name;
  t.chains = {
      {"ep-web-0", std::nullopt},
      {"ep-web-1", std::nullopt},
      {"output", BaseChain{ChainType::kNat, Hook::kOutput, kPriorityDstNat}},
      {"postrouting", BaseChain{ChainType::kNat, Hook::kPostrouting, kPrioritySrcNat}},
      {"prerouting", BaseChain{ChainType::kNat, Hook::kPrerouting, kPriorityDstNat}},
      {"services", std::nullopt},
      {"svc-web", std::nullopt},
  };
  Set svc{"service-ips", {FieldType::kIpv4Addr, FieldType::kInetProto, FieldType::kInetService},
          true, {}, {}};
  svc.elements.push_back({{Ipv4("10.200.0.1"), Proto(6), Port(80)}, Goto("svc-web"), {}});
  Set ports{"service-ports", {FieldType::kInetProto, FieldType::kInetService}, true, {}, {}};
  ports.elements.push_back({{Proto(6), Port(8081)}, Goto("svc-web"), {}});
  Set backends{"svc-web-backends", {FieldType::kInteger}, true, {}, {}};
  backends.elements.push_back({{U32(0)}, Goto("ep-web-0"), {}});
  backends.elements.push_back({{U32(1)}, Goto("ep-web-1"), {}});
  Set local{"local-nets", {FieldType::kIpv4Addr}, false, {}, {}};
  local.elements.push_back({{Ipv4("10.99.0.2")}, std::nullopt, {}});
  Set dnat_map{"dnat-map", {FieldType::kInetService},
               false, {FieldType::kIpv4Addr, FieldType::kInetService}, {}};
  dnat_map.elements.push_back({{Port(81)}, std::nullopt, {Ipv4("10.99.0.2"), Port(9090)}});
  t.sets = {dnat_map, local, svc, ports, backends};
  Family f = t.family;
  t.rules = {
      RuleBuilder(f, "ep-web-0").Comment("web.0").Counter().Dnat(*ParseAddr("10.99.0.2"), 9090),
      RuleBuilder(f, "ep-web-1").Comment("web.1").Counter().Dnat(*ParseAddr("10.99.0.2"), 9090),
      RuleBuilder(f, "output").Daddr(*ParsePrefix("127.0.0.11")).L4Proto(17).Dport(53)
          .Dnat(*ParseAddr("127.0.0.11"), 5353),
      RuleBuilder(f, "output").Verdict(Jump("services")),
      RuleBuilder(f, "postrouting").Saddr(*ParsePrefix("10.98.0.0/24")).OifName("sni-ra", false)
          .Counter().Masquerade(),
      RuleBuilder(f, "postrouting").Mark(7).Snat(*ParseAddr("10.99.0.2")),
      RuleBuilder(f, "prerouting").Verdict(Jump("services")),
      RuleBuilder(f, "prerouting").FibDaddrLocal()
          .Vmap({Field::kL4Proto, Field::kDport}, "service-ports"),
      RuleBuilder(f, "prerouting").L4Proto(6).Dport(7070).Redirect(9090),
      RuleBuilder(f, "prerouting").CtState(kCtEstablished | kCtRelated).Counter().Build(),
      RuleBuilder(f, "prerouting").InSet({Field::kDaddr4}, "local-nets").Counter().Build(),
            RuleBuilder(f, "services").Vmap({Field::kDaddr4, Field::kL4Proto, Field::kDport},
                                      "service-ips"),
      RuleBuilder(f, "svc-web").Counter().NumgenVmap(2, "svc-web-backends"),
      RuleBuilder(f, "svc-web").HashVmap({Field::kSaddr4, Field::kSport}, 2, 42,
                                         "svc-web-backends"),
  };
  return t;
}

// Expectations about Apply semantics (codes and atomicity), run against any Nft.
inline void CheckSemantics(Nft& nft, const std::string& name) {
  TableRef t{Family::kInet, name};
  NFT_ASSERT_OK(nft.Apply(Batch().AddTable(t)));
  NFT_EXPECT_OK(nft.Apply(Batch().AddTable(t)));  // add is idempotent
  EXPECT_EQ(nft.Apply(Batch().CreateTable(t)).code(), absl::StatusCode::kAlreadyExists);

  // Rule into a missing chain: NOT_FOUND naming the op; the whole batch is rolled back.
  Batch b;
  b.AddChain(t, {"c1", std::nullopt});
  b.AddRule(t, RuleBuilder(t.family, "nope").Verdict(Accept()));
  absl::Status st = nft.Apply(b);
  EXPECT_EQ(st.code(), absl::StatusCode::kNotFound) << st;
  EXPECT_NE(std::string(st.message()).find("nft op 1 (add rule inet " + name + " nope)"),
            std::string::npos)
      << st;
  auto got = nft.GetTable(t);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(got->chains.empty()) << "batch must be atomic";

  // Chain referenced by a rule cannot be deleted; a missing chain cannot either.
  NFT_ASSERT_OK(nft.Apply(Batch()
                            .AddChain(t, {"a", std::nullopt})
                            .AddChain(t, {"b", std::nullopt})
                            .AddRule(t, RuleBuilder(t.family, "a").Verdict(Jump("b"))))
                  );
  EXPECT_EQ(nft.Apply(Batch().DeleteChain(t, "b")).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(nft.Apply(Batch().DeleteChain(t, "zz")).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(nft.Apply(Batch().CreateChain(t, {"a", std::nullopt})).code(),
            absl::StatusCode::kAlreadyExists);
  // Flushing "a" then deleting "b" in one batch works (references gone inside the batch).
  NFT_EXPECT_OK(nft.Apply(Batch().FlushChain(t, "a").DeleteChain(t, "b")));

  // Sets: element clash, missing element, set in use.
  Set m{"m", {FieldType::kInetService}, true, {}, {}};
  NFT_ASSERT_OK(nft.Apply(Batch().AddChain(t, {"x", std::nullopt}).AddChain(t, {"y", std::nullopt})
                            .AddSet(t, m))
                  );
  NFT_ASSERT_OK(nft.Apply(Batch().AddElements(t, "m", {{{Port(1)}, Goto("x"), {}}})));
  // Re-adding an identical element is accepted.
  NFT_EXPECT_OK(nft.Apply(Batch().AddElements(t, "m", {{{Port(1)}, Goto("x"), {}}})));
  st = nft.Apply(Batch().AddElements(t, "m", {{{Port(1)}, Goto("y"), {}}}));
  EXPECT_EQ(st.code(), absl::StatusCode::kAlreadyExists) << st;
  EXPECT_EQ(nft.Apply(Batch().DeleteElements(t, "m", {{{Port(2)}, std::nullopt, {}}})).code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(nft.Apply(Batch().AddElements(t, "m", {{{Port(3)}, Goto("nochain"), {}}})).code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(nft.Apply(Batch().DeleteChain(t, "x")).code(), absl::StatusCode::kFailedPrecondition)
      << "chain x is referenced by a map element";
  NFT_ASSERT_OK(nft.Apply(Batch().AddRule(
                            t, RuleBuilder(t.family, "y").Vmap({Field::kDport}, "m")))
                  );
  EXPECT_EQ(nft.Apply(Batch().DeleteSet(t, "m")).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(nft.Apply(Batch().AddRule(t, RuleBuilder(t.family, "y").Vmap({Field::kDport}, "q")))
                .code(),
            absl::StatusCode::kNotFound);

  // Rule delete by handle.
  got = nft.GetTable(t);
  ASSERT_TRUE(got.ok());
  ASSERT_EQ(got->rules.size(), 1u);
  uint64_t h = got->rules[0].handle;
  NFT_EXPECT_OK(nft.Apply(Batch().DeleteRule(t, "y", h)));
  EXPECT_EQ(nft.Apply(Batch().DeleteRule(t, "y", h)).code(),
            absl::StatusCode::kNotFound);

  // Delete table removes everything at once; deleting again is NOT_FOUND; IfExists is fine.
  NFT_EXPECT_OK(nft.Apply(Batch().DeleteTable(t)));
  EXPECT_EQ(nft.Apply(Batch().DeleteTable(t)).code(), absl::StatusCode::kNotFound);
  NFT_EXPECT_OK(DeleteTableIfExists(nft, t));
  EXPECT_EQ(nft.GetTable(t).status().code(), absl::StatusCode::kNotFound);
}

// Random desired tables: from any observed state A, applying PlanTable(B, A) yields exactly B.
inline Table RandomTable(std::mt19937& rng) {
  Table t;
  t.family = Family::kIp;
  t.name = "r";
  t.chains.push_back({"pre", BaseChain{ChainType::kNat, Hook::kPrerouting,
                                       rng() % 4 == 0 ? kPriorityFilter : kPriorityDstNat}});
  std::vector<std::string> chains;
  for (int i = 0; i < 6; ++i) {
    if (rng() % 2) chains.push_back("c" + std::to_string(i));
  }
  for (const std::string& c : chains) t.chains.push_back({c, std::nullopt});
  std::sort(t.chains.begin(), t.chains.end(),
            [](const Chain& a, const Chain& b) { return a.name < b.name; });
  bool wide = rng() % 5 == 0;  // reshape the map sometimes
  Set m{"m", wide ? std::vector<FieldType>{FieldType::kInetProto, FieldType::kInetService}
                  : std::vector<FieldType>{FieldType::kInetService},
        true, {}, {}};
  if (!chains.empty()) {
    for (uint16_t port = 1; port <= 8; ++port) {
      if (rng() % 2 == 0) continue;
      Element e;
      e.key = wide ? std::vector<Datum>{Proto(6), Port(port)} : std::vector<Datum>{Port(port)};
      e.verdict = Goto(chains[rng() % chains.size()]);
      m.elements.push_back(e);
    }
  }
  if (rng() % 4 != 0) {
    t.sets.push_back(m);
    t.rules.push_back(RuleBuilder(t.family, "pre")
                          .Vmap(wide ? std::vector<Field>{Field::kL4Proto, Field::kDport}
                                     : std::vector<Field>{Field::kDport},
                                "m"));
  }
  if (rng() % 2) t.rules.push_back(RuleBuilder(t.family, "pre").Counter().Build());
  for (const std::string& c : chains) {
    int n = static_cast<int>(rng() % 3);
    for (int i = 0; i < n; ++i) {
      t.rules.push_back(RuleBuilder(t.family, c)
                            .Comment(std::to_string(rng() % 3))
                            .L4Proto(6)
                            .Dnat(*ParseAddr("10.0.0." + std::to_string(1 + rng() % 3)), 80));
    }
  }
  std::stable_sort(t.rules.begin(), t.rules.end(),
                   [](const Rule& a, const Rule& b) { return a.chain < b.chain; });
  return t;
}

inline void CheckRandomTransitions(Nft& nft, int steps) {
  std::mt19937 rng(2026);
  TableRef ref{Family::kIp, "r"};
  std::optional<Table> observed;
  for (int step = 0; step < steps; ++step) {
    Table want = RandomTable(rng);
    Batch b = PlanTable(want, observed);
    absl::Status st = nft.Apply(b);
    ASSERT_TRUE(st.ok()) << "step " << step << ": " << st;
    auto got = nft.GetTable(ref);
    ASSERT_TRUE(got.ok());
    EXPECT_EQ(got->chains, want.chains) << step;
    EXPECT_EQ(got->sets, want.sets) << step;
    EXPECT_EQ(got->rules, want.rules) << step;
    EXPECT_TRUE(PlanTable(want, *got).empty()) << step;
    observed = *got;
  }
  NFT_EXPECT_OK(DeleteTableIfExists(nft, ref));
}

}  // namespace shoal::kernel::nft::testing
