// Unit tests for kernel/nft without root: FakeNft semantics (the same scenarios the priv test
// runs against the kernel), PlanTable deltas, RuleBuilder output and parsing.
#include <algorithm>

#include "kernel/nft/fake_nft.h"
#include "kernel/nft/plan.h"
#include "tests/unit/nft/semantics.h"

namespace shoal::kernel::nft {
namespace {

TEST(FakeNftTest, SameSemanticsAsKernel) {
  FakeNft nft;
  testing::CheckSemantics(nft, "t");
}

TEST(FakeNftTest, NatHookRestrictionsLikeKernel) {
  FakeNft nft;
  TableRef t{Family::kIp, "t"};
  NFT_ASSERT_OK(nft.Apply(Batch().AddTable(t).AddChain(
      t, {"pre", BaseChain{ChainType::kNat, Hook::kPrerouting, kPriorityDstNat}})));
  EXPECT_EQ(nft.Apply(Batch().AddRule(t, RuleBuilder(t.family, "pre").Masquerade())).code(),
            absl::StatusCode::kUnimplemented);
  EXPECT_EQ(nft.Apply(Batch().AddRule(t, RuleBuilder(t.family, "pre").Snat(*ParseAddr("1.2.3.4"))))
                .code(),
            absl::StatusCode::kUnimplemented);
  NFT_EXPECT_OK(nft.Apply(Batch().AddRule(t, RuleBuilder(t.family, "pre").Dnat(*ParseAddr("1.2.3.4"), 80))));
}

TEST(FakeNftTest, FailNextApplyLeavesStateUnchanged) {
  FakeNft nft;
  nft.FailNextApply(absl::UnavailableError("injected"));
  TableRef t{Family::kInet, "t"};
  EXPECT_EQ(nft.Apply(Batch().AddTable(t)).code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(nft.GetTable(t).status().code(), absl::StatusCode::kNotFound);
  NFT_EXPECT_OK(nft.Apply(Batch().AddTable(t)));
  EXPECT_EQ(nft.applies(), 1);
}

TEST(FakeNftTest, RollbackRestoresDeletedTableAndSetExactly) {
  FakeNft nft;
  Table desired = testing::SampleTable("lb");
  NFT_ASSERT_OK(nft.Apply(PlanTable(desired, std::nullopt)));
  TableRef t{desired.family, desired.name};
  auto before = nft.GetTable(t);
  // Touch things, delete a set and the table, then fail: everything must come back.
  Batch b;
  b.FlushChain(t, "svc-web");
  b.DeleteElements(t, "svc-web-backends", {desired.sets[4].elements[0]});
  b.FlushSet(t, "service-ports");
  b.FlushChain(t, "prerouting");
  b.DeleteSet(t, "service-ports");
  b.DeleteTable(t);
  b.DeleteTable(t);  // fails: NOT_FOUND
  EXPECT_EQ(nft.Apply(b).code(), absl::StatusCode::kNotFound);
  auto after = nft.GetTable(t);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(*after, *before);
  EXPECT_TRUE(PlanTable(desired, *after).empty());
  // Reference counts were restored too: a referenced chain still cannot be deleted.
  EXPECT_EQ(nft.Apply(Batch().DeleteChain(t, "svc-web")).code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(FakeNftTest, TenThousandServicesStayFast) {
  FakeNft nft;
  TableRef t{Family::kIp, "big"};
  Batch b;
  b.AddTable(t);
  b.AddChain(t, {"pre", BaseChain{ChainType::kNat, Hook::kPrerouting, kPriorityDstNat}});
  Set m{"svc", {FieldType::kIpv4Addr, FieldType::kInetProto, FieldType::kInetService}, true, {}, {}};
  b.AddSet(t, m);
  std::vector<Element> elems;
  for (uint32_t i = 0; i < 10000; ++i) {
    std::string c = "svc-" + std::to_string(i);
    b.AddChain(t, {c, std::nullopt});
    b.AddRule(t, RuleBuilder(t.family, c).L4Proto(6).Dnat(*ParseAddr("10.0.0.2"), 80));
    elems.push_back({{Ipv4(0x0a640000u + i), Proto(6), Port(80)}, Goto(c), {}});
  }
  b.AddElements(t, "svc", elems);
  NFT_ASSERT_OK(nft.Apply(b));
  for (uint32_t i = 0; i < 1000; ++i) {
    NFT_ASSERT_OK(nft.Apply(Batch()
                                .DeleteElements(t, "svc", {elems[i]})
                                .FlushChain(t, "svc-" + std::to_string(i))
                                .DeleteChain(t, "svc-" + std::to_string(i))));
  }
  auto got = nft.GetTable(t);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->sets[0].elements.size(), 9000u);
  EXPECT_EQ(got->chains.size(), 9001u);
}

TEST(PlanTest, FromNothingThenConverged) {
  FakeNft nft;
  Table desired = testing::SampleTable("lb");
  Batch b = PlanTable(desired, std::nullopt);
  NFT_ASSERT_OK(nft.Apply(b));
  auto got = nft.GetTable({desired.family, desired.name});
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->chains, desired.chains);
  EXPECT_EQ(got->sets, desired.sets);
  EXPECT_TRUE(PlanTable(desired, *got).empty());
}

TEST(PlanTest, SyncTableConvergesAndRepairsHandEdits) {
  FakeNft nft;
  Table desired = testing::SampleTable("lb");
  auto n = SyncTable(nft, desired);
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_GT(*n, 0u);
  EXPECT_EQ(*SyncTable(nft, desired), 0u) << "converged";
  // Someone deletes an element and flushes a chain by hand: the next sync restores both.
  TableRef t{desired.family, desired.name};
  NFT_ASSERT_OK(nft.Apply(Batch()
                              .DeleteElements(t, "service-ips", {desired.sets[2].elements[0]})
                              .FlushChain(t, "postrouting")));
  EXPECT_EQ(*SyncTable(nft, desired), 3u) << "one element add, the chain's two rules re-added";
  EXPECT_EQ(*SyncTable(nft, desired), 0u);
  // A failed apply changes nothing; the next sync repairs.
  NFT_ASSERT_OK(nft.Apply(Batch().FlushChain(t, "postrouting")));
  nft.FailNextApply(absl::UnavailableError("x"));
  EXPECT_EQ(SyncTable(nft, desired).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(*SyncTable(nft, desired), 2u);
}

TEST(PlanTest, ElementChangesAreIncremental) {
  FakeNft nft;
  Table desired = testing::SampleTable("lb");
  NFT_ASSERT_OK(nft.Apply(PlanTable(desired, std::nullopt)));
  // Re-point one map element: one delete + one add, nothing else.
  Table next = desired;
  for (Set& s : next.sets) {
    if (s.name == "svc-web-backends") s.elements[1].verdict = Goto("ep-web-0");
  }
  auto got = nft.GetTable({desired.family, desired.name});
  Batch b = PlanTable(next, *got);
  ASSERT_EQ(b.size(), 2u);
  EXPECT_EQ(b.ops()[0].kind, OpKind::kDeleteElements);
  EXPECT_EQ(b.ops()[1].kind, OpKind::kAddElements);
  NFT_ASSERT_OK(nft.Apply(b));
  got = nft.GetTable({desired.family, desired.name});
  EXPECT_TRUE(PlanTable(next, *got).empty());
}

TEST(PlanTest, RemovingAServiceDeletesItsChainAfterReferences) {
  FakeNft nft;
  Table desired = testing::SampleTable("lb");
  NFT_ASSERT_OK(nft.Apply(PlanTable(desired, std::nullopt)));
  // Remove svc-web entirely: chains, backends map, elements pointing at it, rules.
  Table next = desired;
  std::erase_if(next.chains, [](const Chain& c) {
    return c.name == "svc-web" || c.name.rfind("ep-web", 0) == 0;
  });
  std::erase_if(next.sets, [](const Set& s) { return s.name == "svc-web-backends"; });
  for (Set& s : next.sets) {
    std::erase_if(s.elements, [](const Element& e) {
      return e.verdict && e.verdict->chain == "svc-web";
    });
  }
  std::erase_if(next.rules, [](const Rule& r) {
    return r.chain == "svc-web" || r.chain.rfind("ep-web", 0) == 0;
  });
  auto got = nft.GetTable({desired.family, desired.name});
  NFT_ASSERT_OK(nft.Apply(PlanTable(next, *got)));
  got = nft.GetTable({desired.family, desired.name});
  EXPECT_EQ(got->chains, next.chains);
  EXPECT_TRUE(PlanTable(next, *got).empty());
}

TEST(PlanTest, ReshapedSetAndRehookedChainAreRecreated) {
  FakeNft nft;
  Table desired = testing::SampleTable("lb");
  NFT_ASSERT_OK(nft.Apply(PlanTable(desired, std::nullopt)));
  Table next = desired;
  for (Set& s : next.sets) {
    if (s.name == "local-nets") {
      s.key = {FieldType::kIpv4Addr, FieldType::kInetService};
      s.elements = {{{Ipv4("10.0.0.1"), Port(1)}, std::nullopt, {}}};
    }
  }
  for (Rule& r : next.rules) {
    for (Expr& e : r.exprs) {
      if (auto* l = std::get_if<LookupExpr>(&e); l && l->set == "local-nets") l->set = "local-nets";
    }
  }
  for (Chain& c : next.chains) {
    if (c.name == "output") c.base->priority = -150;
  }
  // The rule using local-nets must now load the new key.
  std::erase_if(next.rules, [](const Rule& r) {
    return std::any_of(r.exprs.begin(), r.exprs.end(), [](const Expr& e) {
      auto* l = std::get_if<LookupExpr>(&e);
      return l && l->set == "local-nets";
    });
  });
  next.rules.push_back(RuleBuilder(next.family, "prerouting")
                           .InSet({Field::kDaddr4, Field::kDport}, "local-nets")
                           .Verdict(Accept()));
  auto got = nft.GetTable({desired.family, desired.name});
  NFT_ASSERT_OK(nft.Apply(PlanTable(next, *got)));
  got = nft.GetTable({desired.family, desired.name});
  EXPECT_TRUE(PlanTable(next, *got).empty());
}

TEST(PlanTest, RandomTransitionsConverge) {
  FakeNft nft;
  testing::CheckRandomTransitions(nft, 300);
}

TEST(RuleBuilderTest, ParsesAndRejectsAddresses) {
  EXPECT_TRUE(ParseAddr("10.0.0.1").ok());
  EXPECT_TRUE(ParseAddr("fd00::1")->v6);
  EXPECT_EQ(ParseAddr("10.0.0.256").status().code(), absl::StatusCode::kInvalidArgument);
  auto p = ParsePrefix("10.1.2.3/16");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(FormatDatum(FieldType::kIpv4Addr, p->addr.bytes), "10.1.0.0");
  EXPECT_EQ(p->len, 16);
  EXPECT_EQ(ParsePrefix("10.0.0.0/33").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParsePrefix("fd00::/129").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParsePrefix("fd00::/64")->len, 64);
  EXPECT_FALSE(ParseDatum(FieldType::kInetService, "70000").has_value());
  EXPECT_EQ(FormatDatum(FieldType::kInetService, *ParseDatum(FieldType::kInetService, "8080")),
            "8080");
  EXPECT_EQ(FormatDatum(FieldType::kInetProto, *ParseDatum(FieldType::kInetProto, "udp")), "udp");
}

TEST(RuleBuilderTest, InetAddressMatchesAddNfprotoAndMask) {
  Rule r = RuleBuilder(Family::kInet, "c").Saddr(*ParsePrefix("10.0.0.0/24")).Masquerade();
  ASSERT_EQ(r.exprs.size(), 6u);
  EXPECT_EQ(std::get<MetaExpr>(r.exprs[0]).key, MetaKey::kNfProto);
  EXPECT_EQ(std::get<BitwiseExpr>(r.exprs[3]).mask, std::string("\xff\xff\xff\x00", 4));
  Rule host = RuleBuilder(Family::kIp, "c").Daddr(*ParsePrefix("10.0.0.1")).Verdict(Drop());
  EXPECT_EQ(host.exprs.size(), 3u) << "a /32 needs no bitwise and an ip table no nfproto";
}

TEST(RuleBuilderTest, ConcatKeyUsesConsecutiveRegisters) {
  Rule r = RuleBuilder(Family::kIp, "c").Vmap({Field::kDaddr4, Field::kL4Proto, Field::kDport}, "m");
  ASSERT_EQ(r.exprs.size(), 4u);
  EXPECT_EQ(std::get<PayloadExpr>(r.exprs[0]).dreg, kReg1);
  EXPECT_EQ(std::get<MetaExpr>(r.exprs[1]).dreg, 9u);
  EXPECT_EQ(std::get<PayloadExpr>(r.exprs[2]).dreg, 10u);
  EXPECT_EQ(std::get<LookupExpr>(r.exprs[3]).dreg, kRegVerdict);
  EXPECT_NE(DebugString(r).find("@m"), std::string::npos);
}

TEST(RuleBuilderTest, DnatMapLayout) {
  RuleBuilder::Slot hash{RuleBuilder::Slot::kHash, 7, {Field::kSaddr4, Field::kSport}, 9};
  Rule r = RuleBuilder(Family::kIp, "c").DnatMap({Field::kDaddr4, Field::kL4Proto, Field::kDport},
                                                  hash, "m");
  // daddr->1, l4proto->9, dport->10, hash input saddr->12 (dumped as legacy reg 2),
  // sport->13, jhash(2, 8 bytes) -> 11.
  auto* h = std::get_if<HashExpr>(&r.exprs[5]);
  ASSERT_NE(h, nullptr) << DebugString(r);
  EXPECT_EQ(h->sreg, 2u);
  EXPECT_EQ(h->dreg, 11u);
  EXPECT_EQ(h->len, 8u);
  auto* l = std::get_if<LookupExpr>(&r.exprs[6]);
  ASSERT_NE(l, nullptr);
  EXPECT_EQ(l->dreg, kReg1);
  auto* n = std::get_if<NatExpr>(&r.exprs[7]);
  ASSERT_NE(n, nullptr);
  EXPECT_EQ(n->reg_proto, 9u);

  FakeNft nft;
  TableRef t{Family::kIp, "t"};
  Set vmap{"m", {FieldType::kIpv4Addr}, true, {}, {}};
  NFT_ASSERT_OK(nft.Apply(Batch().AddTable(t).AddSet(t, vmap).AddChain(
      t, {"c", BaseChain{ChainType::kNat, Hook::kPrerouting, kPriorityDstNat}})));
  EXPECT_EQ(nft.Apply(Batch().AddRule(t, r)).code(), absl::StatusCode::kInvalidArgument)
      << "a verdict map cannot feed dnat";
}

TEST(RuleBuilderDeathTest, MisuseIsAProgrammingError) {
  EXPECT_DEATH(RuleBuilder(Family::kIp, "c").Dport(80), "needs L4Proto");
  EXPECT_DEATH(RuleBuilder(Family::kIp, "c").Saddr(*ParsePrefix("fd00::/64")), "IPv6 match");
}

}  // namespace
}  // namespace shoal::kernel::nft
