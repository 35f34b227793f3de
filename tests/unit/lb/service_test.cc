#include "lb/service.h"

#include "gtest/gtest.h"

namespace shoal::lb {
namespace {

Service Web(std::string name = "web", std::string vip = "10.0.0.2", uint16_t port = 80) {
  Service s;
  s.name = std::move(name);
  s.vip = std::move(vip);
  s.port = port;
  s.backends = {{"10.0.0.11", 8080, 1}, {"10.0.0.12", 8080, 1}};
  return s;
}

void ExpectError(const absl::Status& s, absl::StatusCode code, absl::string_view needle) {
  EXPECT_EQ(s.code(), code) << s;
  EXPECT_NE(s.message().find(needle), absl::string_view::npos) << s;
}

TEST(ValidateServiceTest, AcceptsGood) { EXPECT_TRUE(ValidateService(Web()).ok()); }

TEST(ValidateServiceTest, BadInputNamesFieldAndReason) {
  Service s = Web();
  s.name = "Web!";
  ExpectError(ValidateService(s), absl::StatusCode::kInvalidArgument, "service name \"Web!\"");
  s = Web();
  s.vip = "10.0.0.300";
  ExpectError(ValidateService(s), absl::StatusCode::kInvalidArgument, "vip \"10.0.0.300\"");
  s = Web();
  s.vip = "";
  ExpectError(ValidateService(s), absl::StatusCode::kInvalidArgument, "vip: required");
  s = Web();
  s.frontend = Frontend::kPublished;
  ExpectError(ValidateService(s), absl::StatusCode::kInvalidArgument, "vip: must be empty");
  s = Web();
  s.backends.clear();
  ExpectError(ValidateService(s), absl::StatusCode::kInvalidArgument, "empty backend set");
  s = Web();
  s.backends.push_back(s.backends[0]);
  ExpectError(ValidateService(s), absl::StatusCode::kInvalidArgument, "listed twice");
  s = Web();
  s.backends[0].ip = "fd00::1";
  ExpectError(ValidateService(s), absl::StatusCode::kInvalidArgument, "address family");
  s = Web();
  s.port = 0;
  ExpectError(ValidateService(s), absl::StatusCode::kInvalidArgument, "port");
  s = Web();
  s.backends[1].port = 0;
  ExpectError(ValidateService(s), absl::StatusCode::kInvalidArgument, "backend 10.0.0.12: port");
  EXPECT_EQ(ParseProtocol("icmp").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ServiceSetTest, AddChangeRemove) {
  ServiceSet set;
  auto d = set.Plan(Change{{Web("a", "10.0.0.2"), Web("b", "10.0.0.3")}, {}});
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->added.size(), 2u);
  set.Commit(*d);
  EXPECT_EQ(set.size(), 2u);
  // Identical upsert is a no-op.
  d = set.Plan(Change{{Web("a", "10.0.0.2")}, {}});
  EXPECT_TRUE(d->empty());
  Service a2 = Web("a", "10.0.0.2");
  a2.backends[0].weight = 0;
  d = set.Plan(Change{{a2}, {"b"}});
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->changed.size(), 1u);
  EXPECT_EQ(d->removed.size(), 1u);
  set.Commit(*d);
  EXPECT_EQ(set.Find("a")->backends[0].weight, 0u);
  EXPECT_EQ(set.Find("b"), nullptr);
  ExpectError(set.Plan(Change{{}, {"b"}}).status(), absl::StatusCode::kNotFound, "service b");
}

TEST(ServiceSetTest, PortConflicts) {
  ServiceSet set;
  set.Commit(*set.Plan(Change{{Web("a", "10.0.0.2")}, {}}));
  ExpectError(set.Plan(Change{{Web("b", "10.0.0.2")}, {}}).status(),
              absl::StatusCode::kFailedPrecondition, "port conflict: services a and b");
  ExpectError(set.Plan(Change{{Web("b", "10.0.0.9"), Web("c", "10.0.0.9")}, {}}).status(),
              absl::StatusCode::kFailedPrecondition, "port conflict");
  // Same VIP, other port or protocol: fine.
  Service udp = Web("b", "10.0.0.2");
  udp.protocol = Protocol::kUdp;
  EXPECT_TRUE(set.Plan(Change{{udp, Web("c", "10.0.0.2", 443)}, {}}).ok());
  // Taking over a frontend in the same change that frees it: fine.
  EXPECT_TRUE(set.Plan(Change{{Web("b", "10.0.0.2")}, {"a"}}).ok());
  // Published ports conflict on proto/port alone.
  Service p1 = Web("p1", "");
  p1.frontend = Frontend::kPublished;
  p1.port = 30000;
  Service p2 = p1;
  p2.name = "p2";
  ExpectError(set.Plan(Change{{p1, p2}, {}}).status(), absl::StatusCode::kFailedPrecondition,
              "* tcp/30000");
}

class FakeBackend : public Backend {
 public:
  absl::string_view Name() const override { return "fake"; }
  absl::Status Apply(const Change& c) override {
    auto d = set_.Plan(c);
    if (!d.ok()) return d.status();
    set_.Commit(*d);
    return absl::OkStatus();
  }
  std::vector<Service> Services() const override { return set_.All(); }
  ServiceSet set_;
};

TEST(DrainTest, SetsWeightZero) {
  FakeBackend b;
  ASSERT_TRUE(b.Apply(Change{{Web()}, {}}).ok());
  ASSERT_TRUE(Drain(b, "web", "10.0.0.12", 8080).ok());
  EXPECT_EQ(b.Services()[0].backends[1].weight, 0u);
  EXPECT_EQ(b.Services()[0].backends[0].weight, 1u);
  EXPECT_EQ(Drain(b, "web", "10.0.0.99", 8080).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Drain(b, "nope", "10.0.0.12", 8080).code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace shoal::lb
