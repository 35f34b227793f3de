// lb::Mesh against FakeKernel + FakeNft (per namespace) with the real overlay and bridge
// drivers: what each sandbox and the node get programmed with, rollback, bad input, teardown.
#include "lb/mesh.h"

#include <map>

#include "gtest/gtest.h"
#include "kernel/netlink/fake_netlink.h"
#include "kernel/nft/fake_nft.h"
#include "netdrv/overlay.h"

namespace shoal::lb {
namespace {

namespace nft = kernel::nft;
using kernel::IpAddr;
using kernel::IpPrefix;

class SharedNft : public nft::Nft {
 public:
  explicit SharedNft(nft::FakeNft* f) : f_(f) {}
  absl::Status Apply(const nft::Batch& b) override { return f_->Apply(b); }
  absl::StatusOr<std::vector<nft::TableRef>> ListTables() override { return f_->ListTables(); }
  absl::StatusOr<nft::Table> GetTable(const nft::TableRef& t) override { return f_->GetTable(t); }

 private:
  nft::FakeNft* f_;
};

netdrv::NetworkSpec Net(const std::string& id, const char* subnet, const char* gw, uint32_t vni) {
  netdrv::NetworkSpec s;
  s.id = id;
  s.subnet = *IpPrefix::Parse(subnet);
  s.gateway = *IpAddr::Parse(gw);
  s.vni = vni;
  return s;
}

class MeshTest : public ::testing::Test {
 protected:
  void SetUp() override {
    node_ = kernel_.NewNetns();
    auto nl = *kernel_.factory().Open(node_.get());
    kernel::LinkSpec eth;
    eth.kind = kernel::LinkKind::kVeth;
    eth.name = "eth0";
    eth.mtu = 1500;
    eth.veth.peer_name = "uplink";
    int idx = nl->CreateLink(eth)->index;
    ASSERT_TRUE(nl->AddAddress({idx, *IpPrefix::Parse("192.168.0.1/24")}).ok());
    netdrv::OverlayConfig oc;
    oc.node_netns_fd = node_.get();
    oc.vtep = *IpAddr::Parse("192.168.0.1");
    overlay_ =
        *netdrv::OverlayDriver::Create(oc, kernel_.factory(), kernel_.netns_store(), random_);
    netdrv::BridgeConfig bc;
    bc.node_netns_fd = node_.get();
    bc.sysctl = [](int, absl::string_view, absl::string_view) { return absl::OkStatus(); };
    bridge_ = *netdrv::BridgeDriver::Create(bc, kernel_.factory(), node_nft_, random_);
    ASSERT_TRUE(overlay_->CreateNetwork(Net("app", "10.20.1.0/24", "10.20.1.1", 4101)).ok());
    ASSERT_TRUE(overlay_->CreateNetwork(Net("ingress", "10.255.0.0/24", "10.255.0.1", 4100)).ok());
    ASSERT_TRUE(bridge_->CreateNetwork(Net("gw", "172.18.0.0/16", "172.18.0.1", 0)).ok());
    baseline_ns_ = kernel_.NetnsCount();

    MeshConfig c;
    c.node_netns_fd = node_.get();
    c.deps.store = &kernel_.netns_store();
    c.deps.netlink = &kernel_.factory();
    c.deps.open_nft = [this](int fd) -> absl::StatusOr<std::unique_ptr<nft::Nft>> {
      auto id = kernel::NetnsId(fd);
      if (!id.ok()) return id.status();
      auto& f = sandbox_nft_[*id];
      if (!f) f = std::make_unique<nft::FakeNft>();
      return std::unique_ptr<nft::Nft>(new SharedNft(f.get()));
    };
    c.deps.sysctl = [this](int, absl::string_view k, absl::string_view v) {
      sysctls_.push_back(std::string(k) + "=" + std::string(v));
      return absl::OkStatus();
    };
    c.overlay = overlay_.get();
    c.gateway = bridge_.get();
    c.gateway_network_id = "gw";
    c.node_nft = &node_nft_;
    mesh_ = *Mesh::Create(c);
    ASSERT_TRUE(mesh_->AddNetwork({"app", *IpPrefix::Parse("10.20.1.201/24")}).ok());
    ASSERT_TRUE(mesh_
                    ->EnableIngress({"ingress", *IpPrefix::Parse("10.255.0.201/24"),
                                     *IpPrefix::Parse("172.18.0.2/16")})
                    .ok());
  }
  void TearDown() override {
    if (mesh_) {
      EXPECT_TRUE(mesh_->Destroy().ok());
    }
  }

