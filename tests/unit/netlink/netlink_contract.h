// Contract tests for a Netlink implementation: the same cases run against FakeKernel (unit tier,
// tests/unit/netlink/fake_netlink_test.cc) and the real kernel (priv tier,
// tests/priv/netlink/libnl_netlink_test.cc), so the fake keeps the real semantics.
//
// An Env provides: NetlinkFactory& factory(); NetnsStore& store(); bool Skip() (true when the
// environment cannot run, e.g. not root). Every case works inside two throwaway namespaces.
#pragma once

#include <sys/socket.h>

#include <algorithm>
#include <string>

#include "gtest/gtest.h"
#include "kernel/netlink/netlink.h"
#include "kernel/netlink/netns.h"

namespace shoal::kernel::contract {

template <typename Env>
class NetlinkContractTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (env_.Skip()) GTEST_SKIP() << "environment cannot run this tier";
    auto h = env_.store().Create(host_name_);
    ASSERT_TRUE(h.ok()) << h.status();
    host_ = std::move(*h);
    auto c = env_.store().Create(ctr_name_);
    ASSERT_TRUE(c.ok()) << c.status();
    ctr_ = std::move(*c);
    auto nl = env_.factory().Open(host_.get());
    ASSERT_TRUE(nl.ok()) << nl.status();
    nl_ = std::move(*nl);
    auto cnl = env_.factory().Open(ctr_.get());
    ASSERT_TRUE(cnl.ok()) << cnl.status();
    cnl_ = std::move(*cnl);
  }
  void TearDown() override {
    nl_.reset();
    cnl_.reset();
    if (host_) (void)env_.store().Delete(host_name_);
    if (ctr_) (void)env_.store().Delete(ctr_name_);
  }

  Link MustCreate(const LinkSpec& spec) {
    auto l = nl_->CreateLink(spec);
    EXPECT_TRUE(l.ok()) << l.status();
    return l.ok() ? *l : Link{};
  }
  // A plain link to use as parent/underlay: a veth pair (kernels without the dummy driver exist,
  // e.g. the development machine's).
  static LinkSpec Plain(std::string name) {
    LinkSpec s = Spec(LinkKind::kVeth, name);
    s.veth.peer_name = name + "p";
    return s;
  }
  static LinkSpec Spec(LinkKind kind, std::string name) {
    LinkSpec s;
    s.kind = kind;
    s.name = std::move(name);
    return s;
  }
  bool HasLink(Netlink& nl, const std::string& name) { return nl.GetLink(name).ok(); }

  Env env_;
  std::string host_name_ = "sn-ct-host";
  std::string ctr_name_ = "sn-ct-ctr";
  base::UniqueFd host_, ctr_;
  std::unique_ptr<Netlink> nl_, cnl_;
};

TYPED_TEST_SUITE_P(NetlinkContractTest);

TYPED_TEST_P(NetlinkContractTest, VethPeerIsCreatedDirectlyInTheTargetNamespace) {
  Link br = this->MustCreate(this->Spec(LinkKind::kBridge, "br0"));
  LinkSpec v = this->Spec(LinkKind::kVeth, "ve-a");
  v.mtu = 1450;
  v.veth.peer_name = "eth0";
  v.veth.peer_netns_fd = this->ctr_.get();
  v.veth.peer_mac = *MacAddr::Parse("02:42:0a:00:00:02");
  Link ve = this->MustCreate(v);
  EXPECT_EQ(ve.kind, LinkKind::kVeth);
  EXPECT_EQ(ve.mtu, 1450u);
  ASSERT_TRUE(this->nl_->SetLinkMaster(ve.index, br.index).ok());
  ASSERT_TRUE(this->nl_->SetLinkUp(ve.index, true).ok());
  auto eth0 = this->cnl_->GetLink("eth0");
  ASSERT_TRUE(eth0.ok()) << eth0.status();
  EXPECT_EQ(eth0->mac.ToString(), "02:42:0a:00:00:02");
  EXPECT_EQ(eth0->mtu, 1450u);
  EXPECT_FALSE(this->HasLink(*this->nl_, "eth0"));
  auto again = this->nl_->GetLinkByIndex(ve.index);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->master_index, br.index);
  EXPECT_TRUE(again->up);
  // Deleting one end deletes the other.
  ASSERT_TRUE(this->cnl_->DeleteLink(eth0->index).ok());
  EXPECT_FALSE(this->HasLink(*this->nl_, "ve-a"));
}

