#include "manager/allocator/allocator.h"

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace shoal::manager::allocator {
namespace {

api::Network MakeNetwork(const std::string& id, const std::string& subnet = "",
                         bool ingress = false) {
  api::Network n;
  n.set_id(id);
  n.mutable_spec()->mutable_annotations()->set_name("net-" + id);
  n.mutable_spec()->set_ingress(ingress);
  if (!subnet.empty()) n.mutable_spec()->mutable_ipam()->add_configs()->set_subnet(subnet);
  return n;
}

api::Service MakeService(const std::string& id, std::vector<std::string> nets,
                         std::vector<uint32_t> ingress_ports = {}) {
  api::Service s;
  s.set_id(id);
  s.mutable_spec()->mutable_annotations()->set_name(id);
  for (const auto& n : nets) s.mutable_spec()->mutable_task()->add_networks()->set_target(n);
  for (uint32_t p : ingress_ports) {
    auto* port = s.mutable_spec()->mutable_endpoint()->add_ports();
    port->set_target_port(80);
    port->set_published_port(p);
  }
  return s;
}

class AllocatorTest : public ::testing::Test {
 protected:
  void SetUp() override { alloc_ = std::make_unique<Allocator>(*Allocator::Create(config_)); }
  api::Network Net(const std::string& id, const std::string& subnet = "", bool ingress = false) {
    auto n = alloc_->AllocateNetwork(MakeNetwork(id, subnet, ingress));
    EXPECT_TRUE(n.ok()) << n.status();
    nets_[id] = *n;
    return *n;
  }
  AllocatorConfig config_;
  std::unique_ptr<Allocator> alloc_;
  std::map<std::string, api::Network> nets_;
};

TEST_F(AllocatorTest, NetworksGetSubnetsGatewaysAndVnis) {
  auto a = Net("a");
  EXPECT_EQ(a.ipam().configs(0).subnet(), "10.0.0.0/24");
  EXPECT_EQ(a.ipam().configs(0).gateway(), "10.0.0.1");
  EXPECT_EQ(a.driver_state().options().at("vni"), "4096");
  auto b = Net("b");
  EXPECT_EQ(b.ipam().configs(0).subnet(), "10.0.1.0/24");
  EXPECT_EQ(b.driver_state().options().at("vni"), "4097");
  auto c = Net("c", "192.168.7.0/24");
  EXPECT_EQ(c.ipam().configs(0).gateway(), "192.168.7.1");
  // Allocating an allocated network is a no-op.
  EXPECT_EQ(alloc_->AllocateNetwork(a)->driver_state().options().at("vni"), "4096");
}

TEST_F(AllocatorTest, OverlappingSubnetAndSecondIngressAreRefused) {
  Net("a", "192.168.0.0/16");
  auto bad = alloc_->AllocateNetwork(MakeNetwork("b", "192.168.4.0/24"));
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_NE(bad.status().message().find("net-b"), std::string::npos) << bad.status();
  Net("ing", "", true);
  EXPECT_EQ(alloc_->ingress_network_id(), "ing");
  auto second = alloc_->AllocateNetwork(MakeNetwork("ing2", "", true));
  EXPECT_EQ(second.status().code(), absl::StatusCode::kAlreadyExists);
  auto typo = alloc_->AllocateNetwork(MakeNetwork("x", "10.9.9.1/24"));
  EXPECT_NE(typo.status().message().find("host bits"), std::string::npos) << typo.status();
}

TEST_F(AllocatorTest, VniExhaustionIsAnErrorAndReleaseFreesOne) {
  config_.vni_last = 4097;
  SetUp();
  auto a = Net("a");
  Net("b");
  auto c = alloc_->AllocateNetwork(MakeNetwork("c"));
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(c.status().message().find("VNI"), std::string::npos);
  alloc_->ReleaseNetwork(a);
  auto again = alloc_->AllocateNetwork(MakeNetwork("c"));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->driver_state().options().at("vni"), "4096");
}

TEST_F(AllocatorTest, ServiceGetsVipsAndPublishedPorts) {
  Net("ing", "", true);
  Net("app");
  auto s = alloc_->AllocateService(MakeService("web", {"app"}, {0, 8080, 0}), nets_);
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_EQ(s->endpoint().ports_size(), 3);
  EXPECT_EQ(s->endpoint().ports(0).published_port(), 30000u);
  EXPECT_EQ(s->endpoint().ports(1).published_port(), 8080u);
  EXPECT_EQ(s->endpoint().ports(2).published_port(), 30001u);
  ASSERT_EQ(s->endpoint().virtual_ips_size(), 2);  // app + ingress
  EXPECT_EQ(s->endpoint().virtual_ips(0).network_id(), "app");
  EXPECT_EQ(s->endpoint().virtual_ips(0).addr(), "10.0.1.2/24");
  EXPECT_EQ(s->endpoint().virtual_ips(1).network_id(), "ing");

  auto clash = alloc_->AllocateService(MakeService("api", {"app"}, {8080}), nets_);
  ASSERT_FALSE(clash.ok());
  EXPECT_EQ(clash.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_NE(clash.status().message().find("8080/tcp is already in use by service web"),
            std::string::npos)
      << clash.status();
  // The failed allocation took nothing: the next VIP is the one after web's.
  auto ok = alloc_->AllocateService(MakeService("api", {"app"}, {8081}), nets_);
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->endpoint().virtual_ips(0).addr(), "10.0.1.3/24");
  // UDP 8080 is a different port.
  api::Service d = MakeService("dns", {}, {8080});
  d.mutable_spec()->mutable_endpoint()->mutable_ports(0)->set_protocol(api::PortConfig::PROTOCOL_UDP);
  EXPECT_TRUE(alloc_->AllocateService(d, nets_).ok());
}

TEST_F(AllocatorTest, DnsrrWithIngressPortIsRefused) {
  Net("ing", "", true);
  api::Service s = MakeService("web", {}, {80});
  s.mutable_spec()->mutable_endpoint()->set_mode(api::EndpointSpec::RESOLUTION_MODE_DNSRR);
  auto r = alloc_->AllocateService(s, nets_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("VIP mode"), std::string::npos);
}

TEST_F(AllocatorTest, DynamicPortExhaustion) {
  config_.dynamic_port_first = 30000;
  config_.dynamic_port_last = 30001;
  SetUp();
  ASSERT_TRUE(alloc_->AllocateService(MakeService("a", {}, {0, 0}), nets_).ok());
  auto r = alloc_->AllocateService(MakeService("b", {}, {0}), nets_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(r.status().message().find("30000-30001"), std::string::npos);
}

TEST_F(AllocatorTest, UpdatingAServiceKeepsOrReplacesItsAllocation) {
  Net("app");
  auto s = alloc_->AllocateService(MakeService("web", {"app"}, {8080}), nets_);
  ASSERT_TRUE(s.ok());
  // Re-allocating the same service (spec update) may reuse its own port.
  api::Service updated = *s;
  updated.mutable_spec()->mutable_endpoint()->mutable_ports(0)->set_published_port(8080);
  auto again = alloc_->AllocateService(updated, nets_);
  ASSERT_TRUE(again.ok()) << again.status();
  alloc_->ReleaseService(*again);
  EXPECT_TRUE(alloc_->AllocateService(MakeService("other", {}, {8080}), nets_).ok());
}

TEST_F(AllocatorTest, TaskAddressesAndExhaustionOfASmallSubnet) {
  Net("small", "10.99.0.0/29");  // 6 usable: gateway + 5
  api::Service svc = MakeService("web", {"small"});
  std::vector<api::Task> tasks;
  for (int i = 0; i < 5; ++i) {
    api::Task t;
    t.set_id(absl::StrCat("t", i));
    *t.mutable_spec() = svc.spec().task();
    auto r = alloc_->AllocateTask(t, &svc, nets_);
    ASSERT_TRUE(r.ok()) << i << ": " << r.status();
    EXPECT_EQ(r->networks(0).addresses(0), absl::StrCat("10.99.0.", i + 2, "/29"));
    tasks.push_back(*r);
  }
  api::Task extra;
  extra.set_id("extra");
  *extra.mutable_spec() = svc.spec().task();
  auto full = alloc_->AllocateTask(extra, &svc, nets_);
  ASSERT_FALSE(full.ok());
  EXPECT_EQ(full.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(full.status().message().find("net-small"), std::string::npos) << full.status();
  alloc_->ReleaseTask(tasks[2]);
  auto reuse = alloc_->AllocateTask(extra, &svc, nets_);
  ASSERT_TRUE(reuse.ok());
  EXPECT_EQ(reuse->networks(0).addresses(0), "10.99.0.4/29");
}

TEST_F(AllocatorTest, FailedTaskAllocationReleasesPartialAddresses) {
  Net("a");
  Net("full", "10.98.0.0/30");  // gateway + 1
  api::Service svc = MakeService("web", {"a", "full"});
  api::Task t1;
  t1.set_id("t1");
  *t1.mutable_spec() = svc.spec().task();
  ASSERT_TRUE(alloc_->AllocateTask(t1, &svc, nets_).ok());
  api::Task t2 = t1;
  t2.set_id("t2");
  ASSERT_FALSE(alloc_->AllocateTask(t2, &svc, nets_).ok());
  // t2's address on "a" was released: a third allocation on "a" gets .3, not .4.
  api::Service only_a = MakeService("x", {"a"});
  api::Task t3;
  t3.set_id("t3");
  *t3.mutable_spec() = only_a.spec().task();
  // next-fit: .2 went to t1, .3 was taken and released by t2, so .4 is next.
  EXPECT_EQ(alloc_->AllocateTask(t3, &only_a, nets_)->networks(0).addresses(0), "10.0.0.4/24");
}

TEST_F(AllocatorTest, RestoreRebuildsStateSoANewLeaderContinues) {
  Net("ing", "", true);
  Net("app");
  auto svc = alloc_->AllocateService(MakeService("web", {"app"}, {0}), nets_);
  ASSERT_TRUE(svc.ok());
  api::Task t;
  t.set_id("t");
  *t.mutable_spec() = svc->spec().task();
  auto task = alloc_->AllocateTask(t, &*svc, nets_);
  ASSERT_TRUE(task.ok());

  auto fresh = *Allocator::Create(config_);
  for (auto& [_, n] : nets_) ASSERT_TRUE(fresh.RestoreNetwork(n).ok());
  ASSERT_TRUE(fresh.RestoreService(*svc).ok());
  ASSERT_TRUE(fresh.RestoreTask(*task).ok());
  EXPECT_EQ(fresh.ingress_network_id(), "ing");
  // The restored allocator does not hand out what is taken.
  auto clash = fresh.AllocateService(MakeService("api", {}, {svc->endpoint().ports(0).published_port()}), nets_);
  EXPECT_EQ(clash.status().code(), absl::StatusCode::kAlreadyExists);
  auto n3 = fresh.AllocateNetwork(MakeNetwork("n3"));
  ASSERT_TRUE(n3.ok());
  EXPECT_EQ(n3->ipam().configs(0).subnet(), "10.0.2.0/24");
  EXPECT_NE(n3->driver_state().options().at("vni"), nets_["app"].driver_state().options().at("vni"));
  api::Task t2;
  t2.set_id("t2");
  *t2.mutable_spec() = svc->spec().task();
  auto task2 = fresh.AllocateTask(t2, &*svc, nets_);
  ASSERT_TRUE(task2.ok());
  EXPECT_NE(task2->networks(0).addresses(0), task->networks(0).addresses(0));
}

TEST_F(AllocatorTest, EachNodeGetsItsOwnIngressAddressKeptAcrossARestore) {
  api::Node n1, n2;
  n1.set_id("n1");
  n2.set_id("n2");
  EXPECT_FALSE(alloc_->NodeNeedsAllocation(n1));  // no ingress network yet
  Net("ing", "10.255.0.0/24", /*ingress=*/true);
  ASSERT_TRUE(alloc_->NodeNeedsAllocation(n1));
  auto a1 = alloc_->AllocateNode(n1);
  auto a2 = alloc_->AllocateNode(n2);
  ASSERT_TRUE(a1.ok() && a2.ok());
  ASSERT_EQ(a1->attachments_size(), 1);
  EXPECT_EQ(a1->attachments(0).network_id(), "ing");
  EXPECT_EQ(a1->attachments(0).addresses(0).substr(0, 9), "10.255.0.");
  EXPECT_NE(a1->attachments(0).addresses(0), a2->attachments(0).addresses(0));
  EXPECT_FALSE(alloc_->NodeNeedsAllocation(*a1));
  // A task never gets a node's address.
  api::Task t;
  t.set_id("t1");
  auto svc = MakeService("s", {}, {30080});
  auto svc_alloc = alloc_->AllocateService(svc, nets_);
  ASSERT_TRUE(svc_alloc.ok()) << svc_alloc.status();
  auto task = alloc_->AllocateTask(t, &*svc_alloc, nets_);
  ASSERT_TRUE(task.ok()) << task.status();
  for (const auto& att : task->networks()) {
    EXPECT_NE(att.addresses(0), a1->attachments(0).addresses(0));
    EXPECT_NE(att.addresses(0), a2->attachments(0).addresses(0));
  }
  // A new leader restores the address: it is not handed out again.
  auto fresh = *Allocator::Create(config_);
  ASSERT_TRUE(fresh.RestoreNetwork(nets_["ing"]).ok());
  ASSERT_TRUE(fresh.RestoreNode(*a1).ok());
  api::Node n3;
  n3.set_id("n3");
  auto a3 = fresh.AllocateNode(n3);
  ASSERT_TRUE(a3.ok());
  EXPECT_NE(a3->attachments(0).addresses(0), a1->attachments(0).addresses(0));
  // The ingress network goes: the attachment is stale and dropped.
  alloc_->ReleaseNode(*a2);
  alloc_->ReleaseNetwork(nets_["ing"]);
  EXPECT_TRUE(alloc_->NodeNeedsAllocation(*a1));
  auto dropped = alloc_->AllocateNode(*a1);
  ASSERT_TRUE(dropped.ok());
  EXPECT_EQ(dropped->attachments_size(), 0);
}

}  // namespace
}  // namespace shoal::manager::allocator