  ServiceConfig Web() {
    ServiceConfig s;
    s.name = "web";
    s.network_id = "app";
    s.vip = "10.20.1.100";
    s.ports = {{Protocol::kTcp, 80, 8080, PublishMode::kIngress}};
    for (int i = 1; i <= 3; ++i) {
      TaskEndpoint t;
      t.id = "t" + std::to_string(i);
      t.ip = "10.20.1.1" + std::to_string(i);
      t.ingress_ip = "10.255.0.1" + std::to_string(i);
      s.tasks.push_back(t);
    }
    return s;
  }
  nft::FakeNft& NftOf(LbSandbox* sb) { return *sandbox_nft_.at(*kernel::NetnsId(sb->fd())); }
  size_t Elements(nft::Nft& n, const std::string& table, const std::string& set) {
    auto t = n.GetTable({nft::Family::kIp, table});
    if (!t.ok()) return 0;
    for (const auto& s : t->sets) {
      if (s.name == set) return s.elements.size();
    }
    return 0;
  }
  std::vector<std::string> Addresses(LbSandbox* sb) {
    std::vector<std::string> out;
    auto nl = *kernel_.factory().Open(sb->fd());
    auto listed = nl->ListAddresses();
    if (!listed.ok()) return out;
    std::vector<kernel::Address> all = *std::move(listed);
    for (const auto& a : all) out.push_back(a.prefix.ToString());
    return out;
  }
  bool HasAddress(LbSandbox* sb, const std::string& a) {
    auto all = Addresses(sb);
    return std::find(all.begin(), all.end(), a) != all.end();
  }

