// Overlay networks across three lab hosts with REAL containers as endpoints (runtime containers,
// each with its own network namespace; see tests/lab/containers.h). Everything a user would
// check runs inside the containers with their busybox tools: ping, HTTP (httpd + wget), DF-bit
// pings (shoal-dfping); the driver's rows are observed with `bridge fdb` / `ip neigh` in the
// sandbox. Root only; nothing is left behind.
#include <chrono>
#include <mutex>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "netdrv/reconcile_loop.h"
#include "tests/e2e/netdrv/overlay_lab.h"
#include "tests/lab/process.h"
#include "tests/testing/priv.h"

namespace shoal::netdrv::testing {
namespace {

constexpr uint32_t kUnderlayMtu = 1400;  // not 1500: the overlay MTU must follow the underlay
constexpr char kNetA[] = "neta00000001";

NetworkSpec Net(const std::string& id, uint32_t vni, const std::string& subnet,
                const std::string& gw) {
  NetworkSpec n;
  n.id = id;
  n.vni = vni;
  n.subnet = *kernel::IpPrefix::Parse(subnet);
  n.gateway = *kernel::IpAddr::Parse(gw);
  return n;
}

class OverlayE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SHOAL_REQUIRE_ROOT();
    OverlayLabOptions opts;
    opts.underlay_mtu = kUnderlayMtu;
    Build(opts);
  }
  void Build(const OverlayLabOptions& opts) {
    prefix_ = opts.prefix;
    auto o = OverlayLab::Create(opts);
    ASSERT_TRUE(o.ok()) << o.status();
    o_ = std::move(*o);
    NetworkSpec a = Net(kNetA, 4097, "10.10.1.0/24", "10.10.1.1");
    for (int h = 0; h < 3; ++h) ASSERT_TRUE(o_->driver(h).CreateNetwork(a).ok());
    for (int h = 0; h < 3; ++h) {
      auto ep = o_->AddContainer(h, absl::StrCat("c", h + 1), a.id,
                                 absl::StrCat("10.10.1.1", h + 1, "/24"));
      ASSERT_TRUE(ep.ok()) << ep.status();
    }
    ASSERT_TRUE(o_->SyncPeers(a.id).ok());
  }
  void TearDown() override {
    if (!o_) return;
    o_.reset();
    EXPECT_EQ(lab::Leftovers(prefix_), std::vector<std::string>{}) << "left behind";
  }

  // Runs inside container `c`; "" when it exited 0, else its output (for failure messages).
  std::string Fails(const std::string& c, const std::string& cmd) {
    auto r = o_->Exec(c, cmd);
    if (!r.ok()) return r.status().ToString();
    return r->ok() ? "" : absl::StrCat("exit ", r->exit_code, ": ", r->output);
  }
  bool Ping(const std::string& from, const std::string& to) {
    return Fails(from, "ping -c1 -W2 " + to).empty();
  }
  // A new veth becomes a forwarding bridge port only after the kernel's linkwatch delivers its
  // carrier change (asynchronous, up to ~1 s): right after attaching, poll with a deadline.
  bool PingSoon(const std::string& from, const std::string& to) {
    auto r = o_->container(from).ExecUntilOk("ping -c1 -W1 " + to, std::chrono::seconds(8));
    return r.ok() && r->ok();
  }
  std::string Sandbox(int host, const std::string& cmd) {
    auto r = o_->RunInSandbox(host, kNetA, cmd);
    return r.ok() ? r->output : r.status().ToString();
  }

  std::string prefix_;
  std::unique_ptr<OverlayLab> o_;
};