TYPED_TEST_P(NetlinkContractTest, DuplicateNameIsAlreadyExistsAndCreatesNothing) {
  this->MustCreate(this->Plain("dup0"));
  auto again = this->nl_->CreateLink(this->Spec(LinkKind::kBridge, "dup0"));
  EXPECT_EQ(again.status().code(), absl::StatusCode::kAlreadyExists) << again.status();
  EXPECT_NE(again.status().message().find("dup0"), absl::string_view::npos);
  // A veth whose peer name is taken in the peer namespace leaves no host end behind.
  LinkSpec taken = this->Plain("eth0");
  taken.netns_fd = this->ctr_.get();
  this->MustCreate(taken);
  LinkSpec v = this->Spec(LinkKind::kVeth, "ve-b");
  v.veth.peer_name = "eth0";
  v.veth.peer_netns_fd = this->ctr_.get();
  auto veth = this->nl_->CreateLink(v);
  EXPECT_EQ(veth.status().code(), absl::StatusCode::kAlreadyExists) << veth.status();
  EXPECT_FALSE(this->HasLink(*this->nl_, "ve-b"));
}

TYPED_TEST_P(NetlinkContractTest, BadSpecsAreInvalidArgumentNamingTheField) {
  LinkSpec vx = this->Spec(LinkKind::kVxlan, "vx0");
  vx.vxlan.vni = 1u << 24;
  auto r = this->nl_->CreateLink(vx);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("VNI"), absl::string_view::npos) << r.status();
  LinkSpec longname = this->Spec(LinkKind::kBridge, "a-name-longer-than-15");
  EXPECT_EQ(this->nl_->CreateLink(longname).status().code(), absl::StatusCode::kInvalidArgument);
  LinkSpec mv = this->Spec(LinkKind::kMacvlan, "mv0");
  EXPECT_EQ(this->nl_->CreateLink(mv).status().code(), absl::StatusCode::kInvalidArgument);
  LinkSpec orphan = this->Spec(LinkKind::kMacvlan, "mv1");
  orphan.parent_index = 9999;
  EXPECT_EQ(this->nl_->CreateLink(orphan).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(this->nl_->DeleteLink(9999).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(this->nl_->GetLink("nope").status().code(), absl::StatusCode::kNotFound);
}

TYPED_TEST_P(NetlinkContractTest, VxlanAttributesRoundTripAndVniIsUniquePerSourceNamespace) {
  LinkSpec ul = this->Plain("ul0");
  ul.mtu = 1500;
  ul.up = true;
  Link under = this->MustCreate(ul);
  ASSERT_TRUE(this->nl_->AddAddress({under.index, *IpPrefix::Parse("192.168.99.1/24")}).ok());
  LinkSpec vx = this->Spec(LinkKind::kVxlan, "vxlan0");
  vx.netns_fd = this->ctr_.get();  // created from here, placed into the sandbox
  vx.vxlan.vni = 4097;
  vx.vxlan.port = 4790;
  vx.vxlan.learning = false;
  vx.vxlan.proxy = true;
  vx.vxlan.local = *IpAddr::Parse("192.168.99.1");
  vx.vxlan.underlay_index = under.index;
  vx.mtu = 1450;
  Link v = this->MustCreate(vx);
  EXPECT_EQ(v.kind, LinkKind::kVxlan);
  EXPECT_EQ(v.vxlan.vni, 4097u);
  EXPECT_EQ(v.vxlan.port, 4790);
  EXPECT_FALSE(v.vxlan.learning);
  EXPECT_TRUE(v.vxlan.proxy);
  EXPECT_EQ(v.vxlan.local.ToString(), "192.168.99.1");
  EXPECT_EQ(v.mtu, 1450u);
  EXPECT_TRUE(this->cnl_->GetLink("vxlan0").ok());
  EXPECT_FALSE(this->HasLink(*this->nl_, "vxlan0"));
  LinkSpec dup = vx;
  dup.name = "vxlan1";
  dup.netns_fd = -1;
  EXPECT_EQ(this->nl_->CreateLink(dup).status().code(), absl::StatusCode::kAlreadyExists);
  LinkSpec big = vx;
  big.name = "vxlan2";
  big.vxlan.vni = 4098;
  big.mtu = 1451;
  big.netns_fd = -1;
  // The kernel clamps a vxlan MTU to what the underlay can carry (underlay - 50).
  auto clamped = this->nl_->CreateLink(big);
  ASSERT_TRUE(clamped.ok()) << clamped.status();
  EXPECT_EQ(clamped->mtu, 1450u);
}

TYPED_TEST_P(NetlinkContractTest, MacvlanAndVlanChildrenDieWithTheirParent) {
  LinkSpec p = this->Plain("par0");
  p.up = true;
  Link parent = this->MustCreate(p);
  LinkSpec vl = this->Spec(LinkKind::kVlan, "par0.10");
  vl.parent_index = parent.index;
  vl.vlan.id = 10;
  auto vlan = this->nl_->CreateLink(vl);
  // Kernels built without CONFIG_VLAN_8021Q answer EOPNOTSUPP: UNIMPLEMENTED, never a crash.
  bool have_vlan = vlan.status().code() != absl::StatusCode::kUnimplemented;
  if (have_vlan) {
    ASSERT_TRUE(vlan.ok()) << vlan.status();
    EXPECT_EQ(vlan->kind, LinkKind::kVlan);
    EXPECT_EQ(vlan->vlan.id, 10);
  }
  LinkSpec mv = this->Spec(LinkKind::kMacvlan, "eth0");
  mv.parent_index = parent.index;
  mv.netns_fd = this->ctr_.get();
  mv.macvlan.mode = MacvlanMode::kPrivate;
  Link m = this->MustCreate(mv);
  EXPECT_EQ(m.kind, LinkKind::kMacvlan);
  EXPECT_EQ(m.macvlan.mode, MacvlanMode::kPrivate);
  ASSERT_TRUE(this->nl_->DeleteLink(parent.index).ok());
  EXPECT_FALSE(this->HasLink(*this->nl_, "par0.10"));
  EXPECT_FALSE(this->HasLink(*this->cnl_, "eth0"));
}

TYPED_TEST_P(NetlinkContractTest, AddressesAndRoutes) {
  LinkSpec d = this->Plain("d0");
  d.up = true;
  Link l = this->MustCreate(d);
  Address a{l.index, *IpPrefix::Parse("10.9.0.2/24")};
  ASSERT_TRUE(this->nl_->AddAddress(a).ok());
  EXPECT_EQ(this->nl_->AddAddress(a).code(), absl::StatusCode::kAlreadyExists);
  auto addrs = this->nl_->ListAddresses();
  ASSERT_TRUE(addrs.ok());
  EXPECT_NE(std::find(addrs->begin(), addrs->end(), a), addrs->end());
  Route def{*IpPrefix::Parse("0.0.0.0/0"), *IpAddr::Parse("10.9.0.1"), l.index};
  ASSERT_TRUE(this->nl_->AddRoute(def).ok()) << this->nl_->AddRoute(def);
  Route far{*IpPrefix::Parse("10.50.0.0/16"), *IpAddr::Parse("172.31.0.1"), 0};
  EXPECT_EQ(this->nl_->AddRoute(far).code(), absl::StatusCode::kInvalidArgument);
  auto routes = this->nl_->ListRoutes(AF_INET);
  ASSERT_TRUE(routes.ok());
  bool found = false;
  for (const Route& r : *routes) {
    if (r.dst.len == 0 && r.gateway.ToString() == "10.9.0.1") found = true;
  }
  EXPECT_TRUE(found);
  ASSERT_TRUE(this->nl_->DeleteRoute(def).ok());
  ASSERT_TRUE(this->nl_->DeleteAddress(a).ok());
  EXPECT_EQ(this->nl_->DeleteAddress(a).code(), absl::StatusCode::kNotFound);
}

TYPED_TEST_P(NetlinkContractTest, FdbAndNeighbourRowsAreReplacedListedAndDeleted) {
  LinkSpec ul = this->Plain("ul0");
  ul.up = true;
  Link under = this->MustCreate(ul);
  LinkSpec vx = this->Spec(LinkKind::kVxlan, "vxlan0");
  vx.vxlan.vni = 5000;
  vx.vxlan.underlay_index = under.index;
  Link v = this->MustCreate(vx);
  Neighbor fdb{NeighFamily::kFdb,
               v.index,
               *IpAddr::Parse("192.168.99.2"),
               *MacAddr::Parse("02:42:0a:00:00:05"),
               true,
               true,
               false};
  ASSERT_TRUE(this->nl_->SetNeighbor(fdb).ok()) << this->nl_->SetNeighbor(fdb);
  Neighbor moved = fdb;
  moved.dst = *IpAddr::Parse("192.168.99.3");
  ASSERT_TRUE(this->nl_->SetNeighbor(moved).ok());
  Neighbor arp{NeighFamily::kArp, v.index, *IpAddr::Parse("10.0.0.5"), fdb.mac, true, false, false};
  ASSERT_TRUE(this->nl_->SetNeighbor(arp).ok()) << this->nl_->SetNeighbor(arp);
  auto rows = this->nl_->ListNeighbors(NeighFamily::kFdb, v.index);
  ASSERT_TRUE(rows.ok());
  int matching = 0;
  for (const Neighbor& n : *rows) {
    if (n.mac == fdb.mac) {
      ++matching;
      EXPECT_EQ(n.dst.ToString(), "192.168.99.3");
      EXPECT_TRUE(n.self);
      EXPECT_TRUE(n.permanent);
    }
  }
  EXPECT_EQ(matching, 1);
  auto arps = this->nl_->ListNeighbors(NeighFamily::kArp, v.index);
  ASSERT_TRUE(arps.ok());
  ASSERT_EQ(arps->size(), 1u);
  EXPECT_EQ((*arps)[0].dst.ToString(), "10.0.0.5");
  EXPECT_EQ((*arps)[0].mac, fdb.mac);
  ASSERT_TRUE(this->nl_->DeleteNeighbor(moved).ok());
  ASSERT_TRUE(this->nl_->DeleteNeighbor(arp).ok());
  EXPECT_EQ(this->nl_->DeleteNeighbor(arp).code(), absl::StatusCode::kNotFound);
  // Deleting the link drops its rows.
  ASSERT_TRUE(this->nl_->SetNeighbor(fdb).ok());
  ASSERT_TRUE(this->nl_->DeleteLink(v.index).ok());
  auto after = this->nl_->ListNeighbors(NeighFamily::kFdb, v.index);
  ASSERT_TRUE(after.ok());
  EXPECT_TRUE(after->empty());
}

TYPED_TEST_P(NetlinkContractTest, MoveLinkRenamesIntoTheOtherNamespace) {
  Link d = this->MustCreate(this->Plain("mv-src"));
  absl::Status moved = this->nl_->MoveLink(d.index, this->ctr_.get(), "moved0");
  ASSERT_TRUE(moved.ok()) << moved;
  EXPECT_FALSE(this->HasLink(*this->nl_, "mv-src"));
  EXPECT_TRUE(this->HasLink(*this->cnl_, "moved0"));
  // Bridges are namespace-local (NETIF_F_NETNS_LOCAL): the kernel refuses to move them.
  Link br = this->MustCreate(this->Spec(LinkKind::kBridge, "br-local"));
  EXPECT_EQ(this->nl_->MoveLink(br.index, this->ctr_.get(), "").code(),
            absl::StatusCode::kInvalidArgument);
}

REGISTER_TYPED_TEST_SUITE_P(NetlinkContractTest, VethPeerIsCreatedDirectlyInTheTargetNamespace,
                            DuplicateNameIsAlreadyExistsAndCreatesNothing,
                            BadSpecsAreInvalidArgumentNamingTheField,
                            VxlanAttributesRoundTripAndVniIsUniquePerSourceNamespace,
                            MacvlanAndVlanChildrenDieWithTheirParent, AddressesAndRoutes,
                            FdbAndNeighbourRowsAreReplacedListedAndDeleted,
                            MoveLinkRenamesIntoTheOtherNamespace);

}  // namespace shoal::kernel::contract