  kernel::FakeKernel kernel_;
  base::FakeRandom random_{7};
  base::UniqueFd node_;
  nft::FakeNft node_nft_;
  std::map<uint64_t, std::unique_ptr<nft::FakeNft>> sandbox_nft_;
  std::vector<std::string> sysctls_;
  std::unique_ptr<netdrv::OverlayDriver> overlay_;
  std::unique_ptr<netdrv::BridgeDriver> bridge_;
  std::unique_ptr<Mesh> mesh_;
  int baseline_ns_ = 0;
};

TEST_F(MeshTest, ProgramsVipSandboxIngressSandboxAndNodeTable) {
  ASSERT_TRUE(mesh_->SetServices({Web()}).ok());
  LbSandbox* lb = mesh_->sandbox("app");
  ASSERT_NE(lb, nullptr);
  EXPECT_TRUE(HasAddress(lb, "10.20.1.100/32"));
  EXPECT_TRUE(HasAddress(lb, "10.20.1.201/24"));
  EXPECT_EQ(Elements(NftOf(lb), "shoal-lb", "vip-random"), 61u);  // one service, 61 slots
  EXPECT_EQ(Elements(NftOf(mesh_->ingress_sandbox()), "shoal-lb", "pub-random"), 61u);
  EXPECT_EQ(Elements(node_nft_, "shoal-ingress", "ingress-ports"), 1u);
  // Masquerade of translated flows out of the LB leg, in both sandboxes.
  auto t = *NftOf(lb).GetTable({nft::Family::kIp, "shoal-lb"});
  bool masq = false;
  for (const auto& r : t.rules) masq |= r.chain == "postrouting";
  EXPECT_TRUE(masq);
  for (const char* want : {"net/ipv4/ip_forward=1", "net/ipv4/conf/all/send_redirects=0"}) {
    EXPECT_NE(std::find(sysctls_.begin(), sysctls_.end(), want), sysctls_.end()) << want;
  }
}

TEST_F(MeshTest, RemovingTheServiceRemovesVipElementsAndPort) {
  ASSERT_TRUE(mesh_->SetServices({Web()}).ok());
  ASSERT_TRUE(mesh_->SetServices({}).ok());
  LbSandbox* lb = mesh_->sandbox("app");
  EXPECT_FALSE(HasAddress(lb, "10.20.1.100/32"));
  EXPECT_EQ(Elements(NftOf(lb), "shoal-lb", "vip-random"), 0u);
  EXPECT_EQ(Elements(NftOf(mesh_->ingress_sandbox()), "shoal-lb", "pub-random"), 0u);
  EXPECT_EQ(Elements(node_nft_, "shoal-ingress", "ingress-ports"), 0u);
}

TEST_F(MeshTest, DrainedTaskOwnsNoSlotAndAllDrainedHasNone) {
  ServiceConfig s = Web();
  s.tasks[0].draining = true;
  ASSERT_TRUE(mesh_->SetServices({s}).ok());
  auto t = *NftOf(mesh_->sandbox("app")).GetTable({nft::Family::kIp, "shoal-lb"});
  for (const auto& set : t.sets) {
    if (set.name != "vip-random") continue;
    for (const auto& e : set.elements) EXPECT_NE(e.data[0], nft::Ipv4("10.20.1.11"));
  }
  for (auto& task : s.tasks) task.draining = true;
  ASSERT_TRUE(mesh_->SetServices({s}).ok());
  EXPECT_EQ(Elements(NftOf(mesh_->sandbox("app")), "shoal-lb", "vip-random"), 0u);
  // The VIP stays a local address: new connections are refused, not black-holed.
  EXPECT_TRUE(HasAddress(mesh_->sandbox("app"), "10.20.1.100/32"));
}

TEST_F(MeshTest, FailedBatchLeavesNoNewVipBehind) {
  ASSERT_TRUE(mesh_->SetServices({Web()}).ok());
  ServiceConfig other = Web();
  other.name = "other";
  other.vip = "10.20.1.101";
  other.ports = {{Protocol::kTcp, 81, 0}};
  NftOf(mesh_->sandbox("app")).FailNextApply(absl::UnavailableError("injected"));
  EXPECT_FALSE(mesh_->SetServices({Web(), other}).ok());
  EXPECT_FALSE(HasAddress(mesh_->sandbox("app"), "10.20.1.101/32"));
  EXPECT_TRUE(HasAddress(mesh_->sandbox("app"), "10.20.1.100/32"));
  // The next call converges.
  ASSERT_TRUE(mesh_->SetServices({Web(), other}).ok());
  EXPECT_TRUE(HasAddress(mesh_->sandbox("app"), "10.20.1.101/32"));
}

void ExpectError(const absl::Status& st, absl::StatusCode code, const std::string& part) {
  EXPECT_EQ(st.code(), code) << st;
  EXPECT_NE(std::string(st.message()).find(part), std::string::npos) << st;
}

TEST_F(MeshTest, BadInputNamesTheFieldAndChangesNothing) {
  ASSERT_TRUE(mesh_->SetServices({Web()}).ok());
  ServiceConfig s = Web();
  s.vip = "10.99.0.5";
  ExpectError(mesh_->SetServices({s}), absl::StatusCode::kInvalidArgument,
              "service web: vip 10.99.0.5 is outside the subnet 10.20.1.0/24 of network app");
  s = Web();
  s.vip = "10.20.1.201";
  ExpectError(mesh_->Validate({s}), absl::StatusCode::kInvalidArgument,
              "service web: vip 10.20.1.201 is the LB sandbox's own address");
  s = Web();
  s.tasks.clear();
  ExpectError(mesh_->Validate({s}), absl::StatusCode::kInvalidArgument,
              "service web: tasks: empty backend set");
  s = Web();
  s.endpoint_mode = EndpointMode::kDnsrr;
  s.vip = "";
  ExpectError(mesh_->Validate({s}), absl::StatusCode::kInvalidArgument,
              "service web: ports[0]: a port published in ingress mode cannot be used with "
              "endpoint_mode dnsrr");
  s = Web();
  s.name = "b";
  s.vip = "10.20.1.102";
  s.ports[0].mode = PublishMode::kHost;
  ExpectError(mesh_->Validate({Web(), s}), absl::StatusCode::kFailedPrecondition,
              "port conflict: ports[0].published_port tcp/8080 of service b (host) is already "
              "published by service web (ingress)");
  s = Web();
  s.tasks[1].ingress_ip = "";
  ExpectError(mesh_->Validate({s}), absl::StatusCode::kInvalidArgument,
              "service web: task t2: ingress_ip: required");
  s = Web();
  s.ports[0].target_port = 0;
  ExpectError(mesh_->Validate({s}), absl::StatusCode::kInvalidArgument,
              "service web: ports[0].target_port: must be 1-65535");
  s = Web();
  s.name = "Web!";
  ExpectError(mesh_->Validate({s}), absl::StatusCode::kInvalidArgument, "service name \"Web!\"");
  EXPECT_EQ(Elements(NftOf(mesh_->sandbox("app")), "shoal-lb", "vip-random"), 61u);
  EXPECT_TRUE(HasAddress(mesh_->sandbox("app"), "10.20.1.100/32"));
}

TEST_F(MeshTest, ReconcileRepairsHandEdits) {
  ASSERT_TRUE(mesh_->SetServices({Web()}).ok());
  LbSandbox* lb = mesh_->sandbox("app");
  ASSERT_TRUE(nft::DeleteTableIfExists(NftOf(lb), {nft::Family::kIp, "shoal-lb"}).ok());
  ASSERT_TRUE(nft::DeleteTableIfExists(node_nft_, {nft::Family::kIp, "shoal-ingress"}).ok());
  auto nl = *kernel_.factory().Open(lb->fd());
  int eth0 = nl->GetLink("eth0")->index;
  ASSERT_TRUE(nl->DeleteAddress({eth0, *IpPrefix::Parse("10.20.1.100/32")}).ok());
  ASSERT_TRUE(mesh_->Reconcile().ok());
  EXPECT_TRUE(HasAddress(lb, "10.20.1.100/32"));
  EXPECT_EQ(Elements(NftOf(lb), "shoal-lb", "vip-random"), 61u);
  EXPECT_EQ(Elements(node_nft_, "shoal-ingress", "ingress-ports"), 1u);
}

TEST_F(MeshTest, DestroyLeavesNothing) {
  ASSERT_TRUE(mesh_->SetServices({Web()}).ok());
  EXPECT_GT(kernel_.NetnsCount(), baseline_ns_);
  ASSERT_TRUE(mesh_->Destroy().ok());
  EXPECT_EQ(kernel_.NetnsCount(), baseline_ns_);
  EXPECT_EQ(node_nft_.GetTable({nft::Family::kIp, "shoal-ingress"}).status().code(),
            absl::StatusCode::kNotFound);
  // The drivers forgot the sandboxes' endpoints: the networks delete cleanly.
  EXPECT_TRUE(overlay_->DeleteNetwork("app").ok());
  EXPECT_TRUE(overlay_->DeleteNetwork("ingress").ok());
  EXPECT_TRUE(bridge_->DeleteNetwork("gw").ok());
}

}  // namespace
}  // namespace shoal::lb
