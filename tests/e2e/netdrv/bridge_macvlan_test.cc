// The egress bridge (masquerade to an outside host, host-mode published port, level-triggered
// nft) and macvlan (across lab hosts on their eth0; modes; VLAN sub-link) on a real lab, with
// REAL runtime containers as endpoints (tests/lab/containers.h): the driver puts eth0 into the
// container's own network namespace before its PID 1 runs, and the checks run inside the
// containers with their busybox tools.
#include <unistd.h>

#include <chrono>
#include <mutex>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/random.h"
#include "gtest/gtest.h"
#include "kernel/netlink/libnl_netlink.h"
#include "kernel/nft/netlink_nft.h"
#include "netdrv/bridge.h"
#include "netdrv/macvlan.h"
#include "netdrv/reconcile_loop.h"
#include "tests/lab/containers.h"
#include "tests/lab/lab.h"
#include "tests/testing/priv.h"

namespace shoal::netdrv {
namespace {

using lab::LabContainer;

class LabDriversTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SHOAL_REQUIRE_ROOT();
    lab::LabOptions o;
    o.prefix = "shnt-bm-";
    o.hosts = 2;
    o.outside = true;
    auto l = lab::Lab::Create(o);
    ASSERT_TRUE(l.ok()) << l.status();
    lab_ = std::move(*l);
    auto c = lab::ContainerLab::Create("shnt-bm-");
    ASSERT_TRUE(c.ok()) << c.status();
    containers_ = std::move(*c);
  }
  void TearDown() override {
    if (!lab_) return;
    containers_.reset();  // first: the containers' namespaces take their eth0 with them
    bridge_.reset();
    lab_.reset();
    EXPECT_EQ(lab::Leftovers("shnt-bm-"), std::vector<std::string>{}) << "left behind";
  }
  // A real container `name` whose eth0 is an endpoint created by `driver` (its netns_fd is the
  // container's namespace). nullptr (and a test failure) when it cannot be made.
  LabContainer* Container(const std::string& name, Driver& driver, EndpointSpec spec) {
    auto c = containers_->Run(name, [&](int fd) {
      spec.netns_fd = fd;
      return driver.CreateEndpoint(spec).status();
    });
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? *c : nullptr;
  }
  // Inside the container, retried until it succeeds or a deadline passes: right after attaching,
  // a new port forwards only once linkwatch delivers its carrier change (asynchronous).
  static bool ExecSoon(LabContainer* c, const std::string& cmd, std::string* out = nullptr) {
    auto r = c->ExecUntilOk(cmd, std::chrono::seconds(8));
    if (out) *out = r.ok() ? r->output : r.status().ToString();
    return r.ok() && r->ok();
  }
  static bool Exec(LabContainer* c, const std::string& cmd, std::string* out = nullptr) {
    auto r = c->Exec(cmd);
    if (out) *out = r.ok() ? r->output : r.status().ToString();
    return r.ok() && r->ok();
  }
  // Host tools in a lab namespace (a lab host or the outside host).
  static bool Run(int fd, const std::string& cmd, std::string* out = nullptr) {
    auto r = lab::RunIn(fd, cmd);
    if (out) *out = r.ok() ? r->output : r.status().ToString();
    return r.ok() && r->exit_code == 0;
  }
  static bool RunSoon(int fd, const std::string& cmd, std::string* out = nullptr) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(8);
    while (true) {
      if (Run(fd, cmd, out)) return true;
      if (std::chrono::steady_clock::now() >= deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));  // poll interval
    }
  }
  static EndpointSpec Ep(const std::string& net, const std::string& id, const char* addr,
                         bool def = false) {
    EndpointSpec e;
    e.id = id;
    e.network_id = net;
    e.address = *kernel::IpPrefix::Parse(addr);
    e.default_route = def;
    return e;
  }
  void MakeBridge() {
    int node = lab_->host(0).netns.get();
    auto nft = kernel::nft::OpenNft(node);
    ASSERT_TRUE(nft.ok()) << nft.status();
    nft_ = std::move(*nft);
    BridgeConfig c;
    c.node_netns_fd = node;
    auto b = BridgeDriver::Create(c, netlink_, *nft_, random_);
    ASSERT_TRUE(b.ok()) << b.status();
    bridge_ = std::move(*b);
    NetworkSpec n;
    n.id = "gwbridge";
    n.subnet = *kernel::IpPrefix::Parse("172.18.0.0/16");
    n.gateway = *kernel::IpAddr::Parse("172.18.0.1");
    ASSERT_TRUE(bridge_->CreateNetwork(n).ok());
  }

  std::unique_ptr<lab::Lab> lab_;
  std::unique_ptr<lab::ContainerLab> containers_;
  kernel::LibnlNetlinkFactory netlink_;
  base::SystemRandom random_;
  std::unique_ptr<kernel::nft::Nft> nft_;
  std::unique_ptr<BridgeDriver> bridge_;
};

