// OverlayDriver against FakeKernel: plumbing, bad input, and "nothing left behind".
#include "netdrv/overlay.h"

#include "gtest/gtest.h"
#include "kernel/netlink/fake_netlink.h"
#include "netdrv/reconcile_loop.h"

namespace shoal::netdrv {
namespace {

using kernel::IpAddr;
using kernel::IpPrefix;
using kernel::LinkKind;

class OverlayFakeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    node_ = kernel_.NewNetns();
    auto nl = *kernel_.factory().Open(node_.get());
    kernel::LinkSpec eth;
    eth.kind = LinkKind::kVeth;
    eth.name = "eth0";
    eth.mtu = 1500;
    eth.veth.peer_name = "uplink";
    int idx = nl->CreateLink(eth)->index;
    ASSERT_TRUE(nl->AddAddress({idx, *IpPrefix::Parse("192.168.0.1/24")}).ok());
    OverlayConfig c;
    c.node_netns_fd = node_.get();
    c.vtep = *IpAddr::Parse("192.168.0.1");
    c.vxlan_port = 4790;
    auto d = OverlayDriver::Create(c, kernel_.factory(), kernel_.netns_store(), random_);
    ASSERT_TRUE(d.ok()) << d.status();
    driver_ = std::move(*d);
    baseline_ns_ = kernel_.NetnsCount();
  }
  NetworkSpec Net(const std::string& id = "net1") {
    NetworkSpec s;
    s.id = id;
    s.vni = 4097;
    s.subnet = *IpPrefix::Parse("10.0.1.0/24");
    s.gateway = *IpAddr::Parse("10.0.1.1");
    return s;
  }
  EndpointSpec Ep(const std::string& id, int fd, const char* addr) {
    EndpointSpec e;
    e.id = id;
    e.network_id = "net1";
    e.netns_fd = fd;
    e.address = *IpPrefix::Parse(addr);
    return e;
  }

  kernel::FakeKernel kernel_;
  base::FakeRandom random_{42};
  base::UniqueFd node_;
  std::unique_ptr<OverlayDriver> driver_;
  int baseline_ns_ = 0;
};

TEST_F(OverlayFakeTest, BuildsSandboxWithBridgeAndDeterministicVxlan) {
  ASSERT_TRUE(driver_->CreateNetwork(Net()).ok());
  int sb_fd = *driver_->SandboxFd("net1");
  auto sb = *kernel_.factory().Open(sb_fd);
  auto br = sb->GetLink("br0");
  auto vx = sb->GetLink("vxlan0");
  ASSERT_TRUE(br.ok() && vx.ok());
  EXPECT_EQ(vx->master_index, br->index);
  EXPECT_TRUE(vx->up && br->up);
  EXPECT_EQ(vx->vxlan.vni, 4097u);
  EXPECT_FALSE(vx->vxlan.learning);
  EXPECT_TRUE(vx->vxlan.proxy);
  EXPECT_EQ(vx->vxlan.local.ToString(), "192.168.0.1");
  EXPECT_EQ(vx->vxlan.port, 4790);  // the configured data-path port
  EXPECT_EQ(vx->mtu, 1450u);
  EXPECT_EQ(*driver_->NetworkMtu("net1"), 1450u);
  ASSERT_TRUE(driver_->DeleteNetwork("net1").ok());
  EXPECT_EQ(kernel_.NetnsCount(), baseline_ns_);
}

