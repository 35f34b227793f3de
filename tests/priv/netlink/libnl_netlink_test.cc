// The Netlink contract against the real kernel, inside throwaway namespaces (root only).
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "kernel/netlink/libnl_netlink.h"
#include "kernel/netlink/link_watcher.h"
#include "kernel/netlink/netns.h"
#include "tests/unit/netlink/netlink_contract.h"

namespace shoal::kernel {
namespace {

std::string TestNetnsDir() { return absl::StrCat("/run/sn-netlink-test-", ::getpid()); }

// Deletes the named namespaces and the directory on scope exit, also when an ASSERT returns.
struct Cleanup {
  BindMountNetnsStore* store;
  std::vector<std::string> names;
  ~Cleanup() {
    for (const auto& n : names) (void)store->Delete(n);
    ::rmdir(store->dir().c_str());
  }
};

struct RealEnv {
  LibnlNetlinkFactory f;
  BindMountNetnsStore s{TestNetnsDir()};
  NetlinkFactory& factory() { return f; }
  NetnsStore& store() { return s; }
  bool Skip() { return ::geteuid() != 0; }
  ~RealEnv() { ::rmdir(s.dir().c_str()); }
};

}  // namespace

namespace contract {
using Envs = ::testing::Types<RealEnv>;
INSTANTIATE_TYPED_TEST_SUITE_P(Kernel, NetlinkContractTest, Envs);
}  // namespace contract

namespace {

TEST(NetnsStoreTest, CreateOpenListDeleteAndLoopbackIsUp) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  BindMountNetnsStore store(TestNetnsDir());
  Cleanup cleanup{&store, {"sn-a"}};
  auto fd = store.Create("sn-a");
  ASSERT_TRUE(fd.ok()) << fd.status();
  EXPECT_EQ(store.Create("sn-a").status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(*store.List(), std::vector<std::string>{"sn-a"});
  LibnlNetlinkFactory f;
  auto nl = f.Open(fd->get());
  ASSERT_TRUE(nl.ok());
  auto lo = (*nl)->GetLink("lo");
  ASSERT_TRUE(lo.ok());
  EXPECT_TRUE(lo->up);
  auto self = OpenCurrentNetns();
  ASSERT_TRUE(self.ok());
  EXPECT_NE(*NetnsId(fd->get()), *NetnsId(self->get()));
  ASSERT_TRUE(store.Delete("sn-a").ok());
  EXPECT_EQ(store.Open("sn-a").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store.Delete("sn-a").code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store.Create("../x").status().code(), absl::StatusCode::kInvalidArgument);
  ::rmdir(store.dir().c_str());
}

TEST(LinkWatcherTest, ReportsNewAndDeletedLinks) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  BindMountNetnsStore store(TestNetnsDir());
  Cleanup cleanup{&store, {"sn-w"}};
  auto fd = store.Create("sn-w");
  ASSERT_TRUE(fd.ok()) << fd.status();
  auto w = LinkWatcher::Open(fd->get());
  ASSERT_TRUE(w.ok()) << w.status();
  LibnlNetlinkFactory f;
  auto nl = *f.Open(fd->get());
  LinkSpec d;
  d.kind = LinkKind::kBridge;
  d.name = "ev0";
  auto l = nl->CreateLink(d);
  ASSERT_TRUE(l.ok());
  ASSERT_TRUE(nl->DeleteLink(l->index).ok());
  bool saw_new = false, saw_del = false;
  for (int i = 0; i < 50 && !(saw_new && saw_del); ++i) {
    auto evs = (*w)->Poll(std::chrono::milliseconds(100));
    ASSERT_TRUE(evs.ok()) << evs.status();
    for (const LinkEvent& e : *evs) {
      if (e.link.name != "ev0") continue;
      if (e.type == LinkEvent::Type::kNew) saw_new = true;
      if (e.type == LinkEvent::Type::kDel) saw_del = true;
    }
  }
  EXPECT_TRUE(saw_new);
  EXPECT_TRUE(saw_del);
  w->reset();
  ASSERT_TRUE(store.Delete("sn-w").ok());
  ::rmdir(store.dir().c_str());
}

}  // namespace
}  // namespace shoal::kernel