TEST_F(OverlayE2eTest, ContainersOnDifferentHostsPingAndTalkHttp) {
  // What the container sees: eth0 with its address and the derived MTU, nothing else but lo.
  auto ip =
      o_->Exec("c1", "ip -o addr show dev eth0; ip -o link | wc -l; cat /sys/class/net/eth0/mtu");
  ASSERT_TRUE(ip.ok());
  EXPECT_TRUE(absl::StrContains(ip->output, "inet 10.10.1.11/24")) << ip->output;
  EXPECT_TRUE(absl::StrContains(ip->output, "\n2\n1350\n")) << ip->output;
  EXPECT_TRUE(PingSoon("c1", "10.10.1.12"));
  EXPECT_TRUE(PingSoon("c1", "10.10.1.13"));
  EXPECT_TRUE(PingSoon("c3", "10.10.1.12"));
  EXPECT_TRUE(Ping("c2", "10.10.1.1")) << "the sandbox bridge holds the gateway address";
  // TCP across hosts: busybox httpd in c2 (host 2), an HTTP request with nc from c1 (host 1)
  // and c3 (host 3). (Debian's static busybox wget segfaults, so nc speaks HTTP/1.0.)
  ASSERT_EQ(Fails("c2", "mkdir -p /srv && echo hello-from-c2 > /srv/index.html"), "");
  auto server = o_->container("c2").Spawn("exec httpd -f -p 8080 -h /srv");
  ASSERT_TRUE(server.ok()) << server.status();
  for (const char* client : {"c1", "c3"}) {
    auto r = o_->container(client).ExecUntilOk(
        "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 10.10.1.12 8080 | grep hello-from-c2");
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->output, "hello-from-c2\n") << client << " exit " << r->exit_code;
  }
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
  NetworkSpec b = Net("netb00000002", 4098, "10.10.1.0/24", "10.10.1.1");
  for (int h = 0; h < 2; ++h) ASSERT_TRUE(o_->driver(h).CreateNetwork(b).ok());
  ASSERT_TRUE(o_->AddContainer(0, "d1", b.id, "10.10.1.21/24").ok());
  ASSERT_TRUE(o_->AddContainer(1, "d2", b.id, "10.10.1.22/24").ok());
  ASSERT_TRUE(o_->SyncPeers(b.id).ok());
  EXPECT_TRUE(PingSoon("d1", "10.10.1.22"));
  EXPECT_FALSE(Ping("c1", "10.10.1.22"));  // same subnet, other VNI
  EXPECT_FALSE(Ping("d1", "10.10.1.12"));
  EXPECT_FALSE(Ping("c2", "10.10.1.21"));  // host 2's containers of net A don't see net B either
  EXPECT_TRUE(PingSoon("c1", "10.10.1.12"));
}

TEST_F(OverlayE2eTest, RemovingAPeerRemovesItsRowsAndTrafficStops) {
  ASSERT_TRUE(PingSoon("c1", "10.10.1.12"));
  std::string mac = o_->PeersOf(kNetA)[1].mac.ToString();  // c2-ep (sorted by id)
  ASSERT_NE(Sandbox(0, "bridge fdb show dev vxlan0").find(mac), std::string::npos);
  o_->ForgetPeer(kNetA, "c2-ep");
  ASSERT_TRUE(o_->SyncPeers(kNetA).ok());
  std::string fdb = Sandbox(0, "bridge fdb show dev vxlan0");
  EXPECT_EQ(fdb.find(mac), std::string::npos) << mac << "\n" << fdb;
  std::string neigh = Sandbox(0, "ip neigh show dev vxlan0");
  EXPECT_EQ(neigh.find("10.10.1.12 "), std::string::npos) << neigh;
  // Drop c1's cached ARP entry (host tool in the container's namespace: the container itself
  // has no CAP_NET_ADMIN), so only the overlay's rows decide.
  lab::RunIn(o_->container("c1").netns_fd(), "ip neigh flush all").IgnoreError();
  EXPECT_FALSE(Ping("c1", "10.10.1.12"));
  EXPECT_TRUE(Ping("c1", "10.10.1.13"));
}

TEST_F(OverlayE2eTest, AnFdbRowDeletedByHandIsRestoredByReconciliation) {
  ASSERT_TRUE(PingSoon("c1", "10.10.1.12"));
  std::string mac = o_->PeersOf(kNetA)[1].mac.ToString();
  auto del = o_->RunInSandbox(0, kNetA, "bridge fdb del " + mac + " dev vxlan0 dst 192.168.77.2");
  ASSERT_TRUE(del.ok() && del->exit_code == 0) << (del.ok() ? del->output : "");
  // The bridge's own learned row (master br0) may remain; the vxlan row (dst VTEP) is gone.
  ASSERT_EQ(Sandbox(0, "bridge fdb show dev vxlan0").find(mac + " dst"), std::string::npos);
  EXPECT_FALSE(Ping("c1", "10.10.1.12"));  // learning is off: nothing masks the missing row
  ASSERT_TRUE(o_->driver(0).Reconcile().ok());
  EXPECT_NE(Sandbox(0, "bridge fdb show dev vxlan0").find(mac + " dst 192.168.77.2"),
            std::string::npos);
  EXPECT_TRUE(Ping("c1", "10.10.1.12"));
  // The same without anyone asking: the background loop's periodic pass (an FDB row raises no
  // link event) puts the row back while c1 keeps pinging.
  std::mutex mu;
  ReconcileLoop::Options lo;
  lo.interval = std::chrono::milliseconds(200);
  lo.node_netns_fd = -2;
  ReconcileLoop loop(o_->driver(0), mu, lo);
  auto again = o_->RunInSandbox(0, kNetA, "bridge fdb del " + mac + " dev vxlan0 dst 192.168.77.2");
  ASSERT_TRUE(again.ok() && again->exit_code == 0);
  ASSERT_FALSE(Ping("c1", "10.10.1.12"));
  loop.Start();
  EXPECT_TRUE(PingSoon("c1", "10.10.1.12"));
  loop.Stop();  // joins: from here on only this thread touches the driver
  EXPECT_GE(loop.passes(), 1);
  EXPECT_NE(Sandbox(0, "bridge fdb show dev vxlan0").find(mac + " dst 192.168.77.2"),
            std::string::npos);
}