TEST_F(OverlayFakeTest, BadNetworkSpecsAreRejectedNamingTheFieldAndLeaveNothing) {
  NetworkSpec vni = Net();
  vni.vni = 1u << 24;
  auto st = driver_->CreateNetwork(vni);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("vni 16777216"), absl::string_view::npos) << st;
  NetworkSpec small = Net();
  small.mtu = 1000;
  st = driver_->CreateNetwork(small);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("below the minimum"), absl::string_view::npos) << st;
  NetworkSpec big = Net();
  big.mtu = 1451;
  st = driver_->CreateNetwork(big);
  EXPECT_NE(st.message().find("exceeds what the underlay can carry"), absl::string_view::npos)
      << st;
  NetworkSpec gw = Net();
  gw.gateway = *IpAddr::Parse("10.0.2.1");
  EXPECT_EQ(driver_->CreateNetwork(gw).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(kernel_.NetnsCount(), baseline_ns_);
  ASSERT_TRUE(driver_->CreateNetwork(Net()).ok());
  EXPECT_EQ(driver_->CreateNetwork(Net()).code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(driver_->CreateNetwork(Net("net2")).code(), absl::StatusCode::kAlreadyExists);  // VNI
}

TEST_F(OverlayFakeTest, EndpointsAreVethsIntoBr0AndDuplicatesAreRejected) {
  ASSERT_TRUE(driver_->CreateNetwork(Net()).ok());
  base::UniqueFd c1 = kernel_.NewNetns();
  auto ep = driver_->CreateEndpoint(Ep("ep1", c1.get(), "10.0.1.2/24"));
  ASSERT_TRUE(ep.ok()) << ep.status();
  EXPECT_EQ(ep->mac.bytes[0] & 0x03, 0x02);  // locally administered unicast
  auto ctr = *kernel_.factory().Open(c1.get());
  auto eth0 = ctr->GetLink("eth0");
  ASSERT_TRUE(eth0.ok());
  EXPECT_EQ(eth0->mac, ep->mac);
  EXPECT_EQ(eth0->mtu, 1450u);
  EXPECT_TRUE(eth0->up);
  base::UniqueFd c2 = kernel_.NewNetns();
  auto dup_id = driver_->CreateEndpoint(Ep("ep1", c2.get(), "10.0.1.3/24"));
  EXPECT_EQ(dup_id.status().code(), absl::StatusCode::kAlreadyExists);
  auto dup_ip = driver_->CreateEndpoint(Ep("ep2", c2.get(), "10.0.1.2/24"));
  EXPECT_EQ(dup_ip.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_NE(dup_ip.status().message().find("10.0.1.2"), absl::string_view::npos);
  auto outside = driver_->CreateEndpoint(Ep("ep3", c2.get(), "10.0.9.3/24"));
  EXPECT_EQ(outside.status().code(), absl::StatusCode::kInvalidArgument);
  auto c2nl = *kernel_.factory().Open(c2.get());
  EXPECT_EQ(c2nl->ListLinks()->size(), 1u);  // only lo: nothing half-built
  EndpointSpec missing = Ep("ep4", c2.get(), "10.0.1.4/24");
  missing.network_id = "nope";
  EXPECT_EQ(driver_->CreateEndpoint(missing).status().code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(driver_->DeleteEndpoint("net1", "ep1").ok());
  EXPECT_FALSE(ctr->GetLink("eth0").ok());
}

TEST_F(OverlayFakeTest, ReconcileRestoresDeletedRowsAndVxlanDevice) {
  ASSERT_TRUE(driver_->CreateNetwork(Net()).ok());
  Peer remote{"r1", *IpAddr::Parse("10.0.1.9"), *kernel::MacAddr::Parse("02:00:00:00:00:09"),
              *IpAddr::Parse("192.168.0.2")};
  ASSERT_TRUE(driver_->SetPeers("net1", {remote}).ok());
  auto sb = *kernel_.factory().Open(*driver_->SandboxFd("net1"));
  auto vx = *sb->GetLink("vxlan0");
  auto fdb = *sb->ListNeighbors(kernel::NeighFamily::kFdb, vx.index);
  ASSERT_EQ(fdb.size(), 1u);
  ASSERT_TRUE(sb->DeleteNeighbor(fdb[0]).ok());
  ASSERT_TRUE(driver_->Reconcile().ok());
  EXPECT_EQ(sb->ListNeighbors(kernel::NeighFamily::kFdb, vx.index)->size(), 1u);
  ASSERT_TRUE(sb->DeleteLink(vx.index).ok());  // the whole device, by hand
  ASSERT_TRUE(driver_->Reconcile().ok());
  auto vx2 = sb->GetLink("vxlan0");
  ASSERT_TRUE(vx2.ok());
  EXPECT_EQ(sb->ListNeighbors(kernel::NeighFamily::kFdb, vx2->index)->size(), 1u);
  EXPECT_EQ(sb->ListNeighbors(kernel::NeighFamily::kArp, vx2->index)->size(), 1u);
  ASSERT_TRUE(driver_->SetPeers("net1", {}).ok());
  EXPECT_TRUE(sb->ListNeighbors(kernel::NeighFamily::kFdb, vx2->index)->empty());
}

}  // namespace
}  // namespace shoal::netdrv

namespace shoal::netdrv {
namespace {

TEST_F(OverlayFakeTest, ReconcileLoopRestoresADeletedRowWithoutBeingAsked) {
  ASSERT_TRUE(driver_->CreateNetwork(Net()).ok());
  Peer remote{"r1", *IpAddr::Parse("10.0.1.9"), *kernel::MacAddr::Parse("02:00:00:00:00:09"),
              *IpAddr::Parse("192.168.0.2")};
  ASSERT_TRUE(driver_->SetPeers("net1", {remote}).ok());
  std::mutex mu;
  ReconcileLoop::Options o;
  o.interval = std::chrono::milliseconds(10);
  o.node_netns_fd = -2;  // the fake kernel has no event socket
  ReconcileLoop loop(*driver_, mu, o);
  auto sb = *kernel_.factory().Open(*driver_->SandboxFd("net1"));
  int vx = sb->GetLink("vxlan0")->index;
  auto fdb = *sb->ListNeighbors(kernel::NeighFamily::kFdb, vx);
  ASSERT_TRUE(sb->DeleteNeighbor(fdb[0]).ok());
  loop.Start();
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (sb->ListNeighbors(kernel::NeighFamily::kFdb, vx)->empty() &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
  }
  loop.Stop();
  EXPECT_EQ(sb->ListNeighbors(kernel::NeighFamily::kFdb, vx)->size(), 1u);
  EXPECT_GE(loop.passes(), 1);
}

}  // namespace
}  // namespace shoal::netdrv