TEST_F(LabDriversTest, EgressBridgeMasqueradesToTheOutsideAndPublishesAHostPort) {
  ASSERT_NO_FATAL_FAILURE(MakeBridge());
  int node = lab_->host(0).netns.get();
  int out = lab_->outside()->netns.get();
  LabContainer* c1 = Container("web1", *bridge_, Ep("gwbridge", "web1", "172.18.0.2/16", true));
  ASSERT_NE(c1, nullptr);
  std::string o;
  // The outside host has no route to 172.18.0.0/16: only masquerade lets replies come back.
  EXPECT_TRUE(ExecSoon(c1, "ping -c1 -W2 192.168.77.254", &o)) << o;
  // ... and it sees the node's address, not the container's, as the TCP peer.
  // (both ends keep stdin open, so the connection stays established while we look)
  auto listener = lab::Spawn(out, "sleep 60 | busybox nc -l -p 9000");
  ASSERT_TRUE(listener.ok());
  ASSERT_TRUE(RunSoon(out, "ss -Hltn | grep -q ':9000 '", &o)) << o;  // listening before connecting
  auto client = c1->Spawn("sleep 60 | nc 192.168.77.254 9000");
  ASSERT_TRUE(client.ok()) << client.status();
  EXPECT_TRUE(RunSoon(out, "ss -Htn state established | grep ':9000 ' | grep 192.168.77.1]*:", &o))
      << (Run(out, "ss -tna", &o), o);
  (*client).reset();
  EXPECT_FALSE(absl::StrContains(o, "172.18.")) << o;
  // Level-triggered: the nft table removed by hand breaks egress until Reconcile.
  ASSERT_TRUE(Run(node, "nft delete table ip shoal-gw", &o)) << o;
  EXPECT_FALSE(Exec(c1, "ping -c1 -W1 192.168.77.254"));
  ASSERT_TRUE(bridge_->Reconcile().ok());
  EXPECT_TRUE(Exec(c1, "ping -c1 -W2 192.168.77.254", &o)) << o;
  // Host-mode published port: outside -> node:8080 -> container:80 (busybox httpd inside).
  ASSERT_TRUE(Exec(c1, "mkdir -p /srv && echo hello-from-web1 > /srv/index.html"));
  auto server = c1->Spawn("exec httpd -f -p 80 -h /srv");
  ASSERT_TRUE(server.ok()) << server.status();
  ASSERT_TRUE(bridge_->PublishPort({"web1", "gwbridge", 6, 8080, 80}).ok());
  const std::string get = "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | busybox nc -w 2 192.168.77.1 8080";
  EXPECT_TRUE(RunSoon(out, get + " | grep -q hello-from-web1", &o)) << o;
  ASSERT_TRUE(bridge_->UnpublishPort({"web1", "gwbridge", 6, 8080, 80}).ok());
  EXPECT_FALSE(Run(out, get + " | grep -q hello"));
  ASSERT_TRUE(bridge_->DeleteNetwork("gwbridge").ok());
  EXPECT_FALSE(Run(node, "ip link show shoal_gwbridge"));
  EXPECT_FALSE(Run(node, "nft list table ip shoal-gw"));
  EXPECT_FALSE(Exec(c1, "test -e /sys/class/net/eth0"));  // the endpoint went with the network
}

TEST_F(LabDriversTest, ABridgeDeletedByHandIsRebuiltOnTheLinkEventAlone) {
  ASSERT_NO_FATAL_FAILURE(MakeBridge());
  int node = lab_->host(0).netns.get();
  LabContainer* c1 = Container("web1", *bridge_, Ep("gwbridge", "web1", "172.18.0.2/16", true));
  ASSERT_NE(c1, nullptr);
  std::string o;
  ASSERT_TRUE(ExecSoon(c1, "ping -c1 -W2 192.168.77.254", &o)) << o;
  std::mutex mu;
  ReconcileLoop::Options lo;
  lo.interval = std::chrono::hours(1);  // only the link event can trigger the repair
  lo.node_netns_fd = node;
  ReconcileLoop loop(*bridge_, mu, lo);
  loop.Start();
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (loop.passes() < 1 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));  // the first (startup) pass
  }
  ASSERT_TRUE(Run(node, "ip link del shoal_gwbridge", &o)) << o;
  EXPECT_TRUE(RunSoon(node, "ip -o addr show dev shoal_gwbridge | grep -q 172.18.0.1/16", &o)) << o;
  EXPECT_TRUE(RunSoon(node, "ip -o link show master shoal_gwbridge | grep -q gweb1", &o)) << o;
  EXPECT_TRUE(ExecSoon(c1, "ping -c1 -W2 192.168.77.254", &o)) << o;
  loop.Stop();
  std::lock_guard<std::mutex> lock(mu);
  ASSERT_TRUE(bridge_->DeleteNetwork("gwbridge").ok());
}

