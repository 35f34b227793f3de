// BridgeDriver and MacvlanDriver against FakeKernel + FakeNft.
#include <sys/socket.h>

#include "gtest/gtest.h"
#include "kernel/netlink/fake_netlink.h"
#include "kernel/nft/fake_nft.h"
#include "netdrv/bridge.h"
#include "netdrv/macvlan.h"

namespace shoal::netdrv {
namespace {

using kernel::IpAddr;
using kernel::IpPrefix;
using kernel::LinkKind;

class DriversFakeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    node_ = kernel_.NewNetns();
    nl_ = *kernel_.factory().Open(node_.get());
    kernel::LinkSpec eth;
    eth.kind = LinkKind::kVeth;
    eth.name = "eth0";
    eth.veth.peer_name = "uplink";
    eth.up = true;
    ASSERT_TRUE(nl_->CreateLink(eth).ok());
  }
  EndpointSpec Ep(const std::string& net, const std::string& id, int fd, const char* addr) {
    EndpointSpec e;
    e.id = id;
    e.network_id = net;
    e.netns_fd = fd;
    e.address = *IpPrefix::Parse(addr);
    e.default_route = true;
    return e;
  }
  bool HasLink(const std::string& name) { return nl_->GetLink(name).ok(); }

  kernel::FakeKernel kernel_;
  kernel::nft::FakeNft nft_;
  base::FakeRandom random_{7};
  base::UniqueFd node_;
  std::unique_ptr<kernel::Netlink> nl_;
  std::vector<std::string> sysctls_;
};