TEST_F(OverlayE2eTest, LargestPacketFittingTheDerivedMtuPassesWithDfAndOneMoreByteDoesNot) {
  auto mtu = o_->driver(0).NetworkMtu(kNetA);
  ASSERT_TRUE(mtu.ok());
  EXPECT_EQ(*mtu, kUnderlayMtu - 50);
  int payload = static_cast<int>(*mtu) - 28;  // IPv4 20 + ICMP 8
  ASSERT_TRUE(PingSoon("c1", "10.10.1.12"));
  // 1350-byte packets with DF set cross the 1400-byte underlay inside VXLAN (+50 bytes).
  EXPECT_EQ(Fails("c1", absl::StrCat("shoal-dfping 10.10.1.12 ", payload)), "");
  auto r = o_->Exec("c1", absl::StrCat("shoal-dfping 10.10.1.12 ", payload + 1));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->exit_code, 1) << r->output;  // refused: larger than the path MTU
  EXPECT_TRUE(absl::StrContains(r->output, "Message too long")) << r->output;
  // Without DF the same size is fragmented and passes: only DF makes the size a hard limit.
  EXPECT_TRUE(Ping("c1", absl::StrCat("-s ", payload + 1, " 10.10.1.12")));
}

TEST_F(OverlayE2eTest, RestartAdoptsKnownSandboxesAndPurgesUnknownOnes) {
  ASSERT_TRUE(
      o_->driver(0).CreateNetwork(Net("stale0000003", 4099, "10.10.3.0/24", "10.10.3.1")).ok());
  // A "restarted" driver on host 1 that only knows neta with endpoint c1-ep.
  kernel::LibnlNetlinkFactory f;
  base::SystemRandom rnd;
  OverlayConfig c;
  c.node_netns_fd = o_->lab().host(0).netns.get();
  c.vtep = o_->lab().host(0).ip;
  auto fresh = OverlayDriver::Create(c, f, o_->sandboxes(0), rnd);
  ASSERT_TRUE(fresh.ok());
  NetworkSpec a = Net(kNetA, 4097, "10.10.1.0/24", "10.10.1.1");
  ASSERT_TRUE((*fresh)->Restore({a}, {{a.id, {"c1-ep"}}}).ok());
  auto names = o_->sandboxes(0).List();
  ASSERT_TRUE(names.ok());
  EXPECT_EQ(*names, std::vector<std::string>{"ov-neta00000001"});
  ASSERT_TRUE((*fresh)->SetPeers(a.id, o_->PeersOf(a.id)).ok());
  EXPECT_TRUE(PingSoon("c1", "10.10.1.13"));
}

