#include "dns/records.h"

#include "dns/name.h"
#include "gtest/gtest.h"

namespace shoal::dns {
namespace {

IpBytes Ip(const char* s) { return *ParseIp(s); }

std::vector<std::string> Addrs(const LookupResult& r) {
  std::vector<std::string> out;
  for (const Record& rec : r.answers) {
    if (auto* a = std::get_if<Ip4>(&rec.data))
      out.push_back(FormatIp(IpBytes(a->begin(), a->end())));
    if (auto* a = std::get_if<Ip6>(&rec.data))
      out.push_back(FormatIp(IpBytes(a->begin(), a->end())));
  }
  std::sort(out.begin(), out.end());
  return out;
}

class RecordTableTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(
        table_
            .SetService("front", {"web", {"www"}, {Ip("10.0.1.2")}, false, {{"http", "tcp", 8080}}})
            .ok());
    for (int i = 1; i <= 3; ++i) {
      std::string id = "t" + std::to_string(i);
      ASSERT_TRUE(table_
                      .SetTask("front", {id,
                                         "web",
                                         {"web." + std::to_string(i) + "." + id, "c" + id},
                                         {Ip(("10.0.1." + std::to_string(10 + i)).c_str())}})
                      .ok());
    }
    ASSERT_TRUE(table_.SetService("back", {"db", {}, {}, true, {}}).ok());
    ASSERT_TRUE(
        table_.SetTask("back", {"d1", "db", {"db.1.d1"}, {Ip("10.0.2.5"), Ip("fd00::5")}}).ok());
    ASSERT_TRUE(table_.SetService("other", {"web", {}, {Ip("10.0.9.9")}, false, {}}).ok());
  }

  LookupResult Get(const char* name, uint16_t type = kTypeA,
                   std::vector<std::string> nets = {"front", "back"}) {
    return table_.Lookup(nets, Question{name, type, kClassIn});
  }

  RecordTable table_{TableOptions{60, 5}};
};

TEST_F(RecordTableTest, ServiceResolvesToVip) {
  LookupResult r = Get("web");
  EXPECT_EQ(r.kind, LookupResult::kAnswer);
  EXPECT_EQ(Addrs(r), (std::vector<std::string>{"10.0.1.2"}));
  EXPECT_EQ(r.answers[0].ttl, 60u);
  EXPECT_EQ(r.answers[0].name, "web");
  EXPECT_EQ(Addrs(Get("WWW")), (std::vector<std::string>{"10.0.1.2"}));  // alias, any case
}

TEST_F(RecordTableTest, TasksNameResolvesToTaskIpsWithShortTtl) {
  LookupResult r = Get("tasks.web");
  EXPECT_EQ(Addrs(r), (std::vector<std::string>{"10.0.1.11", "10.0.1.12", "10.0.1.13"}));
  EXPECT_EQ(r.answers[0].ttl, 5u);
  EXPECT_EQ(Addrs(Get("tasks.www")).size(), 3u);
}

TEST_F(RecordTableTest, DnsrrServiceResolvesToTasks) {
  EXPECT_EQ(Addrs(Get("db")), (std::vector<std::string>{"10.0.2.5"}));
  EXPECT_EQ(Addrs(Get("db", kTypeAaaa)), (std::vector<std::string>{"fd00::5"}));
  EXPECT_EQ(Addrs(Get("db", kTypeAny)).size(), 2u);
}

TEST_F(RecordTableTest, TaskAndContainerNames) {
  EXPECT_EQ(Addrs(Get("web.2.t2")), (std::vector<std::string>{"10.0.1.12"}));
  EXPECT_EQ(Addrs(Get("ct3")), (std::vector<std::string>{"10.0.1.13"}));
}

TEST_F(RecordTableTest, KnownNameWithoutTypeIsNodata) {
  LookupResult r = Get("web", kTypeAaaa);
  EXPECT_EQ(r.kind, LookupResult::kAnswer);
  EXPECT_TRUE(r.answers.empty());
  r = Get("web", kTypeMx);
  EXPECT_EQ(r.kind, LookupResult::kAnswer);
  EXPECT_TRUE(r.answers.empty());
}

TEST_F(RecordTableTest, UnknownNamesAreUnknown) {
  EXPECT_EQ(Get("nosuch").kind, LookupResult::kUnknown);
  EXPECT_EQ(Get("tasks.nosuch").kind, LookupResult::kUnknown);
  EXPECT_EQ(Get("example.com").kind, LookupResult::kUnknown);
}

