// Unit tests for shoal::ipam: addresses, RangeSet, AddressPool (gateway, reserved, next-fit,
// exhaustion, IPv6 at scale), SubnetPools (default pools, overlap, exhaustion) and the Ipam
// facade with JSON round trips.
#include <random>
#include <set>

#include "gtest/gtest.h"
#include "ipam/ipam.h"
#include "nlohmann/json.hpp"

namespace shoal::ipam {
namespace {

IpAddr Ip(const char* s) { return *ParseIp(s); }
Prefix Pfx(const char* s) { return *ParsePrefix(s); }

TEST(AddressTest, ParseFormatAndErrors) {
  EXPECT_EQ(Ip("10.0.0.1").ToString(), "10.0.0.1");
  EXPECT_EQ(Ip("fd00::1").ToString(), "fd00::1");
  EXPECT_TRUE(Ip("fd00::1").v6);
  EXPECT_EQ(ParseIp("10.0.0.300", "gateway").status().message(),
            "gateway \"10.0.0.300\": not an IPv4 or IPv6 address");
  EXPECT_EQ(ParsePrefix("10.0.0.1/24").status().message(),
            "subnet \"10.0.0.1/24\" has host bits set; did you mean 10.0.0.0/24?");
  EXPECT_EQ(ParsePrefix("10.0.0.0/33").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParsePrefix("10.0.0.0").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Pfx("10.0.0.0/24").Size(), 256);
  EXPECT_EQ(Pfx("10.0.0.0/24").Last().ToString(), "10.0.0.255");
  EXPECT_EQ(Pfx("fd00::/64").Size(), absl::uint128(1) << 64);
  EXPECT_EQ(Pfx("::/0").Size(), absl::Uint128Max());
  EXPECT_TRUE(Pfx("10.0.0.0/8").Contains(Pfx("10.1.0.0/16")));
  EXPECT_FALSE(Pfx("10.1.0.0/16").Contains(Pfx("10.0.0.0/8")));
  EXPECT_TRUE(Pfx("10.1.0.0/16").Overlaps(Pfx("10.0.0.0/8")));
  EXPECT_FALSE(Pfx("10.1.0.0/16").Overlaps(Pfx("10.2.0.0/16")));
  EXPECT_FALSE(Pfx("10.0.0.0/8").Contains(Ip("::a00:1")));
}

TEST(RangeSetTest, MergesSplitsAndSearches) {
  RangeSet s;
  EXPECT_TRUE(s.Insert(5));
  EXPECT_FALSE(s.Insert(5));
  s.Insert(7);
  EXPECT_EQ(s.runs(), 2u);
  s.Insert(6);
  EXPECT_EQ(s.runs(), 1u) << "5,6,7 merge into one run";
  EXPECT_EQ(*s.FirstAbsent(5, 100), 8);
  EXPECT_EQ(*s.FirstAbsent(0, 100), 0);
  EXPECT_FALSE(s.FirstAbsent(5, 7).has_value());
  EXPECT_TRUE(s.Erase(6));
  EXPECT_FALSE(s.Erase(6));
  EXPECT_EQ(s.runs(), 2u);
  EXPECT_EQ(*s.FirstAbsent(5, 7), 6);
  s.InsertRange(0, 1000);
  EXPECT_EQ(s.runs(), 1u);
  EXPECT_EQ(s.size(), 1001);
  EXPECT_EQ(s.CountIn(10, 19), 10);
  s.Insert(absl::Uint128Max());
  EXPECT_TRUE(s.Contains(absl::Uint128Max()));
  EXPECT_EQ(s.size(), 1002);
}

// RangeSet against a std::set model under random operations (fixed seed: reproducible).
TEST(RangeSetTest, MatchesReferenceModel) {
  std::mt19937 rng(12345);
  RangeSet s;
  std::set<uint32_t> model;
  for (int step = 0; step < 20000; ++step) {
    uint32_t x = rng() % 300;
    switch (rng() % 4) {
      case 0:
        EXPECT_EQ(s.Insert(x), model.insert(x).second);
        break;
      case 1:
        EXPECT_EQ(s.Erase(x), model.erase(x) == 1);
        break;
      case 2: {
        uint32_t hi = x + rng() % 20;
        s.InsertRange(x, hi);
        for (uint32_t v = x; v <= hi; ++v) model.insert(v);
        break;
      }
      default: {
        uint32_t hi = x + rng() % 50;
        std::optional<uint32_t> want;
        for (uint32_t v = x; v <= hi; ++v) {
          if (!model.count(v)) {
            want = v;
            break;
          }
        }
        auto got = s.FirstAbsent(x, hi);
        ASSERT_EQ(got.has_value(), want.has_value()) << step;
        if (want) {
          EXPECT_EQ(*got, *want);
        }
        uint32_t n = 0;
        for (uint32_t v = x; v <= hi; ++v) n += model.count(v);
        EXPECT_EQ(s.CountIn(x, hi), n);
      }
    }
    ASSERT_EQ(s.size(), model.size()) << step;
  }
  // Runs are maximal: no two runs touch.
  auto runs = s.Runs();
  for (size_t i = 1; i < runs.size(); ++i) EXPECT_GT(runs[i].first, runs[i - 1].second + 1);
}

// Random allocate/release against a model: never hands out a reserved, gateway, network,
// broadcast or in-use address, and exhausts exactly when the model says the range is full.
TEST(AddressPoolTest, RandomOperationsMatchModel) {
  std::mt19937 rng(7);
  SubnetSpec spec{Pfx("10.9.0.0/26"), Pfx("10.9.0.16/28"), std::nullopt, false,
                  {Ip("10.9.0.20"), Ip("10.9.0.40")}};
  auto p = AddressPool::Create(spec);
  ASSERT_TRUE(p.ok());
  std::set<std::string> in_use;
  for (int step = 0; step < 5000; ++step) {
    if (rng() % 3 != 0) {
      auto a = p->Allocate();
      // Range .16-.31 minus reserved .20 = 15 dynamic addresses.
      size_t dynamic_in_use = 0;
      for (const auto& x : in_use) {
        int last = std::stoi(x.substr(x.rfind('.') + 1));
        dynamic_in_use += last >= 16 && last <= 31;
      }
      if (dynamic_in_use == 15) {
        EXPECT_EQ(a.status().code(), absl::StatusCode::kResourceExhausted);
        continue;
      }
      ASSERT_TRUE(a.ok()) << step;
      std::string s = a->ToString();
      EXPECT_TRUE(in_use.insert(s).second) << "handed out twice: " << s;
      EXPECT_NE(s, "10.9.0.20");
      EXPECT_NE(s, "10.9.0.1");
      EXPECT_TRUE(Pfx("10.9.0.16/28").Contains(*a));
    } else if (!in_use.empty()) {
      auto it = in_use.begin();
      std::advance(it, rng() % in_use.size());
      ASSERT_TRUE(p->Release(Ip(it->c_str())).ok());
      in_use.erase(it);
    }
    ASSERT_EQ(p->InUse(), in_use.size());
  }
}

TEST(AddressPoolTest, GatewayFirstNetworkAndBroadcastReserved) {
  auto p = AddressPool::Create({Pfx("10.0.0.0/24")});
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->gateway()->ToString(), "10.0.0.1");
  EXPECT_EQ(p->Allocate()->ToString(), "10.0.0.2");
  EXPECT_EQ(p->FreeInRange(), 252);
  EXPECT_EQ(p->AllocateSpecific(Ip("10.0.0.0")).message(),
            "address 10.0.0.0 is the network address of 10.0.0.0/24");
  EXPECT_EQ(p->AllocateSpecific(Ip("10.0.0.255")).message(),
            "address 10.0.0.255 is the broadcast address of 10.0.0.0/24");
  EXPECT_EQ(p->AllocateSpecific(Ip("10.0.0.1")).code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(p->AllocateSpecific(Ip("10.0.1.1")).message(),
            "address 10.0.1.1 is outside subnet 10.0.0.0/24");
  EXPECT_EQ(p->Release(Ip("10.0.0.1")).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(p->Release(Ip("10.0.0.9")).code(), absl::StatusCode::kNotFound);
}

TEST(AddressPoolTest, ExhaustsA24After253AddressesThenNextFitReuse) {
  auto p = AddressPool::Create({Pfx("10.0.0.0/24")});
  ASSERT_TRUE(p.ok());
  std::set<std::string> seen;
  for (int i = 0; i < 253; ++i) {
    auto a = p->Allocate();
    ASSERT_TRUE(a.ok()) << i << ": " << a.status();
    EXPECT_EQ(a->ToString(), "10.0.0." + std::to_string(i + 2)) << "serial order";
    seen.insert(a->ToString());
  }
  EXPECT_EQ(seen.size(), 253u);
  auto full = p->Allocate();
  EXPECT_EQ(full.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(full.status().message(),
            "no free address in subnet 10.0.0.0/24 (10.0.0.1 - 10.0.0.254 all in use)");
  // Free two; next-fit wraps and returns the lower one first, then the other.
  ASSERT_TRUE(p->Release(Ip("10.0.0.50")).ok());
  ASSERT_TRUE(p->Release(Ip("10.0.0.10")).ok());
  EXPECT_EQ(p->Allocate()->ToString(), "10.0.0.10");
  EXPECT_EQ(p->Allocate()->ToString(), "10.0.0.50");
  EXPECT_FALSE(p->Allocate().ok());
}

TEST(AddressPoolTest, NextFitDelaysReuseOfFreedAddress) {
  auto p = AddressPool::Create({Pfx("10.0.0.0/24")});
  auto a = *p->Allocate();  // .2
  auto b = *p->Allocate();  // .3
  ASSERT_TRUE(p->Release(a).ok());
  EXPECT_EQ(p->Allocate()->ToString(), "10.0.0.4") << "the freed .2 is not reused yet";
  ASSERT_TRUE(p->Release(b).ok());
  EXPECT_EQ(p->Allocate()->ToString(), "10.0.0.5");
}

TEST(AddressPoolTest, RangeGatewayAndReserved) {
  SubnetSpec spec{Pfx("192.168.50.0/24"), Pfx("192.168.50.128/30"), Ip("192.168.50.254"), false,
                  {Ip("192.168.50.129")}};
  auto p = AddressPool::Create(spec);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->gateway()->ToString(), "192.168.50.254");
  EXPECT_EQ(p->Allocate()->ToString(), "192.168.50.128");
  EXPECT_EQ(p->Allocate()->ToString(), "192.168.50.130") << ".129 is reserved";
  EXPECT_EQ(p->Allocate()->ToString(), "192.168.50.131");
  EXPECT_EQ(p->Allocate().status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(p->AllocateSpecific(Ip("192.168.50.10")).ok()) << "static address outside range";
  EXPECT_EQ(p->AllocateSpecific(Ip("192.168.50.129")).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(p->InUse(), 4);
}

TEST(AddressPoolTest, BadSpecsNameTheField) {
  EXPECT_EQ(AddressPool::Create({Pfx("10.0.0.0/24"), Pfx("10.0.1.0/25")}).status().message(),
            "ip_range 10.0.1.0/25 is outside subnet 10.0.0.0/24");
  EXPECT_EQ(AddressPool::Create({Pfx("10.0.0.0/24"), std::nullopt, Ip("10.0.1.1")})
                .status().message(),
            "gateway 10.0.1.1 is outside subnet 10.0.0.0/24");
  EXPECT_EQ(AddressPool::Create({Pfx("10.0.0.0/24"), std::nullopt, Ip("10.0.0.255")})
                .status().message(),
            "gateway 10.0.0.255 is the broadcast address of subnet 10.0.0.0/24");
  EXPECT_EQ(AddressPool::Create({Pfx("10.0.0.0/24"), std::nullopt, Ip("10.0.0.0")})
                .status().message(),
            "gateway 10.0.0.0 is the network address of subnet 10.0.0.0/24");
  EXPECT_EQ(AddressPool::Create({Pfx("10.0.0.0/24"), std::nullopt, std::nullopt, false,
                                 {Ip("10.9.9.9")}})
                .status().message(),
            "reserved address 10.9.9.9 is outside subnet 10.0.0.0/24");
  EXPECT_EQ(AddressPool::Create({Pfx("10.0.0.0/24"), Pfx("fd00::/64")}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(AddressPoolTest, PointToPointAndHostPrefixesAreExempt) {
  auto p31 = AddressPool::Create({Pfx("10.0.0.0/31"), std::nullopt, std::nullopt, true});
  ASSERT_TRUE(p31.ok());
  EXPECT_EQ(p31->Allocate()->ToString(), "10.0.0.0");
  EXPECT_EQ(p31->Allocate()->ToString(), "10.0.0.1");
  EXPECT_FALSE(p31->Allocate().ok());
  auto p32 = AddressPool::Create({Pfx("10.0.0.7/32"), std::nullopt, std::nullopt, true});
  EXPECT_EQ(p32->Allocate()->ToString(), "10.0.0.7");
  auto p30 = AddressPool::Create({Pfx("10.0.0.4/30")});
  EXPECT_EQ(p30->gateway()->ToString(), "10.0.0.5");
  EXPECT_EQ(p30->Allocate()->ToString(), "10.0.0.6");
  EXPECT_EQ(p30->Allocate().status().code(), absl::StatusCode::kResourceExhausted);
}

TEST(AddressPoolTest, Ipv6HugeSubnetStaysSmall) {
  auto p = AddressPool::Create({Pfx("fd00:1::/64")});
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->gateway()->ToString(), "fd00:1::1");
  for (int i = 0; i < 10000; ++i) ASSERT_TRUE(p->Allocate().ok());
  EXPECT_EQ(p->InUse(), 10000);
  EXPECT_EQ(p->FreeInRange(), (absl::uint128(1) << 64) - 1 - 1 - 10000);
  // Far-away static addresses and a /16 range with no bitmap behind it.
  ASSERT_TRUE(p->AllocateSpecific(Ip("fd00:1::ffff:ffff:ffff:ffff")).ok());
  EXPECT_EQ(p->AllocateSpecific(Ip("fd00:1::")).code(), absl::StatusCode::kInvalidArgument)
      << "subnet-router anycast";
  auto big = AddressPool::Create({Pfx("fd00::/16")});
  ASSERT_TRUE(big.ok());
  EXPECT_EQ(big->Allocate()->ToString(), "fd00::2");
  nlohmann::json j = p->ToJson();
  EXPECT_LE(j["allocated"].size(), 3u) << "runs, not addresses: " << j.dump();
  auto back = AddressPool::FromJson(j);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_TRUE(*back == *p);
  EXPECT_EQ(back->Allocate()->ToString(), p->Allocate()->ToString()) << "cursor survives";
}

TEST(SubnetPoolsTest, DefaultGlobalPoolIs10Slash8In24s) {
  auto pools = SubnetPools::Create(DefaultGlobalPools());
  ASSERT_TRUE(pools.ok());
  EXPECT_EQ(pools->Allocate(Scope::kGlobal, false)->ToString(), "10.0.0.0/24");
  EXPECT_EQ(pools->Allocate(Scope::kGlobal, false)->ToString(), "10.0.1.0/24");
  ASSERT_TRUE(pools->Release(Pfx("10.0.0.0/24")).ok());
  EXPECT_EQ(pools->Allocate(Scope::kGlobal, false)->ToString(), "10.0.2.0/24") << "next-fit";
  EXPECT_EQ(pools->Allocate(Scope::kGlobal, true).status().code(),
            absl::StatusCode::kResourceExhausted)
      << "no default IPv6 pool";
  EXPECT_EQ(pools->Allocate(Scope::kLocal, false).status().code(),
            absl::StatusCode::kResourceExhausted);
}

TEST(SubnetPoolsTest, SkipsUserSubnetsAndExcludedPrefixes) {
  auto pools = SubnetPools::Create({{Scope::kGlobal, Pfx("10.0.0.0/16"), 24}});
  ASSERT_TRUE(pools->Reserve(Pfx("10.0.0.0/22")).ok());
  pools->Exclude(Pfx("10.0.4.0/23"));
  pools->Exclude(Pfx("10.0.6.128/25"));
  EXPECT_EQ(pools->Allocate(Scope::kGlobal, false)->ToString(), "10.0.7.0/24");
  EXPECT_EQ(pools->Reserve(Pfx("10.0.7.128/25")).message(),
            "subnet 10.0.7.128/25 overlaps subnet 10.0.7.0/24 already in use");
  EXPECT_EQ(pools->Reserve(Pfx("10.0.0.0/8")).code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(pools->Release(Pfx("10.0.9.0/24")).code(), absl::StatusCode::kNotFound);
}

TEST(SubnetPoolsTest, ExhaustsThePoolAndWrapsAfterRelease) {
  auto pools = SubnetPools::Create({{Scope::kGlobal, Pfx("10.1.0.0/20"), 24}});
  for (int i = 0; i < 16; ++i) {
    auto p = pools->Allocate(Scope::kGlobal, false);
    ASSERT_TRUE(p.ok()) << i;
    EXPECT_EQ(p->ToString(), "10.1." + std::to_string(i) + ".0/24");
  }
  auto full = pools->Allocate(Scope::kGlobal, false);
  EXPECT_EQ(full.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(full.status().message(),
            "global address pools exhausted: every subnet of 10.1.0.0/20 in /24 is in use or "
            "excluded");
  ASSERT_TRUE(pools->Release(Pfx("10.1.3.0/24")).ok());
  EXPECT_EQ(pools->Allocate(Scope::kGlobal, false)->ToString(), "10.1.3.0/24");
}

TEST(SubnetPoolsTest, WholeDefaultPoolExhaustsAt65536Subnets) {
  auto pools = SubnetPools::Create(DefaultGlobalPools());
  for (int i = 0; i < 65536; ++i) ASSERT_TRUE(pools->Allocate(Scope::kGlobal, false).ok()) << i;
  EXPECT_EQ(pools->Allocate(Scope::kGlobal, false).status().code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(pools->in_use(), 65536u);
}

TEST(SubnetPoolsTest, LocalPoolsAndConfigurableSize) {
  auto pools = SubnetPools::Create(DefaultLocalPools());
  EXPECT_EQ(pools->Allocate(Scope::kLocal, false)->ToString(), "172.17.0.0/16");
  EXPECT_EQ(pools->Allocate(Scope::kLocal, false)->ToString(), "172.18.0.0/16");
  EXPECT_EQ(SubnetPools::Create({{Scope::kGlobal, Pfx("10.0.0.0/16"), 8}}).status().message(),
            "address pool 10.0.0.0/16: subnet size /8 must be between /16 and /32");
  auto v6 = SubnetPools::Create({{Scope::kGlobal, Pfx("fd00::/48"), 64}});
  EXPECT_EQ(v6->Allocate(Scope::kGlobal, true)->ToString(), "fd00::/64");
  EXPECT_EQ(v6->Allocate(Scope::kGlobal, true)->ToString(), "fd00:0:0:1::/64");
}

TEST(IpamTest, EndToEndWithJsonRoundTrip) {
  auto ipam = Ipam::Create();
  ASSERT_TRUE(ipam.ok());
  Prefix net = *ipam->AddSubnet({});
  EXPECT_EQ(net.ToString(), "10.0.0.0/24");
  EXPECT_EQ(ipam->Allocate(net)->ToString(), "10.0.0.2");
  Prefix user = *ipam->AddSubnet({.scope = Scope::kLocal, .subnet = Pfx("192.168.50.0/24"),
                                  .range = Pfx("192.168.50.128/25")});
  EXPECT_EQ(ipam->Allocate(user)->ToString(), "192.168.50.128");
  EXPECT_EQ(ipam->Allocate(user, Ip("192.168.50.7"))->ToString(), "192.168.50.7");
  Prefix v6 = *ipam->AddSubnet({.subnet = Pfx("fd00:dead::/64")});
  EXPECT_EQ(ipam->Allocate(v6)->ToString(), "fd00:dead::2");
  ipam->Exclude(Pfx("10.0.1.0/24"));
  EXPECT_EQ(ipam->AddSubnet({})->ToString(), "10.0.2.0/24");

  // Errors change nothing.
  EXPECT_EQ(ipam->AddSubnet({.subnet = Pfx("10.0.0.128/25")}).status().message(),
            "subnet 10.0.0.128/25 overlaps subnet 10.0.0.0/24 already in use");
  EXPECT_EQ(ipam->AddSubnet({.subnet = Pfx("10.5.0.0/24"), .gateway = Ip("10.6.0.1")})
                .status().message(),
            "gateway 10.6.0.1 is outside subnet 10.5.0.0/24");
  EXPECT_EQ(ipam->Find(Pfx("10.5.0.0/24")), nullptr) << "failed request left nothing";
  EXPECT_TRUE(ipam->AddSubnet({.subnet = Pfx("10.5.0.0/24")}).ok());
  EXPECT_EQ(ipam->AddSubnet({.gateway = Ip("10.0.0.1")}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ipam->Allocate(Pfx("10.9.0.0/24")).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(ipam->RemoveSubnet(net).code(), absl::StatusCode::kFailedPrecondition);

  std::string text = ipam->ToJson().dump();
  auto back = Ipam::FromJson(nlohmann::json::parse(text));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_TRUE(*back == *ipam);
  EXPECT_EQ(back->ToJson(), ipam->ToJson());
  // The restored state continues exactly where the original would.
  EXPECT_EQ(back->Allocate(net)->ToString(), ipam->Allocate(net)->ToString());
  EXPECT_EQ(back->AddSubnet({})->ToString(), ipam->AddSubnet({})->ToString());

  ASSERT_TRUE(ipam->Release(net, Ip("10.0.0.2")).ok());
  ASSERT_TRUE(ipam->Release(net, Ip("10.0.0.3")).ok());
  EXPECT_TRUE(ipam->RemoveSubnet(net).ok());
  EXPECT_EQ(ipam->Find(net), nullptr);
  EXPECT_EQ(ipam->AddSubnet({.subnet = Pfx("10.0.0.0/24")})->ToString(), "10.0.0.0/24")
      << "a removed subnet can be claimed again";
}

TEST(IpamTest, RejectsCorruptState) {
  EXPECT_EQ(Ipam::FromJson(nlohmann::json::object()).status().code(),
            absl::StatusCode::kInvalidArgument);
  auto ipam = Ipam::Create();
  ASSERT_TRUE(ipam->AddSubnet({}).ok());
  nlohmann::json j = ipam->ToJson();
  j["subnets"][0]["allocated"] = {{"10.9.0.1", "10.9.0.2"}};
  EXPECT_EQ(Ipam::FromJson(j).status().code(), absl::StatusCode::kInvalidArgument);
  j = ipam->ToJson();
  j["pools"]["in_use"] = nlohmann::json::array();
  EXPECT_EQ(Ipam::FromJson(j).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace shoal::ipam
