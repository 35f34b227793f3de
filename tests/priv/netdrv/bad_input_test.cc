// Bad input against the real kernel: a clear error naming the field, and no link or namespace
// left behind. The "node" is a throwaway namespace with eth0 (a veth) holding the VTEP address.
#include <unistd.h>

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "base/random.h"
#include "gtest/gtest.h"
#include "kernel/netlink/libnl_netlink.h"
#include "kernel/nft/netlink_nft.h"
#include "netdrv/bridge.h"
#include "netdrv/overlay.h"
#include "tests/testing/priv.h"

namespace shoal::netdrv {
namespace {

using kernel::IpAddr;
using kernel::IpPrefix;

class OverlayBadInputTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SHOAL_REQUIRE_ROOT();
    dir_ = absl::StrCat("/run/sn-bad-", ::getpid());
    nodes_ = std::make_unique<kernel::BindMountNetnsStore>(dir_ + "/node");
    sandboxes_ = std::make_unique<kernel::BindMountNetnsStore>(dir_ + "/sb");
    auto n = nodes_->Create("node");
    ASSERT_TRUE(n.ok()) << n.status();
    node_ = std::move(*n);
    auto c = nodes_->Create("ctr");
    ASSERT_TRUE(c.ok());
    ctr_ = std::move(*c);
  }
  void TearDown() override {
    driver_.reset();
    node_.Reset();
    ctr_.Reset();
    for (auto* s : {nodes_.get(), sandboxes_.get()}) {
      if (!s) continue;
      auto names = s->List();
      if (names.ok())
        for (const auto& n : *names) (void)s->Delete(n);
    }
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  void MakeNode(uint32_t mtu) {
    auto nl = *netlink_.Open(node_.get());
    kernel::LinkSpec eth;
    eth.kind = kernel::LinkKind::kVeth;
    eth.name = "eth0";
    eth.mtu = mtu;
    eth.up = true;
    eth.veth.peer_name = "eth0p";
    auto l = nl->CreateLink(eth);
    ASSERT_TRUE(l.ok()) << l.status();
    ASSERT_TRUE(nl->AddAddress({l->index, *IpPrefix::Parse("192.168.88.1/24")}).ok());
    OverlayConfig c;
    c.node_netns_fd = node_.get();
    c.vtep = *IpAddr::Parse("192.168.88.1");
    auto d = OverlayDriver::Create(c, netlink_, *sandboxes_, random_);
    ASSERT_TRUE(d.ok()) << d.status();
    driver_ = std::move(*d);
  }
  NetworkSpec Net(uint32_t vni = 4097) {
    NetworkSpec s;
    s.id = "badnet000001";
    s.vni = vni;
    s.subnet = *IpPrefix::Parse("10.40.0.0/24");
    s.gateway = *IpAddr::Parse("10.40.0.1");
    return s;
  }
  int Count(kernel::NetnsStore& s) { return static_cast<int>(s.List()->size()); }
  int Links(int fd) { return static_cast<int>((*netlink_.Open(fd))->ListLinks()->size()); }

  std::string dir_;
  kernel::LibnlNetlinkFactory netlink_;
  base::SystemRandom random_;
  std::unique_ptr<kernel::BindMountNetnsStore> nodes_, sandboxes_;
  base::UniqueFd node_, ctr_;
  std::unique_ptr<OverlayDriver> driver_;
};

TEST_F(OverlayBadInputTest, VniOutOfRangeNamesTheFieldAndCreatesNothing) {
  MakeNode(1500);
  for (uint32_t vni : {0u, 1u << 24}) {
    absl::Status st = driver_->CreateNetwork(Net(vni));
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(st.message().find(absl::StrCat("vni ", vni)), absl::string_view::npos) << st;
  }
  EXPECT_EQ(Count(*sandboxes_), 0);
  EXPECT_EQ(Links(node_.get()), 3);  // lo, eth0, eth0p
}

TEST_F(OverlayBadInputTest, UnderlayTooSmallForTheMinimumMtuIsRefused) {
  MakeNode(1300);  // 1300 - 50 = 1250 < 1280
  absl::Status st = driver_->CreateNetwork(Net());
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("mtu 1250 is below the minimum 1280"), absl::string_view::npos) << st;
  EXPECT_EQ(Count(*sandboxes_), 0);
}

TEST_F(OverlayBadInputTest, ExplicitMtuLargerThanTheUnderlayCarriesIsRefused) {
  MakeNode(1500);
  NetworkSpec s = Net();
  s.mtu = 1500;
  absl::Status st = driver_->CreateNetwork(s);
  EXPECT_NE(st.message().find("exceeds what the underlay can carry (1500 - 50 = 1450)"),
            absl::string_view::npos)
      << st;
  EXPECT_EQ(Count(*sandboxes_), 0);
}