TEST_F(LabDriversTest, MacvlanContainersReachEachOtherAcrossHostsAndModesBehave) {
  std::vector<std::unique_ptr<MacvlanDriver>> drivers;
  for (int h = 0; h < 2; ++h) {
    drivers.push_back(std::make_unique<MacvlanDriver>(MacvlanConfig{lab_->host(h).netns.get()},
                                                      netlink_, random_));
    NetworkSpec n;
    n.id = "mvnet";
    n.subnet = *kernel::IpPrefix::Parse("10.20.0.0/24");
    n.options = {{"parent", "eth0"}, {"mode", "bridge"}};
    ASSERT_TRUE(drivers[h]->CreateNetwork(n).ok());
    NetworkSpec p = n;
    p.id = "mvpriv";
    p.subnet = *kernel::IpPrefix::Parse("10.21.0.0/24");
    p.options = {{"parent", "eth0"}, {"mode", "private"}};
    ASSERT_TRUE(drivers[h]->CreateNetwork(p).ok());
  }
  LabContainer* a = Container("a", *drivers[0], Ep("mvnet", "a", "10.20.0.11/24"));
  LabContainer* b = Container("b", *drivers[1], Ep("mvnet", "b", "10.20.0.12/24"));
  LabContainer* a2 = Container("a2", *drivers[0], Ep("mvnet", "a2", "10.20.0.13/24"));
  LabContainer* p1 = Container("p1", *drivers[0], Ep("mvpriv", "p1", "10.21.0.11/24"));
  LabContainer* p2 = Container("p2", *drivers[0], Ep("mvpriv", "p2", "10.21.0.12/24"));
  LabContainer* p3 = Container("p3", *drivers[1], Ep("mvpriv", "p3", "10.21.0.13/24"));
  ASSERT_TRUE(a && b && a2 && p1 && p2 && p3);
  std::string o;
  EXPECT_TRUE(ExecSoon(a, "ping -c1 -W2 10.20.0.12", &o)) << o;  // across hosts
  EXPECT_TRUE(ExecSoon(b, "ping -c1 -W2 10.20.0.13", &o)) << o;  // and back to host 1
  EXPECT_TRUE(ExecSoon(a, "ping -c1 -W2 10.20.0.13", &o)) << o;  // same parent, bridge mode
  // Private mode: p1 reaches p3 behind another parent, never p2 on its own parent.
  EXPECT_TRUE(ExecSoon(p1, "ping -c1 -W2 10.21.0.13", &o)) << o;
  EXPECT_FALSE(Exec(p1, "ping -c2 -W1 10.21.0.12"));
  EXPECT_TRUE(Run(a->netns_fd(), "ip -d link show eth0 | grep -q 'macvlan mode bridge'"));
  ASSERT_TRUE(drivers[0]->DeleteEndpoint("mvnet", "a2").ok());
  EXPECT_FALSE(Exec(a2, "test -e /sys/class/net/eth0"));
  EXPECT_FALSE(Exec(a, "ping -c1 -W1 10.20.0.13"));
}

