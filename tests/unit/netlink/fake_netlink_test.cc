#include "kernel/netlink/fake_netlink.h"

#include "gtest/gtest.h"
#include "tests/unit/netlink/netlink_contract.h"

namespace shoal::kernel {
namespace {

struct FakeEnv {
  FakeKernel kernel;
  NetlinkFactory& factory() { return kernel.factory(); }
  NetnsStore& store() { return kernel.netns_store(); }
  bool Skip() { return false; }
};

}  // namespace

namespace contract {
using Envs = ::testing::Types<FakeEnv>;
INSTANTIATE_TYPED_TEST_SUITE_P(Fake, NetlinkContractTest, Envs);
}  // namespace contract

namespace {

TEST(FakeKernelTest, DeletingANamespaceDestroysItsLinksAndVethPeers) {
  FakeKernel k;
  base::UniqueFd ctr = k.NewNetns();
  auto host = k.factory().Open(-1);
  ASSERT_TRUE(host.ok());
  LinkSpec v;
  v.kind = LinkKind::kVeth;
  v.name = "ve-x";
  v.veth.peer_name = "eth0";
  v.veth.peer_netns_fd = ctr.get();
  ASSERT_TRUE((*host)->CreateLink(v).ok());
  EXPECT_EQ(k.NetnsCount(), 1);
  k.DestroyNetns(ctr.get());
  EXPECT_EQ(k.NetnsCount(), 0);
  EXPECT_EQ((*host)->GetLink("ve-x").status().code(), absl::StatusCode::kNotFound);
}

TEST(FakeKernelTest, PassthruMacvlanIsExclusiveOnItsParent) {
  FakeKernel k;
  auto nl = *k.factory().Open(-1);
  LinkSpec p;
  p.kind = LinkKind::kDummy;
  p.name = "p0";
  int parent = nl->CreateLink(p)->index;
  LinkSpec m;
  m.kind = LinkKind::kMacvlan;
  m.name = "m0";
  m.parent_index = parent;
  m.macvlan.mode = MacvlanMode::kPassthru;
  ASSERT_TRUE(nl->CreateLink(m).ok());
  m.name = "m1";
  m.macvlan.mode = MacvlanMode::kBridge;
  EXPECT_FALSE(nl->CreateLink(m).ok());
}

}  // namespace
}  // namespace shoal::kernel
