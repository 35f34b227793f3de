#include "kernel/netlink/types.h"

#include <arpa/inet.h>

#include "gtest/gtest.h"

namespace shoal::kernel {
namespace {

TEST(IpAddrTest, ParsesAndFormatsV4AndV6) {
  auto a = IpAddr::Parse("10.0.3.7");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->family, AF_INET);
  EXPECT_EQ(a->ToString(), "10.0.3.7");
  EXPECT_EQ(*a, IpAddr::V4(10, 0, 3, 7));
  auto b = IpAddr::Parse("fd00::1");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->family, AF_INET6);
  EXPECT_EQ(b->ToString(), "fd00::1");
}

TEST(IpAddrTest, RejectsGarbageNamingTheInput) {
  auto a = IpAddr::Parse("10.0.0.300");
  EXPECT_EQ(a.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(a.status().message().find("10.0.0.300"), absl::string_view::npos);
}

TEST(IpPrefixTest, ParsesNetworkAndContains) {
  auto p = IpPrefix::Parse("10.1.2.3/20");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->len, 20);
  EXPECT_EQ(p->Network().ToString(), "10.1.0.0/20");
  EXPECT_TRUE(p->Contains(IpAddr::V4(10, 1, 15, 255)));
  EXPECT_FALSE(p->Contains(IpAddr::V4(10, 1, 16, 0)));
  auto bare = IpPrefix::Parse("192.168.1.1");
  ASSERT_TRUE(bare.ok());
  EXPECT_EQ(bare->len, 32);
  EXPECT_FALSE(IpPrefix::Parse("10.0.0.0/33").ok());
  EXPECT_FALSE(IpPrefix::Parse("10.0.0.0/x").ok());
  auto v6 = IpPrefix::Parse("fd00:1:2::5/64");
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->Network().ToString(), "fd00:1:2::/64");
}

TEST(MacAddrTest, ParsesAndFormats) {
  auto m = MacAddr::Parse("02:42:0A:00:00:02");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->ToString(), "02:42:0a:00:00:02");
  EXPECT_FALSE(m->is_zero());
  EXPECT_TRUE(MacAddr{}.is_zero());
  EXPECT_FALSE(MacAddr::Parse("02:42:0a:00:00").ok());
  EXPECT_FALSE(MacAddr::Parse("02:42:0a:00:00:zz").ok());
}

}  // namespace
}  // namespace shoal::kernel