TEST_F(OverlayE2eTest, BadInputIsAClearErrorAndLeavesNoLinkNamespaceOrAddress) {
  auto sandbox_count = [&] { return o_->sandboxes(0).List()->size(); };
  size_t sandboxes = sandbox_count();
  // VNI out of range, MTU too small, MTU larger than the underlay carries: refused up front.
  absl::Status st =
      o_->driver(0).CreateNetwork(Net("badvni000001", 1u << 24, "10.30.0.0/24", "10.30.0.1"));
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << st;
  EXPECT_TRUE(absl::StrContains(st.message(), "vni 16777216 is outside 1..16777215")) << st;
  NetworkSpec small = Net("badmtu000001", 4200, "10.30.1.0/24", "10.30.1.1");
  small.mtu = 1000;
  st = o_->driver(0).CreateNetwork(small);
  EXPECT_TRUE(absl::StrContains(st.message(), "mtu 1000 is below the minimum 1280")) << st;
  small.mtu = 1351;
  st = o_->driver(0).CreateNetwork(small);
  EXPECT_TRUE(absl::StrContains(st.message(), "exceeds what the underlay can carry")) << st;
  EXPECT_EQ(sandbox_count(), sandboxes);
  // A second network whose subnet overlaps the one container c1 already has.
  NetworkSpec b = Net("netb00000002", 4098, "10.10.0.0/16", "10.10.0.1");
  ASSERT_TRUE(o_->driver(0).CreateNetwork(b).ok());
  EndpointSpec e;
  e.id = "c1-b";
  e.network_id = b.id;
  e.netns_fd = o_->container("c1").netns_fd();
  e.ifname = "eth1";
  e.address = *kernel::IpPrefix::Parse("10.10.2.5/16");
  auto ep = o_->driver(0).CreateEndpoint(e);
  EXPECT_EQ(ep.status().code(), absl::StatusCode::kInvalidArgument) << ep.status();
  EXPECT_TRUE(absl::StrContains(ep.status().message(),
                                "subnet 10.10.0.0/16 overlaps the container's address "
                                "10.10.1.11/24 on eth0"))
      << ep.status();
  // A duplicate endpoint (same id as c1's) on network A: refused, c1 untouched.
  e.id = "c1-ep";
  e.network_id = kNetA;
  e.address = *kernel::IpPrefix::Parse("10.10.1.99/24");
  EXPECT_EQ(o_->driver(0).CreateEndpoint(e).status().code(), absl::StatusCode::kAlreadyExists);
  // What the container sees: still exactly lo + eth0 with its one address.
  auto links = o_->Exec("c1", "ip -o link | wc -l; ip -o addr show | grep -c 'inet '");
  ASSERT_TRUE(links.ok());
  EXPECT_EQ(links->output, "2\n2\n") << links->output;  // lo 127.0.0.1 + eth0 10.10.1.11
  // ... and network B's sandbox holds only br0 + vxlan0 (no endpoint veth was left).
  auto sb = o_->RunInSandbox(0, b.id, "ip -o link | wc -l");
  ASSERT_TRUE(sb.ok());
  EXPECT_EQ(sb->output, "3\n");
  ASSERT_TRUE(o_->driver(0).DeleteNetwork(b.id).ok());
  EXPECT_EQ(sandbox_count(), sandboxes);
  EXPECT_TRUE(PingSoon("c1", "10.10.1.12"));
}

// dataplane.md §10.14: VTEPs on an IPv6 underlay (VXLAN over IPv6: 70 bytes of overhead), and a
// data-path port other than 4789 (`swarm init --data-path-port`).
class OverlayIpv6UnderlayTest : public OverlayE2eTest {
 protected:
  void SetUp() override {
    SHOAL_REQUIRE_ROOT();
    OverlayLabOptions opts;
    opts.prefix = "shnt-o6-";
    opts.underlay_mtu = kUnderlayMtu;
    opts.ipv6_underlay = true;
    opts.vxlan_port = 4790;
    Build(opts);
  }
};

TEST_F(OverlayIpv6UnderlayTest, ContainersTalkAcrossHostsOverAnIpv6UnderlayOnPort4790) {
  std::string d = Sandbox(0, "ip -d link show vxlan0");
  EXPECT_NE(d.find("dstport 4790"), std::string::npos) << d;
  EXPECT_NE(d.find("local fd77::1"), std::string::npos) << d;
  EXPECT_NE(d.find("mtu 1330"), std::string::npos) << d;  // 1400 - 70
  std::string fdb = Sandbox(0, "bridge fdb show dev vxlan0");
  EXPECT_NE(fdb.find("dst fd77::2"), std::string::npos) << fdb;
  EXPECT_TRUE(PingSoon("c1", "10.10.1.12"));
  EXPECT_TRUE(PingSoon("c1", "10.10.1.13"));
  EXPECT_EQ(Fails("c1", "shoal-dfping 10.10.1.13 1302"), "");  // 1330 - 28, DF
  // The encapsulated traffic really crossed the underlay as IPv6: host 1 resolved its peers'
  // IPv6 addresses (NDP) and never needed their IPv4 ones.
  auto neigh = lab::RunIn(o_->lab().host(0).netns.get(), "ip neigh show dev eth0");
  ASSERT_TRUE(neigh.ok());
  EXPECT_TRUE(absl::StrContains(neigh->output, "fd77::3 ")) << neigh->output;
  EXPECT_FALSE(absl::StrContains(neigh->output, "192.168.77.3 ")) << neigh->output;
  // The VXLAN socket listens on the configured port (in the node namespace, not the sandbox).
  auto udp = lab::RunIn(o_->lab().host(0).netns.get(), "ss -Hlun");
  ASSERT_TRUE(udp.ok());
  EXPECT_TRUE(absl::StrContains(udp->output, ":4790 ")) << udp->output;
  EXPECT_FALSE(absl::StrContains(udp->output, ":4789 ")) << udp->output;
}

}  // namespace
}  // namespace shoal::netdrv::testing