TEST_F(LabDriversTest, MacvlanVepaGoesThroughTheSwitchAndPassthruTakesTheParent) {
  MacvlanDriver d0({lab_->host(0).netns.get()}, netlink_, random_);
  MacvlanDriver d1({lab_->host(1).netns.get()}, netlink_, random_);
  NetworkSpec n;
  n.id = "mvvepa";
  n.subnet = *kernel::IpPrefix::Parse("10.25.0.0/24");
  n.options = {{"parent", "eth0"}, {"mode", "vepa"}};
  ASSERT_TRUE(d0.CreateNetwork(n).ok());
  NetworkSpec pt = n;
  pt.id = "mvpt";
  pt.options = {{"parent", "eth0"}, {"mode", "passthru"}};
  ASSERT_TRUE(d1.CreateNetwork(pt).ok());
  std::string parent_mac;
  // (not /sys: lab::RunIn only enters the network namespace, /sys stays the test's own)
  ASSERT_TRUE(
      Run(lab_->host(1).netns.get(), "ip -br link show eth0 | awk '{print $3}'", &parent_mac));
  LabContainer* v1 = Container("v1", d0, Ep("mvvepa", "v1", "10.25.0.11/24"));
  LabContainer* v2 = Container("v2", d0, Ep("mvvepa", "v2", "10.25.0.12/24"));
  LabContainer* p = Container("pt", d1, Ep("mvpt", "pt", "10.25.0.21/24"));
  ASSERT_TRUE(v1 && v2 && p);
  std::string o;
  // Passthru: the container's eth0 IS the parent (its MAC); the parent takes no second child.
  EXPECT_TRUE(Exec(p, "cat /sys/class/net/eth0/address", &o));
  EXPECT_EQ(o, parent_mac);
  EndpointSpec second = Ep("mvpt", "pt2", "10.25.0.22/24");
  second.netns_fd = p->netns_fd();
  second.ifname = "eth1";
  EXPECT_EQ(d1.CreateEndpoint(second).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(ExecSoon(v1, "ping -c1 -W2 10.25.0.21", &o)) << o;  // vepa -> switch -> passthru
  // VEPA: even same-parent traffic leaves through the parent, so it needs the switch port to
  // reflect it (hairpin); the lab's underlay bridge does not by default.
  EXPECT_FALSE(Exec(v1, "ping -c2 -W1 10.25.0.12"));
  ASSERT_TRUE(Run(-1, "ip netns exec shnt-bm-lab bridge link set dev h1 hairpin on", &o)) << o;
  EXPECT_TRUE(ExecSoon(v1, "ping -c1 -W2 10.25.0.12", &o)) << o;
  EXPECT_TRUE(Run(v1->netns_fd(), "ip -d link show eth0 | grep -q 'macvlan mode vepa'"));
}

TEST_F(LabDriversTest, MacvlanOnAVlanSubLinkCreatesAndRemovesIt) {
  MacvlanDriver d0({lab_->host(0).netns.get()}, netlink_, random_);
  NetworkSpec n;
  n.id = "mv10";
  n.subnet = *kernel::IpPrefix::Parse("10.22.0.0/24");
  n.options = {{"parent", "eth0.10"}};
  absl::Status st = d0.CreateNetwork(n);
  if (absl::IsUnimplemented(st)) {
    GTEST_SKIP() << "this kernel has no 802.1q support (CONFIG_VLAN_8021Q): " << st;
  }
  ASSERT_TRUE(st.ok()) << st;
  MacvlanDriver d1({lab_->host(1).netns.get()}, netlink_, random_);
  ASSERT_TRUE(d1.CreateNetwork(n).ok());
  LabContainer* a = Container("va", d0, Ep("mv10", "va", "10.22.0.11/24"));
  LabContainer* b = Container("vb", d1, Ep("mv10", "vb", "10.22.0.12/24"));
  ASSERT_TRUE(a && b);
  std::string o;
  EXPECT_TRUE(ExecSoon(a, "ping -c1 -W2 10.22.0.12", &o)) << o;
  // The frames really are 802.1q-tagged on the underlay: host 1's eth0.10 carried them.
  EXPECT_TRUE(Run(lab_->host(0).netns.get(),
                  "ip -d link show eth0.10 | grep -q 'vlan protocol 802.1Q id 10'", &o))
      << o;
  ASSERT_TRUE(d0.DeleteNetwork("mv10").ok());
  EXPECT_FALSE(Run(lab_->host(0).netns.get(), "ip link show eth0.10"));
}

TEST_F(LabDriversTest, MacvlanMissingParentIsAClearErrorAndLeavesNoLink) {
  MacvlanDriver d({lab_->host(0).netns.get()}, netlink_, random_);
  NetworkSpec n;
  n.id = "mvx";
  n.subnet = *kernel::IpPrefix::Parse("10.23.0.0/24");
  n.options = {{"parent", "eth7.20"}};
  absl::Status st = d.CreateNetwork(n);
  EXPECT_EQ(st.code(), absl::StatusCode::kNotFound) << st;
  EXPECT_NE(st.message().find("eth7"), absl::string_view::npos) << st;
  std::string links;
  Run(lab_->host(0).netns.get(), "ip -o link 2>/dev/null | wc -l", &links);
  EXPECT_EQ(links, "2\n");  // lo and eth0 only
}

}  // namespace
}  // namespace shoal::netdrv