TEST_F(RecordTableTest, NetworkScoping) {
  // Not attached to "other": its web is invisible; attached networks win in priority order.
  EXPECT_EQ(Addrs(Get("web.other")).size(), 0u);
  EXPECT_EQ(Get("web.other").kind, LookupResult::kUnknown);
  EXPECT_EQ(Addrs(Get("web", kTypeA, {"other", "front"})), (std::vector<std::string>{"10.0.9.9"}));
  EXPECT_EQ(Addrs(Get("web.front", kTypeA, {"other", "front"})),
            (std::vector<std::string>{"10.0.1.2"}));
  EXPECT_EQ(Addrs(Get("tasks.web.front")).size(), 3u);
  EXPECT_EQ(Get("db.front").kind, LookupResult::kUnknown);  // db lives on "back"
}

TEST_F(RecordTableTest, Ptr) {
  LookupResult r = Get("12.1.0.10.in-addr.arpa", kTypePtr);
  ASSERT_EQ(r.answers.size(), 1u);
  EXPECT_EQ(std::get<std::string>(r.answers[0].data), "web.2.t2.front");
  r = Get("2.1.0.10.in-addr.arpa", kTypePtr);
  ASSERT_EQ(r.answers.size(), 1u);
  EXPECT_EQ(std::get<std::string>(r.answers[0].data), "web.front");
  EXPECT_EQ(Get(ReverseName(Ip("fd00::5")).c_str(), kTypePtr).answers.size(), 1u);
  EXPECT_EQ(Get("99.1.0.10.in-addr.arpa", kTypePtr).kind, LookupResult::kUnknown);
}

TEST_F(RecordTableTest, Srv) {
  LookupResult r = Get("_http._tcp.web", kTypeSrv);
  ASSERT_EQ(r.kind, LookupResult::kAnswer);
  ASSERT_EQ(r.answers.size(), 3u);
  EXPECT_EQ(std::get<SrvData>(r.answers[0].data).port, 8080);
  EXPECT_EQ(std::get<SrvData>(r.answers[0].data).target, "web.1.t1");
  EXPECT_EQ(r.additional.size(), 3u);
  EXPECT_EQ(Get("_http._udp.web", kTypeSrv).kind, LookupResult::kUnknown);
  EXPECT_EQ(Get("_http._tcp.web", kTypeA).answers.size(), 0u);
}

TEST_F(RecordTableTest, RemovalsTakeEffect) {
  ASSERT_TRUE(table_.RemoveTask("front", "t2").ok());
  EXPECT_EQ(Addrs(Get("tasks.web")).size(), 2u);
  EXPECT_EQ(Get("web.2.t2").kind, LookupResult::kUnknown);
  EXPECT_EQ(Get("12.1.0.10.in-addr.arpa", kTypePtr).kind, LookupResult::kUnknown);
  EXPECT_EQ(table_.RemoveTask("front", "t2").code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(table_.RemoveService("front", "web").ok());
  EXPECT_EQ(Get("web").kind, LookupResult::kUnknown);
  EXPECT_EQ(Get("www").kind, LookupResult::kUnknown);
  table_.RemoveNetwork("back");
  EXPECT_EQ(Get("db").kind, LookupResult::kUnknown);
}

TEST_F(RecordTableTest, ReplacingTaskMovesItsIp) {
  ASSERT_TRUE(table_.SetTask("front", {"t1", "web", {"web.1.t1"}, {Ip("10.0.1.99")}}).ok());
  EXPECT_EQ(Addrs(Get("web.1.t1")), (std::vector<std::string>{"10.0.1.99"}));
  EXPECT_EQ(Get("11.1.0.10.in-addr.arpa", kTypePtr).kind, LookupResult::kUnknown);
  EXPECT_EQ(Get("c1").kind, LookupResult::kUnknown);  // name dropped with the old record
}

TEST(RecordTableValidationTest, BadInputNamesTheField) {
  RecordTable t;
  absl::Status s = t.SetService("n", {"web", {}, {}, false, {}});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("needs at least one VIP"), std::string::npos);
  s = t.SetService("n", {"web", {}, {Ip("10.0.0.1")}, true, {}});
  EXPECT_NE(s.message().find("dnsrr"), std::string::npos);
  s = t.SetService("n", {"bad..name", {}, {Ip("10.0.0.1")}, false, {}});
  EXPECT_NE(s.message().find("service name"), std::string::npos);
  s = t.SetService("n", {"web", {}, {Ip("10.0.0.1")}, false, {{"http", "icmp", 1}}});
  EXPECT_NE(s.message().find("protocol"), std::string::npos);
  s = t.SetTask("n", {"t", "web", {"x"}, {}});
  EXPECT_NE(s.message().find("no IP"), std::string::npos);
  EXPECT_FALSE(ParseIp("10.0.0.300").ok());
}

}  // namespace
}  // namespace shoal::dns
