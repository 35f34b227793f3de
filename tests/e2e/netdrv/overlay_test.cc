// Overlay networks across three lab hosts, observed the way a user would: ping, TCP, DF-bit
// pings, `bridge fdb` / `ip neigh` inside the sandbox. Root only; nothing is left behind.
#include <chrono>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/e2e/netdrv/overlay_lab.h"
#include "tests/lab/process.h"
#include "tests/testing/priv.h"

namespace shoal::netdrv::testing {
namespace {

constexpr uint32_t kUnderlayMtu = 1400;  // not 1500: the overlay MTU must follow the underlay

class OverlayE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SHOAL_REQUIRE_ROOT();
    auto o = OverlayLab::Create("sn-ov-", 3, kUnderlayMtu);
    ASSERT_TRUE(o.ok()) << o.status();
    o_ = std::move(*o);
    NetworkSpec a;
    a.id = "neta00000001";
    a.vni = 4097;
    a.subnet = *kernel::IpPrefix::Parse("10.10.1.0/24");
    a.gateway = *kernel::IpAddr::Parse("10.10.1.1");
    for (int h = 0; h < 3; ++h) ASSERT_TRUE(o_->driver(h).CreateNetwork(a).ok());
    for (int h = 0; h < 3; ++h) {
      auto ep = o_->AddContainer(h, absl::StrCat("c", h + 1), a.id,
                                 absl::StrCat("10.10.1.1", h + 1, "/24"));
      ASSERT_TRUE(ep.ok()) << ep.status();
    }
    ASSERT_TRUE(o_->SyncPeers(a.id).ok());
  }
  void TearDown() override { o_.reset(); }

  bool Ping(const std::string& from, const std::string& to, const std::string& extra = "") {
    auto r = o_->RunIn(from, absl::StrCat("ping -c1 -W2 ", extra, " ", to));
    return r.ok() && r->exit_code == 0;
  }
  // A new veth becomes a forwarding bridge port only after the kernel's linkwatch delivers its
  // carrier change (asynchronous, up to ~1 s): right after attaching, poll with a deadline.
  bool PingSoon(const std::string& from, const std::string& to) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (std::chrono::steady_clock::now() < deadline) {
      if (Ping(from, to)) return true;
    }
    return false;
  }
  std::string Sandbox(int host, const std::string& cmd) {
    auto r = o_->RunInSandbox(host, "neta00000001", cmd);
    return r.ok() ? r->output : r.status().ToString();
  }

  std::unique_ptr<OverlayLab> o_;
};

TEST_F(OverlayE2eTest, ContainersOnDifferentHostsPingAndTalkTcp) {
  EXPECT_TRUE(PingSoon("c1", "10.10.1.12"));
  EXPECT_TRUE(PingSoon("c1", "10.10.1.13"));
  EXPECT_TRUE(PingSoon("c3", "10.10.1.12"));
  auto server =
      lab::Spawn(o_->ContainerFd("c2"), "busybox nc -ll -p 5000 -e /bin/echo hello-from-c2");
  ASSERT_TRUE(server.ok());
  std::string got;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    auto r = o_->RunIn("c1", "busybox nc -w 2 10.10.1.12 5000 </dev/null");
    if (r.ok() && r->output.find("hello-from-c2") != std::string::npos) {
      got = r->output;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // server not listening yet
  }
  EXPECT_NE(got.find("hello-from-c2"), std::string::npos);
}

TEST_F(OverlayE2eTest, VxlanDeviceIsDeterministicLearningOffProxyOnVtepPinned) {
  std::string d = Sandbox(0, "ip -d link show vxlan0");
  EXPECT_NE(d.find("vxlan id 4097"), std::string::npos) << d;
  EXPECT_NE(d.find("local 192.168.77.1"), std::string::npos) << d;
  EXPECT_NE(d.find("dstport 4789"), std::string::npos) << d;
  EXPECT_NE(d.find("nolearning"), std::string::npos) << d;
  EXPECT_NE(d.find("proxy"), std::string::npos) << d;
  EXPECT_NE(d.find("master br0"), std::string::npos) << d;
  EXPECT_NE(d.find("mtu 1350"), std::string::npos) << d;
  // Only remote endpoints are programmed: c1 (local to host 1) has no FDB row there.
  std::string fdb = Sandbox(0, "bridge fdb show dev vxlan0");
  EXPECT_NE(fdb.find("dst 192.168.77.2"), std::string::npos) << fdb;
  EXPECT_NE(fdb.find("dst 192.168.77.3"), std::string::npos) << fdb;
  EXPECT_EQ(fdb.find("dst 192.168.77.1"), std::string::npos) << fdb;
  std::string neigh = Sandbox(0, "ip neigh show dev vxlan0");
  EXPECT_NE(neigh.find("10.10.1.12"), std::string::npos) << neigh;
  EXPECT_NE(neigh.find("PERMANENT"), std::string::npos) << neigh;
  EXPECT_EQ(neigh.find("10.10.1.11"), std::string::npos) << neigh;
}

