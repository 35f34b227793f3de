#include "agent/network.h"

#include "gtest/gtest.h"

namespace shoal::agent {
namespace {

TEST(EmbeddedResolvConfTest, PointsAtTheEmbeddedResolverWithNdotsZero) {
  api::ContainerSpec c;
  EXPECT_EQ(EmbeddedResolvConf(c), "nameserver 127.0.0.11\noptions ndots:0\n");
}

TEST(EmbeddedResolvConfTest, KeepsTheSpecsSearchDomainsAndOptions) {
  api::ContainerSpec c;
  c.mutable_dns_config()->add_nameservers("192.0.2.53");  // an upstream, not in the file
  c.mutable_dns_config()->add_search("corp.example");
  c.mutable_dns_config()->add_options("ndots:2");
  c.mutable_dns_config()->add_options("timeout:1");
  EXPECT_EQ(EmbeddedResolvConf(c),
            "nameserver 127.0.0.11\nsearch corp.example\noptions ndots:2 timeout:1\n");
}

}  // namespace
}  // namespace shoal::agent
