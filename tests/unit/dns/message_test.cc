#include "dns/message.h"

#include "gtest/gtest.h"

namespace shoal::dns {
namespace {

// A query for "web" type A with EDNS0 (udp 1232), as dig sends it.
std::string Query(absl::string_view name, uint16_t type, bool edns = false) {
  Message m;
  m.header.id = 0x1234;
  m.header.rd = true;
  m.questions.push_back({std::string(name), type, kClassIn});
  if (edns) m.edns = Edns{1232, 0, false, ""};
  return *BuildMessage(m);
}

TEST(MessageTest, QueryWireFormatIsExact) {
  std::string q = Query("web", kTypeA);
  std::string want("\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x03web\x00\x00\x01\x00\x01",
                   21);
  EXPECT_EQ(q, want);
}

TEST(MessageTest, RoundTripsEveryRecordType) {
  Message m;
  m.header = Header{7, true, 0, true, false, true, true, false, false, kNxDomain};
  m.questions.push_back({"svc.net", kTypeAny, kClassIn});
  m.answers.push_back({"svc.net", kTypeA, kClassIn, 5, Ip4{10, 0, 0, 2}});
  Ip6 v6{};
  v6[0] = 0xfd;
  m.answers.push_back({"svc.net", kTypeAaaa, kClassIn, 5, v6});
  m.answers.push_back({"_http._tcp.svc.net", kTypeSrv, kClassIn, 5, SrvData{1, 2, 80, "t1.net"}});
  m.answers.push_back({"2.0.0.10.in-addr.arpa", kTypePtr, kClassIn, 5, std::string("svc.net")});
  m.authority.push_back({"net", kTypeSoa, kClassIn, 60, SoaData{"ns.net", "h.net", 1, 2, 3, 4, 5}});
  m.additional.push_back({"svc.net", kTypeMx, kClassIn, 1, MxData{10, "mx.net"}});
  m.additional.push_back({"svc.net", kTypeTxt, kClassIn, 1, RawData{"\x02hi"}});
  m.edns = Edns{4096, 0, true, ""};
  auto wire = BuildMessage(m);
  ASSERT_TRUE(wire.ok()) << wire.status();
  auto back = ParseMessage(*wire);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->header.id, 7);
  EXPECT_TRUE(back->header.qr);
  EXPECT_TRUE(back->header.aa);
  EXPECT_EQ(back->header.rcode, kNxDomain);
  ASSERT_EQ(back->answers.size(), 4u);
  EXPECT_EQ(std::get<Ip4>(back->answers[0].data), (Ip4{10, 0, 0, 2}));
  EXPECT_EQ(std::get<Ip6>(back->answers[1].data), v6);
  EXPECT_EQ(std::get<SrvData>(back->answers[2].data).target, "t1.net");
  EXPECT_EQ(std::get<SrvData>(back->answers[2].data).port, 80);
  EXPECT_EQ(std::get<std::string>(back->answers[3].data), "svc.net");
  EXPECT_EQ(std::get<SoaData>(back->authority[0].data).minimum, 5u);
  EXPECT_EQ(std::get<MxData>(back->additional[0].data).exchange, "mx.net");
  EXPECT_EQ(std::get<RawData>(back->additional[1].data).bytes, "\x02hi");
  ASSERT_TRUE(back->edns.has_value());
  EXPECT_EQ(back->edns->udp_size, 4096);
  EXPECT_TRUE(back->edns->dnssec_ok);
}

TEST(MessageTest, CompressesRepeatedNames) {
  Message m;
  m.questions.push_back({"a-long-service-name.network", kTypeA, kClassIn});
  for (int i = 0; i < 10; ++i) {
    m.answers.push_back({"A-LONG-SERVICE-NAME.network", kTypeA, kClassIn, 5,
                         Ip4{10, 0, 0, static_cast<uint8_t>(i)}});
  }
  std::string wire = *BuildMessage(m);
  // Each answer: 2-byte pointer + 10 fixed + 4 rdata.
  EXPECT_EQ(wire.size(), 12 + (29 + 4) + 10 * 16u);
  auto back = ParseMessage(wire);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->answers[9].name, "a-long-service-name.network");
}

TEST(MessageTest, TruncatesToLimitAndSetsTc) {
  Message m;
  m.header.qr = true;
  m.questions.push_back({"big", kTypeA, kClassIn});
  for (int i = 0; i < 100; ++i) {
    m.answers.push_back({"big", kTypeA, kClassIn, 5, Ip4{10, 0, 1, static_cast<uint8_t>(i)}});
  }
  m.edns = Edns{512, 0, false, ""};
  std::string small = *BuildMessage(m, 512);
  EXPECT_LE(small.size(), 512u);
  auto back = ParseMessage(small);
  ASSERT_TRUE(back.ok());
  EXPECT_TRUE(back->header.tc);
  EXPECT_TRUE(back->answers.empty());
  EXPECT_TRUE(back->edns.has_value());  // OPT kept
  std::string big = *BuildMessage(m, 65535);
  EXPECT_FALSE(ParseMessage(big)->header.tc);
  EXPECT_EQ(ParseMessage(big)->answers.size(), 100u);
}

TEST(MessageTest, RejectsMalformedPackets) {
  std::string q = Query("web", kTypeA);
  EXPECT_FALSE(ParseMessage(q.substr(0, 11)).ok());            // short header
  EXPECT_FALSE(ParseMessage(q.substr(0, q.size() - 1)).ok());  // short question
  EXPECT_FALSE(ParseMessage(q + "x").ok());                    // trailing garbage
  // Forward pointer (and self pointer) are refused: no loops.
  std::string self = q.substr(0, 12) + std::string("\xc0\x0c\x00\x01\x00\x01", 6);
  auto r = ParseMessage(self);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("pointer"), std::string::npos);
  // Reserved label type 0x40.
  EXPECT_FALSE(ParseMessage(q.substr(0, 12) + std::string("\x41", 1) + "a" +
                            std::string("\x00\x00\x01\x00\x01", 5))
                   .ok());
  // A record with rdlength 5.
  Message m;
  m.answers.push_back({"x", kTypeA, kClassIn, 1, Ip4{1, 2, 3, 4}});
  std::string w = *BuildMessage(m);
  w[w.size() - 5] = 5;
  w += "z";
  EXPECT_FALSE(ParseMessage(w).ok());
}

TEST(MessageTest, RejectsDuplicateOrMisplacedOpt) {
  std::string q = Query("web", kTypeA, /*edns=*/true);
  std::string opt = q.substr(q.size() - 11);
  std::string twice = q + opt;
  twice[11] = 2;  // arcount
  auto r = ParseMessage(twice);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("more than one OPT"), std::string::npos);
}

TEST(MessageTest, ParsesDigStyleQueryWithCookieOption) {
  // dig +cookie sends an OPT with an 8-byte client cookie (option 10).
  Message m;
  m.questions.push_back({"web", kTypeA, kClassIn});
  m.edns = Edns{1232, 0, false,
                std::string("\x00\x0a\x00\x08"
                            "abcdefgh",
                            12)};
  auto back = ParseMessage(*BuildMessage(m));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->edns->options.size(), 12u);
}

}  // namespace
}  // namespace shoal::dns
