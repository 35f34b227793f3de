// ServeContainer/StopServing: the endpoint and its :53 DNAT come and go together (FakeNft for
// the container's nftables; the resolver in the test's own namespace on 127.0.0.1).
#include "dns/container_dns.h"

#include "dns/redirect.h"
#include "gtest/gtest.h"
#include "kernel/nft/fake_nft.h"

namespace shoal::dns {
namespace {

namespace nft = kernel::nft;

class ContainerDnsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto r = Resolver::Start(&table_);
    ASSERT_TRUE(r.ok()) << r.status();
    resolver_ = *std::move(r);
    spec_.id = "c1";
    spec_.listen_ip = "127.0.0.1";
    spec_.networks = {"net"};
  }
  bool HasRedirect() { return nft_.GetTable({nft::Family::kIp, kRedirectTable}).ok(); }

  RecordTable table_;
  std::unique_ptr<Resolver> resolver_;
  nft::FakeNft nft_;
  EndpointSpec spec_;
};

TEST_F(ContainerDnsTest, ServesAndRedirectsThenStopsBoth) {
  auto bound = ServeContainer(*resolver_, nft_, spec_);
  ASSERT_TRUE(bound.ok()) << bound.status();
  auto t = nft_.GetTable({nft::Family::kIp, kRedirectTable});
  ASSERT_TRUE(t.ok()) << t.status();
  auto want = RedirectTable("127.0.0.1", bound->port);
  ASSERT_TRUE(want.ok());
  EXPECT_EQ(t->rules.size(), want->rules.size());
  EXPECT_EQ(resolver_->AddEndpoint(spec_).status().code(), absl::StatusCode::kAlreadyExists);
  ASSERT_TRUE(StopServing(*resolver_, &nft_, "c1").ok());
  EXPECT_FALSE(HasRedirect());
  EXPECT_TRUE(StopServing(*resolver_, &nft_, "c1").ok());  // idempotent
  EXPECT_TRUE(StopServing(*resolver_, nullptr, "c1").ok());
}

TEST_F(ContainerDnsTest, FailedRedirectLeavesNoEndpoint) {
  nft_.FailNextApply(absl::PermissionDeniedError("injected"));
  auto bound = ServeContainer(*resolver_, nft_, spec_);
  ASSERT_FALSE(bound.ok());
  EXPECT_NE(bound.status().message().find("dns redirect for c1"), absl::string_view::npos)
      << bound.status();
  EXPECT_FALSE(HasRedirect());
  // The endpoint was removed again: the same id can be added.
  EXPECT_TRUE(ServeContainer(*resolver_, nft_, spec_).ok());
}

TEST_F(ContainerDnsTest, NonLocalListenAddressSaysWhy) {
  spec_.listen_ip = "192.0.2.1";  // TEST-NET-1: not an address of this namespace
  auto bound = ServeContainer(*resolver_, nft_, spec_);
  ASSERT_FALSE(bound.ok());
  EXPECT_NE(bound.status().message().find("is lo up"), absl::string_view::npos) << bound.status();
  EXPECT_FALSE(HasRedirect());
}

}  // namespace
}  // namespace shoal::dns
