// The egress bridge (masquerade to an outside host, host-mode published port, level-triggered
// nft) and macvlan (across lab hosts on their eth0; modes; VLAN sub-link) on a real lab.
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "absl/strings/str_cat.h"
#include "base/random.h"
#include "gtest/gtest.h"
#include "kernel/netlink/libnl_netlink.h"
#include "kernel/nft/netlink_nft.h"
#include "netdrv/bridge.h"
#include "netdrv/macvlan.h"
#include "netdrv/reconcile_loop.h"
#include "tests/lab/lab.h"
#include "tests/testing/priv.h"

namespace shoal::netdrv {
namespace {

#define ASSERT_OK_EP(expr)                        \
  do {                                            \
    absl::Status ep_st_ = (expr).status();        \
    ASSERT_TRUE(ep_st_.ok()) << #expr << ": " << ep_st_; \
  } while (0)


class LabDriversTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SHOAL_REQUIRE_ROOT();
    lab::LabOptions o;
    o.prefix = "sn-bm-";
    o.hosts = 2;
    o.outside = true;
    auto l = lab::Lab::Create(o);
    ASSERT_TRUE(l.ok()) << l.status();
    lab_ = std::move(*l);
    store_ =
        std::make_unique<kernel::BindMountNetnsStore>(absl::StrCat("/run/sn-bm-ctr-", ::getpid()));
  }
  void TearDown() override {
    bridge_.reset();
    macvlan_.reset();
    containers_.clear();
    if (store_) {
      auto names = store_->List();
      if (names.ok()) {
        for (const auto& n : *names) (void)store_->Delete(n);
      }
      std::error_code ec;
      std::filesystem::remove(store_->dir(), ec);
    }
    lab_.reset();
  }
  int Container(const std::string& name) {
    auto fd = store_->Create(name);
    EXPECT_TRUE(fd.ok()) << fd.status();
    int raw = fd->get();
    containers_[name] = std::move(*fd);
    return raw;
  }
  // Right after attaching, a new port forwards only once linkwatch delivers its carrier change
  // (asynchronous): retry a command that should succeed until a deadline.
  bool RunSoon(int fd, const std::string& cmd, std::string* out = nullptr) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (std::chrono::steady_clock::now() < deadline) {
      if (Run(fd, cmd, out)) return true;
    }
    return false;
  }
  bool Run(int fd, const std::string& cmd, std::string* out = nullptr) {
    auto r = lab::RunIn(fd, cmd);
    if (out) *out = r.ok() ? r->output : r.status().ToString();
    return r.ok() && r->exit_code == 0;
  }
  EndpointSpec Ep(const std::string& net, const std::string& id, int fd, const char* addr,
                  bool def = false) {
    EndpointSpec e;
    e.id = id;
    e.network_id = net;
    e.netns_fd = fd;
    e.address = *kernel::IpPrefix::Parse(addr);
    e.default_route = def;
    return e;
  }

  std::unique_ptr<lab::Lab> lab_;
  std::unique_ptr<kernel::BindMountNetnsStore> store_;
  std::map<std::string, base::UniqueFd> containers_;
  kernel::LibnlNetlinkFactory netlink_;
  base::SystemRandom random_;
  std::unique_ptr<kernel::nft::Nft> nft_;
  std::unique_ptr<BridgeDriver> bridge_;
  std::unique_ptr<MacvlanDriver> macvlan_;
};

