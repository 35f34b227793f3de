#include "netdrv/peer_plan.h"

#include "gtest/gtest.h"

namespace shoal::netdrv {
namespace {

using kernel::IpAddr;
using kernel::MacAddr;
using kernel::Neighbor;
using kernel::NeighFamily;

constexpr int kVx = 7;
IpAddr Ip(const char* s) { return *IpAddr::Parse(s); }
MacAddr Mac(const char* s) { return *MacAddr::Parse(s); }
Peer P(const char* id, const char* ip, const char* mac, const char* vtep) {
  return Peer{id, Ip(ip), Mac(mac), Ip(vtep)};
}
Neighbor Fdb(const char* mac, const char* vtep) {
  return {NeighFamily::kFdb, kVx, Ip(vtep), Mac(mac), true, true, false};
}
Neighbor Arp(const char* ip, const char* mac) {
  return {NeighFamily::kArp, kVx, Ip(ip), Mac(mac), true, false, false};
}
const IpAddr kLocal = *IpAddr::Parse("192.168.0.1");

TEST(PlanPeersTest, EmptyKernelGetsOneFdbAndOneArpRowPerRemotePeer) {
  auto ops = PlanPeers({P("a", "10.0.0.2", "02:00:00:00:00:02", "192.168.0.2"),
                        P("b", "10.0.0.3", "02:00:00:00:00:03", "192.168.0.1")},  // local
                       kLocal, kVx, {}, {});
  ASSERT_EQ(ops.set.size(), 2u);
  EXPECT_TRUE(ops.remove.empty());
  EXPECT_EQ(ops.set[0], Fdb("02:00:00:00:00:02", "192.168.0.2"));
  EXPECT_EQ(ops.set[1], Arp("10.0.0.2", "02:00:00:00:00:02"));
}

TEST(PlanPeersTest, ConvergedStateNeedsNothing) {
  std::vector<Peer> want = {P("a", "10.0.0.2", "02:00:00:00:00:02", "192.168.0.2")};
  auto ops = PlanPeers(want, kLocal, kVx, {Fdb("02:00:00:00:00:02", "192.168.0.2")},
                       {Arp("10.0.0.2", "02:00:00:00:00:02")});
  EXPECT_TRUE(ops.empty());
}

TEST(PlanPeersTest, StaleRowsGoAndWrongVtepIsReplaced) {
  std::vector<Peer> want = {P("a", "10.0.0.2", "02:00:00:00:00:02", "192.168.0.3")};
  Neighbor learned{NeighFamily::kFdb, kVx, {}, Mac("02:00:00:00:00:09"), false, false, true};
  Neighbor learned_wanted{NeighFamily::kFdb, kVx, {}, Mac("02:00:00:00:00:02"), false, false, true};
  auto ops =
      PlanPeers(want, kLocal, kVx,
                {Fdb("02:00:00:00:00:02", "192.168.0.2"),  // moved node
                 Fdb("02:00:00:00:00:09", "192.168.0.4"),  // gone
                 learned, learned_wanted},
                {Arp("10.0.0.2", "02:00:00:00:00:02"), Arp("10.0.0.9", "02:00:00:00:00:09")});
  ASSERT_EQ(ops.set.size(), 1u);
  EXPECT_EQ(ops.set[0], Fdb("02:00:00:00:00:02", "192.168.0.3"));
  ASSERT_EQ(ops.remove.size(), 3u);
  EXPECT_EQ(ops.remove[0], Fdb("02:00:00:00:00:09", "192.168.0.4"));
  EXPECT_EQ(ops.remove[1], learned);
  EXPECT_EQ(ops.remove[2], Arp("10.0.0.9", "02:00:00:00:00:09"));
}

TEST(PlanPeersTest, DuplicateIpOrMacPicksTheSmallestEndpointIdDeterministically) {
  // A task moving nodes: the new record may arrive before the old one is deleted.
  std::vector<Peer> want = {P("z-new", "10.0.0.2", "02:00:00:00:00:0b", "192.168.0.3"),
                            P("a-old", "10.0.0.2", "02:00:00:00:00:0a", "192.168.0.2")};
  auto ops = PlanPeers(want, kLocal, kVx, {}, {});
  std::vector<Neighbor> arps;
  for (const auto& n : ops.set)
    if (n.family == NeighFamily::kArp) arps.push_back(n);
  ASSERT_EQ(arps.size(), 1u);
  EXPECT_EQ(arps[0], Arp("10.0.0.2", "02:00:00:00:00:0a"));
  std::reverse(want.begin(), want.end());
  auto again = PlanPeers(want, kLocal, kVx, {}, {});
  EXPECT_EQ(again.set, ops.set);
}

TEST(ValidatePeersTest, NamesThePeerAndTheField) {
  EXPECT_TRUE(ValidatePeers({P("a", "10.0.0.2", "02:00:00:00:00:02", "192.168.0.2")},
                            *kernel::IpPrefix::Parse("10.0.0.0/24"))
                  .ok());
  auto bad_subnet = ValidatePeers({P("a", "10.0.1.2", "02:00:00:00:00:02", "192.168.0.2")},
                                  *kernel::IpPrefix::Parse("10.0.0.0/24"));
  EXPECT_EQ(bad_subnet.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad_subnet.message().find("peer a"), absl::string_view::npos);
  auto multicast = ValidatePeers({P("b", "10.0.0.2", "01:00:5e:00:00:01", "192.168.0.2")}, {});
  EXPECT_NE(multicast.message().find("not unicast"), absl::string_view::npos);
  Peer no_vtep = P("c", "10.0.0.2", "02:00:00:00:00:02", "192.168.0.2");
  no_vtep.vtep = {};
  EXPECT_FALSE(ValidatePeers({no_vtep}, {}).ok());
}

}  // namespace
}  // namespace shoal::netdrv