TEST_F(DriversFakeTest, BridgeMasqueradesItsSubnetAndPublishesPorts) {
  BridgeConfig c;
  c.node_netns_fd = node_.get();
  c.sysctl = [&](int, absl::string_view k, absl::string_view v) {
    sysctls_.push_back(std::string(k) + "=" + std::string(v));
    return absl::OkStatus();
  };
  auto d = *BridgeDriver::Create(c, kernel_.factory(), nft_, random_);
  NetworkSpec n;
  n.id = "gw";
  n.subnet = *IpPrefix::Parse("172.18.0.0/16");
  n.gateway = *IpAddr::Parse("172.18.0.1");
  ASSERT_TRUE(d->CreateNetwork(n).ok());
  EXPECT_TRUE(HasLink("shoal_gwbridge"));
  EXPECT_EQ(sysctls_, std::vector<std::string>{"net/ipv4/ip_forward=1"});
  auto table = nft_.GetTable({kernel::nft::Family::kIp, "shoal-gw"});
  ASSERT_TRUE(table.ok()) << table.status();
  EXPECT_EQ(table->rules.size(), 1u);
  base::UniqueFd c1 = kernel_.NewNetns();
  auto ep = d->CreateEndpoint(Ep("gw", "web1", c1.get(), "172.18.0.2/16"));
  ASSERT_TRUE(ep.ok()) << ep.status();
  auto ctr = *kernel_.factory().Open(c1.get());
  EXPECT_EQ(ctr->ListRoutes(AF_INET)->size(), 1u);  // default via 172.18.0.1
  PortMapping m{"web1", "gw", 6, 8080, 80};
  ASSERT_TRUE(d->PublishPort(m).ok());
  EXPECT_EQ(nft_.GetTable({kernel::nft::Family::kIp, "shoal-gw"})->rules.size(), 3u);
  EXPECT_EQ(d->PublishPort(m).code(), absl::StatusCode::kAlreadyExists);
  PortMapping bad = m;
  bad.host_port = 8081;
  bad.endpoint_id = "nope";
  EXPECT_EQ(d->PublishPort(bad).code(), absl::StatusCode::kNotFound);
  // A table removed by hand comes back on Reconcile.
  ASSERT_TRUE(kernel::nft::DeleteTableIfExists(nft_, {kernel::nft::Family::kIp, "shoal-gw"}).ok());
  ASSERT_TRUE(d->Reconcile().ok());
  EXPECT_EQ(nft_.GetTable({kernel::nft::Family::kIp, "shoal-gw"})->rules.size(), 3u);
  ASSERT_TRUE(d->DeleteEndpoint("gw", "web1").ok());
  EXPECT_EQ(nft_.GetTable({kernel::nft::Family::kIp, "shoal-gw"})->rules.size(), 1u);
  ASSERT_TRUE(d->DeleteNetwork("gw").ok());
  EXPECT_FALSE(HasLink("shoal_gwbridge"));
  EXPECT_EQ(nft_.GetTable({kernel::nft::Family::kIp, "shoal-gw"}).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(DriversFakeTest, BridgeSubnetOverlappingTheNodesNetworksIsRefused) {
  ASSERT_TRUE(
      nl_->AddAddress({nl_->GetLink("eth0")->index, *IpPrefix::Parse("172.18.5.1/24")}).ok());
  BridgeConfig c;
  c.node_netns_fd = node_.get();
  c.sysctl = [](int, absl::string_view, absl::string_view) { return absl::OkStatus(); };
  auto d = *BridgeDriver::Create(c, kernel_.factory(), nft_, random_);
  NetworkSpec n;
  n.id = "gw";
  n.subnet = *IpPrefix::Parse("172.18.0.0/16");
  n.gateway = *IpAddr::Parse("172.18.0.1");
  absl::Status st = d->CreateNetwork(n);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("overlaps the node's address 172.18.5.1/24"), absl::string_view::npos)
      << st;
  EXPECT_FALSE(HasLink("shoal_gwbridge"));
  n.subnet = *IpPrefix::Parse("172.19.0.0/16");
  n.gateway = *IpAddr::Parse("172.19.0.1");
  EXPECT_TRUE(d->CreateNetwork(n).ok());
}

TEST_F(DriversFakeTest, BridgeRollsBackWhenNftFails) {
  BridgeConfig c;
  c.node_netns_fd = node_.get();
  c.sysctl = [](int, absl::string_view, absl::string_view) { return absl::OkStatus(); };
  auto d = *BridgeDriver::Create(c, kernel_.factory(), nft_, random_);
  NetworkSpec n;
  n.id = "gw";
  n.subnet = *IpPrefix::Parse("172.18.0.0/16");
  n.gateway = *IpAddr::Parse("172.18.0.1");
  nft_.FailNextApply(absl::PermissionDeniedError("no CAP_NET_ADMIN"));
  EXPECT_EQ(d->CreateNetwork(n).code(), absl::StatusCode::kPermissionDenied);
  EXPECT_FALSE(HasLink("shoal_gwbridge"));
  ASSERT_TRUE(d->CreateNetwork(n).ok());
}

TEST_F(DriversFakeTest, MacvlanCreatesAndRemovesTheVlanSubLink) {
  MacvlanDriver d({node_.get()}, kernel_.factory(), random_);
  NetworkSpec n;
  n.id = "mv10";
  n.subnet = *IpPrefix::Parse("10.30.0.0/24");
  n.options = {{"parent", "eth0.10"}, {"mode", "bridge"}};
  ASSERT_TRUE(d.CreateNetwork(n).ok());
  auto vlan = nl_->GetLink("eth0.10");
  ASSERT_TRUE(vlan.ok());
  EXPECT_EQ(vlan->kind, LinkKind::kVlan);
  EXPECT_EQ(vlan->vlan.id, 10);
  NetworkSpec n2 = n;
  n2.id = "mv10b";
  n2.subnet = *IpPrefix::Parse("10.31.0.0/24");
  ASSERT_TRUE(d.CreateNetwork(n2).ok());  // shares eth0.10
  base::UniqueFd c1 = kernel_.NewNetns();
  auto ep = d.CreateEndpoint(Ep("mv10", "a", c1.get(), "10.30.0.2/24"));
  ASSERT_TRUE(ep.ok()) << ep.status();
  auto ctr = *kernel_.factory().Open(c1.get());
  auto eth0 = ctr->GetLink("eth0");
  ASSERT_TRUE(eth0.ok());
  EXPECT_EQ(eth0->kind, LinkKind::kMacvlan);
  EXPECT_EQ(eth0->macvlan.mode, kernel::MacvlanMode::kBridge);
  ASSERT_TRUE(d.DeleteNetwork("mv10").ok());
  EXPECT_FALSE(ctr->GetLink("eth0").ok());
  EXPECT_TRUE(HasLink("eth0.10"));  // still used by mv10b
  ASSERT_TRUE(d.DeleteNetwork("mv10b").ok());
  EXPECT_FALSE(HasLink("eth0.10"));
  EXPECT_TRUE(HasLink("eth0"));
}

TEST_F(DriversFakeTest, MacvlanBadInputIsClearAndLeavesNothing) {
  MacvlanDriver d({node_.get()}, kernel_.factory(), random_);
  NetworkSpec n;
  n.id = "mv";
  n.subnet = *IpPrefix::Parse("10.30.0.0/24");
  auto st = d.CreateNetwork(n);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("option parent is required"), absl::string_view::npos);
  n.options = {{"parent", "eth9"}};
  st = d.CreateNetwork(n);
  EXPECT_EQ(st.code(), absl::StatusCode::kNotFound);
  EXPECT_NE(st.message().find("eth9"), absl::string_view::npos);
  n.options = {{"parent", "eth9.5"}};
  EXPECT_EQ(d.CreateNetwork(n).code(), absl::StatusCode::kNotFound);
  EXPECT_FALSE(HasLink("eth9.5"));
  n.options = {{"parent", "eth0.5000"}};
  EXPECT_EQ(d.CreateNetwork(n).code(), absl::StatusCode::kInvalidArgument);
  n.options = {{"parent", "eth0"}, {"mode", "sideways"}};
  st = d.CreateNetwork(n);
  EXPECT_NE(st.message().find("sideways"), absl::string_view::npos);
  n.options = {{"parent", "eth0"}, {"mode", "passthru"}};
  ASSERT_TRUE(d.CreateNetwork(n).ok());
  NetworkSpec other = n;
  other.id = "mv2";
  other.options = {{"parent", "eth0"}};
  EXPECT_EQ(d.CreateNetwork(other).code(), absl::StatusCode::kFailedPrecondition);
  base::UniqueFd c1 = kernel_.NewNetns(), c2 = kernel_.NewNetns();
  ASSERT_TRUE(d.CreateEndpoint(Ep("mv", "a", c1.get(), "10.30.0.2/24")).ok());
  EXPECT_EQ(d.CreateEndpoint(Ep("mv", "b", c2.get(), "10.30.0.3/24")).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ((*kernel_.factory().Open(c2.get()))->ListLinks()->size(), 1u);
}

TEST_F(DriversFakeTest, AnEndpointOverlappingTheContainersOtherNetworkIsRefused) {
  MacvlanDriver d({node_.get()}, kernel_.factory(), random_);
  NetworkSpec a;
  a.id = "mva";
  a.subnet = *IpPrefix::Parse("10.30.0.0/24");
  a.options = {{"parent", "eth0"}};
  NetworkSpec b = a;
  b.id = "mvb";
  b.subnet = *IpPrefix::Parse("10.30.0.0/16");
  ASSERT_TRUE(d.CreateNetwork(a).ok());
  ASSERT_TRUE(d.CreateNetwork(b).ok());
  base::UniqueFd c = kernel_.NewNetns();
  ASSERT_TRUE(d.CreateEndpoint(Ep("mva", "a", c.get(), "10.30.0.2/24")).ok());
  EndpointSpec second = Ep("mvb", "b", c.get(), "10.30.7.2/16");
  second.ifname = "eth1";
  second.default_route = false;
  auto st = d.CreateEndpoint(second).status();
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << st;
  EXPECT_NE(st.message().find("endpoint b: subnet 10.30.0.0/16 overlaps the container's address "
                              "10.30.0.2/24 on eth0"),
            absl::string_view::npos)
      << st;
  auto ctr = *kernel_.factory().Open(c.get());
  EXPECT_FALSE(ctr->GetLink("eth1").ok());
  // A route the container already has counts too (here: its default route's gateway network
  // is fine, a /16 route covering the new subnet is not).
  base::UniqueFd c2 = kernel_.NewNetns();
  auto ctr2 = *kernel_.factory().Open(c2.get());
  kernel::LinkSpec dummy;
  dummy.kind = LinkKind::kDummy;
  dummy.name = "dummy0";
  auto dl = ctr2->CreateLink(dummy);
  ASSERT_TRUE(dl.ok());
  ASSERT_TRUE(ctr2->AddRoute({*IpPrefix::Parse("10.30.0.0/20"), IpAddr{}, dl->index}).ok());
  st = d.CreateEndpoint(Ep("mva", "c", c2.get(), "10.30.0.3/24")).status();
  EXPECT_NE(st.message().find("overlaps the container's route to 10.30.0.0/20"),
            absl::string_view::npos)
      << st;
  EXPECT_FALSE(ctr2->GetLink("eth0").ok());
}

}  // namespace
}  // namespace shoal::netdrv