TEST_F(OverlayE2eTest, TwoOverlaysWithTheSameSubnetAreIsolated) {
  NetworkSpec b;
  b.id = "netb00000002";
  b.vni = 4098;
  b.subnet = *kernel::IpPrefix::Parse("10.10.1.0/24");
  b.gateway = *kernel::IpAddr::Parse("10.10.1.1");
  for (int h = 0; h < 2; ++h) ASSERT_TRUE(o_->driver(h).CreateNetwork(b).ok());
  ASSERT_TRUE(o_->AddContainer(0, "d1", b.id, "10.10.1.21/24").ok());
  ASSERT_TRUE(o_->AddContainer(1, "d2", b.id, "10.10.1.22/24").ok());
  ASSERT_TRUE(o_->SyncPeers(b.id).ok());
  EXPECT_TRUE(PingSoon("d1", "10.10.1.22"));
  EXPECT_FALSE(Ping("c1", "10.10.1.22"));  // same subnet, other VNI
  EXPECT_FALSE(Ping("d1", "10.10.1.12"));
  EXPECT_TRUE(Ping("c1", "10.10.1.12"));
}

TEST_F(OverlayE2eTest, RemovingAPeerRemovesItsRowsAndTrafficStops) {
  ASSERT_TRUE(PingSoon("c1", "10.10.1.12"));
  std::string mac = o_->PeersOf("neta00000001")[1].mac.ToString();  // c2-ep (sorted by id)
  ASSERT_NE(Sandbox(0, "bridge fdb show dev vxlan0").find(mac), std::string::npos);
  o_->ForgetPeer("neta00000001", "c2-ep");
  ASSERT_TRUE(o_->SyncPeers("neta00000001").ok());
  std::string fdb = Sandbox(0, "bridge fdb show dev vxlan0");
  EXPECT_EQ(fdb.find(mac), std::string::npos) << mac << "\n" << fdb;
  std::string neigh = Sandbox(0, "ip neigh show dev vxlan0");
  EXPECT_EQ(neigh.find("10.10.1.12 "), std::string::npos) << neigh;
  o_->RunIn("c1", "ip neigh flush all").IgnoreError();
  EXPECT_FALSE(Ping("c1", "10.10.1.12"));
  EXPECT_TRUE(Ping("c1", "10.10.1.13"));
}

TEST_F(OverlayE2eTest, AnFdbRowDeletedByHandIsRestoredByReconciliation) {
  ASSERT_TRUE(PingSoon("c1", "10.10.1.12"));
  std::string mac = o_->PeersOf("neta00000001")[1].mac.ToString();
  auto del =
      o_->RunInSandbox(0, "neta00000001", "bridge fdb del " + mac + " dev vxlan0 dst 192.168.77.2");
  ASSERT_TRUE(del.ok() && del->exit_code == 0) << (del.ok() ? del->output : "");
  // The bridge's own learned row (master br0) may remain; the vxlan row (dst VTEP) is gone.
  ASSERT_EQ(Sandbox(0, "bridge fdb show dev vxlan0").find(mac + " dst"), std::string::npos);
  EXPECT_FALSE(Ping("c1", "10.10.1.12"));  // learning is off: nothing masks the missing row
  ASSERT_TRUE(o_->driver(0).Reconcile().ok());
  EXPECT_NE(Sandbox(0, "bridge fdb show dev vxlan0").find(mac + " dst 192.168.77.2"),
            std::string::npos);
  EXPECT_TRUE(Ping("c1", "10.10.1.12"));
}

TEST_F(OverlayE2eTest, LargestPacketFittingTheDerivedMtuPassesWithDfAndOneMoreByteDoesNot) {
  auto mtu = o_->driver(0).NetworkMtu("neta00000001");
  ASSERT_TRUE(mtu.ok());
  EXPECT_EQ(*mtu, kUnderlayMtu - 50);
  int payload = static_cast<int>(*mtu) - 28;  // IPv4 20 + ICMP 8
  ASSERT_TRUE(PingSoon("c1", "10.10.1.12"));
  EXPECT_TRUE(Ping("c1", "10.10.1.12", absl::StrCat("-M do -s ", payload)));
  EXPECT_FALSE(Ping("c1", "10.10.1.12", absl::StrCat("-M do -s ", payload + 1)));
}

TEST_F(OverlayE2eTest, RestartAdoptsKnownSandboxesAndPurgesUnknownOnes) {
  NetworkSpec stale;
  stale.id = "stale0000003";
  stale.vni = 4099;
  stale.subnet = *kernel::IpPrefix::Parse("10.10.3.0/24");
  stale.gateway = *kernel::IpAddr::Parse("10.10.3.1");
  ASSERT_TRUE(o_->driver(0).CreateNetwork(stale).ok());
  // A "restarted" driver on host 1 that only knows neta with endpoint c1-ep.
  kernel::LibnlNetlinkFactory f;
  base::SystemRandom rnd;
  OverlayConfig c;
  c.node_netns_fd = o_->lab().host(0).netns.get();
  c.vtep = o_->lab().host(0).ip;
  auto fresh = OverlayDriver::Create(c, f, o_->sandboxes(0), rnd);
  ASSERT_TRUE(fresh.ok());
  NetworkSpec a;
  a.id = "neta00000001";
  a.vni = 4097;
  a.subnet = *kernel::IpPrefix::Parse("10.10.1.0/24");
  a.gateway = *kernel::IpAddr::Parse("10.10.1.1");
  ASSERT_TRUE((*fresh)->Restore({a}, {{a.id, {"c1-ep"}}}).ok());
  auto names = o_->sandboxes(0).List();
  ASSERT_TRUE(names.ok());
  EXPECT_EQ(*names, std::vector<std::string>{"ov-neta00000001"});
  ASSERT_TRUE((*fresh)->SetPeers(a.id, o_->PeersOf(a.id)).ok());
  EXPECT_TRUE(PingSoon("c1", "10.10.1.13"));
}

}  // namespace
}  // namespace shoal::netdrv::testing