TEST_F(OverlayBadInputTest, DuplicateEndpointIsRefusedAndTheContainerKeepsOnlyLo) {
  MakeNode(1500);
  ASSERT_TRUE(driver_->CreateNetwork(Net()).ok());
  EXPECT_EQ(driver_->CreateNetwork(Net()).code(), absl::StatusCode::kAlreadyExists);
  EndpointSpec e;
  e.id = "ep1";
  e.network_id = "badnet000001";
  e.netns_fd = ctr_.get();
  e.address = *IpPrefix::Parse("10.40.0.2/24");
  ASSERT_TRUE(driver_->CreateEndpoint(e).ok());
  auto c2 = nodes_->Create("ctr2");
  ASSERT_TRUE(c2.ok());
  EndpointSpec dup = e;
  dup.netns_fd = c2->get();
  auto st = driver_->CreateEndpoint(dup);
  EXPECT_EQ(st.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_NE(st.status().message().find("ep1"), absl::string_view::npos) << st.status();
  dup.id = "ep2";  // same address
  st = driver_->CreateEndpoint(dup);
  EXPECT_EQ(st.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_NE(st.status().message().find("10.40.0.2"), absl::string_view::npos) << st.status();
  dup.id = "ep3";
  dup.ifname = "a-very-long-interface-name";
  EXPECT_EQ(driver_->CreateEndpoint(dup).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Links(c2->get()), 1);  // lo only
  // A container whose eth0 name is taken: the kernel refuses, the sandbox end is not left.
  kernel::LinkSpec taken;
  taken.kind = kernel::LinkKind::kBridge;
  taken.name = "eth0";
  ASSERT_TRUE((*netlink_.Open(c2->get()))->CreateLink(taken).ok());
  dup.id = "ep4";
  dup.ifname = "eth0";
  dup.address = *IpPrefix::Parse("10.40.0.4/24");
  EXPECT_EQ(driver_->CreateEndpoint(dup).status().code(), absl::StatusCode::kAlreadyExists);
  auto sb = *netlink_.Open(*driver_->SandboxFd("badnet000001"));
  EXPECT_FALSE(sb->GetLink("vep4").ok());
  ASSERT_TRUE(driver_->DeleteNetwork("badnet000001").ok());
  EXPECT_EQ(Count(*sandboxes_), 0);
  EXPECT_EQ(Links(ctr_.get()), 1);  // the veth died with the sandbox
}

TEST_F(OverlayBadInputTest, DataPathAddressNotOnTheNodeIsRefusedAtCreate) {
  OverlayConfig c;
  c.node_netns_fd = node_.get();
  c.vtep = *IpAddr::Parse("192.168.99.9");
  auto d = OverlayDriver::Create(c, netlink_, *sandboxes_, random_);
  EXPECT_EQ(d.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(d.status().message().find("192.168.99.9"), absl::string_view::npos);
  c.vtep = *IpAddr::Parse("192.168.88.1");
  c.vxlan_port = 80;
  EXPECT_EQ(OverlayDriver::Create(c, netlink_, *sandboxes_, random_).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// The egress bridge against the real kernel: a subnet shadowing the node's own network, or an
// MTU below 1280, is refused naming the reason, and neither the bridge nor the nft table exists.
TEST_F(OverlayBadInputTest, BridgeSubnetOverlappingTheNodeOrTinyMtuLeavesNoBridgeOrTable) {
  MakeNode(1500);  // eth0 192.168.88.1/24
  auto nft = kernel::nft::OpenNft(node_.get());
  ASSERT_TRUE(nft.ok()) << nft.status();
  BridgeConfig c;
  c.node_netns_fd = node_.get();
  auto b = BridgeDriver::Create(c, netlink_, **nft, random_);
  ASSERT_TRUE(b.ok()) << b.status();
  NetworkSpec n;
  n.id = "gw";
  n.subnet = *IpPrefix::Parse("192.168.0.0/16");
  n.gateway = *IpAddr::Parse("192.168.0.1");
  absl::Status st = (*b)->CreateNetwork(n);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << st;
  EXPECT_NE(st.message().find("subnet 192.168.0.0/16 overlaps the node's"), absl::string_view::npos)
      << st;
  n.subnet = *IpPrefix::Parse("172.18.0.0/16");
  n.gateway = *IpAddr::Parse("172.18.0.1");
  n.mtu = 1000;
  st = (*b)->CreateNetwork(n);
  EXPECT_NE(st.message().find("mtu 1000 is outside 1280..65535"), absl::string_view::npos) << st;
  EXPECT_EQ(Links(node_.get()), 3);  // lo, eth0, eth0p: no shoal_gwbridge
  auto tables = (*nft)->ListTables();
  ASSERT_TRUE(tables.ok()) << tables.status();
  for (const auto& t : *tables) EXPECT_NE(t.name, "shoal-gw");
  // Valid input works in the same node, and deleting it removes bridge and table again.
  n.mtu = 0;
  ASSERT_TRUE((*b)->CreateNetwork(n).ok());
  EXPECT_EQ(Links(node_.get()), 4);
  ASSERT_TRUE((*b)->DeleteNetwork("gw").ok());
  EXPECT_EQ(Links(node_.get()), 3);
}

}  // namespace
}  // namespace shoal::netdrv