TEST_F(LabDriversTest, EgressBridgeMasqueradesToTheOutsideAndPublishesAHostPort) {
  int node = lab_->host(0).netns.get();
  auto nft = kernel::nft::OpenNft(node);
  ASSERT_TRUE(nft.ok()) << nft.status();
  nft_ = std::move(*nft);
  BridgeConfig c;
  c.node_netns_fd = node;
  bridge_ = *BridgeDriver::Create(c, netlink_, *nft_, random_);
  NetworkSpec n;
  n.id = "gwbridge";
  n.subnet = *kernel::IpPrefix::Parse("172.18.0.0/16");
  n.gateway = *kernel::IpAddr::Parse("172.18.0.1");
  ASSERT_TRUE(bridge_->CreateNetwork(n).ok());
  int c1 = Container("c1");
  auto ep = bridge_->CreateEndpoint(Ep("gwbridge", "web1", c1, "172.18.0.2/16", true));
  ASSERT_TRUE(ep.ok()) << ep.status();
  // The outside host has no route to 172.18.0.0/16: only masquerade lets replies come back.
  int out = lab_->outside()->netns.get();
  std::string o;
  EXPECT_TRUE(RunSoon(c1, "ping -c1 -W2 192.168.77.254", &o)) << o;
  // Level-triggered: the nft table removed by hand breaks egress until Reconcile.
  ASSERT_TRUE(Run(node, "nft delete table ip shoal-gw", &o)) << o;
  EXPECT_FALSE(Run(c1, "ping -c1 -W1 192.168.77.254"));
  ASSERT_TRUE(bridge_->Reconcile().ok());
  EXPECT_TRUE(Run(c1, "ping -c1 -W2 192.168.77.254", &o)) << o;
  // Host-mode published port: outside -> node:8080 -> container:80.
  auto server = lab::Spawn(c1, "busybox nc -ll -p 80 -e /bin/echo hello-from-web1");
  ASSERT_TRUE(server.ok());
  ASSERT_TRUE(bridge_->PublishPort({"web1", "gwbridge", 6, 8080, 80}).ok());
  std::string got;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline && got.find("hello") == std::string::npos) {
    Run(out, "busybox nc -w 2 192.168.77.1 8080 </dev/null", &got);
    if (got.find("hello") == std::string::npos) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));  // server not listening yet
    }
  }
  EXPECT_NE(got.find("hello-from-web1"), std::string::npos) << got;
  ASSERT_TRUE(bridge_->UnpublishPort({"web1", "gwbridge", 6, 8080, 80}).ok());
  EXPECT_FALSE(Run(out, "busybox nc -w 1 192.168.77.1 8080 </dev/null | grep -q hello"));
  ASSERT_TRUE(bridge_->DeleteNetwork("gwbridge").ok());
  EXPECT_FALSE(Run(node, "ip link show shoal_gwbridge"));
  EXPECT_FALSE(Run(node, "nft list table ip shoal-gw"));
}

TEST_F(LabDriversTest, ABridgeDeletedByHandIsRebuiltOnTheLinkEventAlone) {
  int node = lab_->host(0).netns.get();
  auto nft = kernel::nft::OpenNft(node);
  ASSERT_TRUE(nft.ok()) << nft.status();
  nft_ = std::move(*nft);
  BridgeConfig c;
  c.node_netns_fd = node;
  bridge_ = *BridgeDriver::Create(c, netlink_, *nft_, random_);
  NetworkSpec n;
  n.id = "gwbridge";
  n.subnet = *kernel::IpPrefix::Parse("172.18.0.0/16");
  n.gateway = *kernel::IpAddr::Parse("172.18.0.1");
  ASSERT_TRUE(bridge_->CreateNetwork(n).ok());
  int c1 = Container("c1");
  ASSERT_TRUE(bridge_->CreateEndpoint(Ep("gwbridge", "web1", c1, "172.18.0.2/16", true)).ok());
  std::string o;
  ASSERT_TRUE(RunSoon(c1, "ping -c1 -W2 192.168.77.254", &o)) << o;
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
  EXPECT_TRUE(RunSoon(c1, "ping -c1 -W2 192.168.77.254", &o)) << o;
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
  int a = Container("a"), b = Container("b"), a2 = Container("a2");
  int p1 = Container("p1"), p2 = Container("p2");
  ASSERT_OK_EP(drivers[0]->CreateEndpoint(Ep("mvnet", "a", a, "10.20.0.11/24")));
  ASSERT_OK_EP(drivers[1]->CreateEndpoint(Ep("mvnet", "b", b, "10.20.0.12/24")));
  ASSERT_OK_EP(drivers[0]->CreateEndpoint(Ep("mvnet", "a2", a2, "10.20.0.13/24")));
  ASSERT_OK_EP(drivers[0]->CreateEndpoint(Ep("mvpriv", "p1", p1, "10.21.0.11/24")));
  ASSERT_OK_EP(drivers[0]->CreateEndpoint(Ep("mvpriv", "p2", p2, "10.21.0.12/24")));
  std::string o;
  EXPECT_TRUE(RunSoon(a, "ping -c1 -W2 10.20.0.12", &o)) << o;  // across hosts
  EXPECT_TRUE(RunSoon(a, "ping -c1 -W2 10.20.0.13", &o)) << o;  // same parent, bridge mode
  EXPECT_FALSE(Run(p1, "ping -c2 -W1 10.21.0.12"));             // private mode isolates
  EXPECT_TRUE(Run(a, "ip -d link show eth0 | grep -q 'macvlan mode bridge'"));
  ASSERT_TRUE(drivers[0]->DeleteEndpoint("mvnet", "a2").ok());
  EXPECT_FALSE(Run(a2, "ip link show eth0"));
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
  int a = Container("va"), b = Container("vb");
  ASSERT_OK_EP(d0.CreateEndpoint(Ep("mv10", "va", a, "10.22.0.11/24")));
  ASSERT_OK_EP(d1.CreateEndpoint(Ep("mv10", "vb", b, "10.22.0.12/24")));
  std::string o;
  EXPECT_TRUE(RunSoon(a, "ping -c1 -W2 10.22.0.12", &o)) << o;
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
