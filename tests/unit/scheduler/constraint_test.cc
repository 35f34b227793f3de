#include "manager/scheduler/constraint.h"

#include "gtest/gtest.h"

namespace shoal::manager::scheduler {
namespace {

api::v1::Node MakeNode() {
  api::v1::Node n;
  n.set_id("n1");
  n.set_role(api::v1::NODE_ROLE_MANAGER);
  n.mutable_description()->set_hostname("Host-A");
  n.mutable_description()->mutable_platform()->set_os("linux");
  n.mutable_description()->mutable_platform()->set_architecture("amd64");
  (*n.mutable_description()->mutable_engine_labels())["disk"] = "ssd";
  (*n.mutable_spec()->mutable_annotations()->mutable_labels())["zone"] = "East";
  n.mutable_status()->set_addr("192.0.2.17");
  return n;
}

bool Match(const std::string& expr, const api::v1::Node& n) {
  auto c = ParseConstraint(expr);
  EXPECT_TRUE(c.ok()) << expr << ": " << c.status();
  return c.ok() && NodeMatches(*c, n);
}

TEST(ConstraintTest, EveryKeyMatches) {
  auto n = MakeNode();
  EXPECT_TRUE(Match("node.id==n1", n));
  EXPECT_TRUE(Match("node.hostname == host-a", n));  // values are case-insensitive
  EXPECT_TRUE(Match("node.role==manager", n));
  EXPECT_FALSE(Match("node.role==worker", n));
  EXPECT_TRUE(Match("node.platform.os==linux", n));
  EXPECT_TRUE(Match("node.platform.arch!=arm64", n));
  EXPECT_TRUE(Match("node.labels.zone==east", n));
  EXPECT_FALSE(Match("node.labels.Zone==east", n));  // label keys are case-sensitive
  EXPECT_TRUE(Match("engine.labels.disk==ssd", n));
  EXPECT_TRUE(Match("NODE.LABELS.zone==EAST", n));  // key prefix case-insensitive
}

TEST(ConstraintTest, MissingAttributeIsEmpty) {
  auto n = MakeNode();
  EXPECT_TRUE(Match("node.labels.rack!=r1", n));
  EXPECT_FALSE(Match("node.labels.rack==r1", n));
}

TEST(ConstraintTest, NodeIpMatchesAddressesAndCidrs) {
  auto n = MakeNode();
  EXPECT_TRUE(Match("node.ip==192.0.2.17", n));
  EXPECT_TRUE(Match("node.ip==192.0.2.0/24", n));
  EXPECT_TRUE(Match("node.ip==192.0.0.0/22", n));
  EXPECT_FALSE(Match("node.ip==192.0.3.0/24", n));
  EXPECT_TRUE(Match("node.ip!=10.0.0.0/8", n));
  EXPECT_FALSE(Match("node.ip==2001:db8::/32", n));  // other family never matches
}

TEST(ConstraintTest, BadConstraintsNameTheProblem) {
  struct Case {
    std::string expr, want;
  } cases[] = {
      {"node.labels.zone", "no operator"},
      {"==x", "invalid key"},
      {"node.role==", "empty value"},
      {"node.role==boss", "manager or worker"},
      {"node.ip==300.1.1.1", "IP address or CIDR"},
      {"node.ip==10.0.0.0/33", "IP address or CIDR"},
      {"node.colour==red", "unknown key"},
      {"node.labels.==x", "unknown key"},
      {"node.id==a==b", "more than one operator"},
  };
  for (const auto& c : cases) {
    auto r = ParseConstraint(c.expr);
    ASSERT_FALSE(r.ok()) << c.expr;
    EXPECT_NE(r.status().message().find(c.want), std::string::npos)
        << c.expr << " -> " << r.status();
  }
  auto list = ParseConstraints({"node.role==manager", "bogus"});
  ASSERT_FALSE(list.ok());
  EXPECT_NE(list.status().message().find("constraints[1]"), std::string::npos);
}

TEST(ConstraintTest, SpreadDescriptors) {
  auto n = MakeNode();
  EXPECT_TRUE(ValidateSpreadDescriptor("node.labels.zone").ok());
  EXPECT_TRUE(ValidateSpreadDescriptor("engine.labels.disk").ok());
  EXPECT_FALSE(ValidateSpreadDescriptor("node.hostname").ok());
  EXPECT_EQ(SpreadValue("node.labels.zone", n), "East");
  EXPECT_EQ(SpreadValue("engine.labels.disk", n), "ssd");
  EXPECT_EQ(SpreadValue("node.labels.rack", n), "");
}

}  // namespace
}  // namespace shoal::manager::scheduler
