#include "dns/answer.h"

#include "gtest/gtest.h"

namespace shoal::dns {
namespace {

std::string Query(absl::string_view name, uint16_t type, std::optional<Edns> edns = {}) {
  Message m;
  m.header.id = 0xbeef;
  m.header.rd = true;
  m.questions.push_back({std::string(name), type, kClassIn});
  m.edns = edns;
  return *BuildMessage(m);
}

class AnswerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(table_.SetService("front", {"web", {}, {*ParseIp("10.0.1.2")}, false, {}}).ok());
    ASSERT_TRUE(table_.SetService("front", {"big", {}, {}, true, {}}).ok());
    for (int i = 0; i < 60; ++i) {
      ASSERT_TRUE(table_
                      .SetTask("front", {"b" + std::to_string(i),
                                         "big",
                                         {},
                                         {*ParseIp("10.0.3." + std::to_string(i + 1))}})
                      .ok());
    }
  }
  Outcome Ask(absl::string_view packet, bool forward = false, bool tcp = false) {
    QueryContext ctx{&table_, &nets_, forward, tcp, 0};
    return AnswerQuery(ctx, packet);
  }
  Message AskParsed(absl::string_view packet, bool forward = false, bool tcp = false) {
    Outcome o = Ask(packet, forward, tcp);
    EXPECT_EQ(o.action, Outcome::kReply);
    auto m = ParseMessage(o.reply);
    EXPECT_TRUE(m.ok()) << m.status();
    return m.ok() ? *m : Message{};
  }

  RecordTable table_;
  std::vector<std::string> nets_{"front"};
};

TEST_F(AnswerTest, AnswersKnownName) {
  Message r = AskParsed(Query("web", kTypeA));
  EXPECT_EQ(r.header.id, 0xbeef);
  EXPECT_TRUE(r.header.qr);
  EXPECT_TRUE(r.header.aa);
  EXPECT_TRUE(r.header.rd);
  EXPECT_EQ(r.header.rcode, kNoError);
  ASSERT_EQ(r.answers.size(), 1u);
  EXPECT_EQ(r.questions[0].name, "web");
}

TEST_F(AnswerTest, NodataVersusNxdomain) {
  Message r = AskParsed(Query("web", kTypeAaaa));
  EXPECT_EQ(r.header.rcode, kNoError);
  EXPECT_TRUE(r.answers.empty());
  r = AskParsed(Query("nosuch", kTypeA));
  EXPECT_EQ(r.header.rcode, kNxDomain);
}

TEST_F(AnswerTest, ForwardsUnknownOnlyWithUpstreams) {
  EXPECT_EQ(Ask(Query("example.com", kTypeA), /*forward=*/true).action, Outcome::kForward);
  EXPECT_EQ(AskParsed(Query("example.com", kTypeA)).header.rcode, kNxDomain);
  // Our own namespaces never leak upstream.
  EXPECT_EQ(AskParsed(Query("tasks.nosuch", kTypeA), true).header.rcode, kNxDomain);
  EXPECT_EQ(AskParsed(Query("nosuch.front", kTypeA), true).header.rcode, kNxDomain);
  EXPECT_TRUE(AskParsed(Query("web", kTypeA), true).header.ra);
}

TEST_F(AnswerTest, TruncatesOverUdpAndNotOverTcp) {
  Message r = AskParsed(Query("big", kTypeA));
  EXPECT_TRUE(r.header.tc);
  EXPECT_TRUE(r.answers.empty());
  r = AskParsed(Query("big", kTypeA, Edns{4096, 0, false, ""}));
  EXPECT_FALSE(r.header.tc);
  EXPECT_EQ(r.answers.size(), 60u);
  ASSERT_TRUE(r.edns.has_value());
  r = AskParsed(Query("big", kTypeA), false, /*tcp=*/true);
  EXPECT_FALSE(r.header.tc);
  EXPECT_EQ(r.answers.size(), 60u);
}

TEST_F(AnswerTest, MalformedGetsFormerrOrDrop) {
  std::string q = Query("web", kTypeA);
  EXPECT_EQ(Ask(q.substr(0, 5)).action, Outcome::kDrop);
  Message r = AskParsed(q.substr(0, q.size() - 2));
  EXPECT_EQ(r.header.rcode, kFormErr);
  EXPECT_EQ(r.header.id, 0xbeef);
  std::string resp = q;
  resp[2] = static_cast<char>(resp[2] | 0x80);  // QR set: never answered
  EXPECT_EQ(Ask(resp).action, Outcome::kDrop);
  std::string two = q;
  two[5] = 2;  // qdcount 2 but only one question
  EXPECT_EQ(AskParsed(two).header.rcode, kFormErr);
}

TEST_F(AnswerTest, OpcodeClassAndEdnsVersion) {
  std::string q = Query("web", kTypeA);
  std::string notify = q;
  notify[2] = static_cast<char>((notify[2] & 0x87) | (4 << 3));
  EXPECT_EQ(AskParsed(notify).header.rcode, kNotImp);
  Message chaos;
  chaos.questions.push_back({"version.bind", kTypeTxt, 3});
  EXPECT_EQ(AskParsed(*BuildMessage(chaos)).header.rcode, kRefused);
  EXPECT_EQ(AskParsed(Query("web", 252)).header.rcode, kRefused);
  Message r = AskParsed(Query("web", kTypeA, Edns{1232, 1, false, ""}));
  EXPECT_EQ(r.header.rcode, kBadVers);
}

TEST_F(AnswerTest, ServFailFor) {
  auto r = ParseMessage(ServFailFor(Query("example.com", kTypeA)));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->header.rcode, kServFail);
  EXPECT_EQ(r->questions.size(), 1u);
  EXPECT_TRUE(ServFailFor("abc").empty());
}

TEST_F(AnswerTest, UpstreamReplyMustEchoTheQuestion) {
  std::string q = Query("Example.COM", kTypeA);
  auto reply_to = [](const std::string& query) {
    Message m = *ParseMessage(query);
    return *BuildMessage(MakeResponse(m, kNoError));
  };
  EXPECT_TRUE(AnswersQuestion(q, reply_to(q)));
  EXPECT_TRUE(AnswersQuestion(q, reply_to(Query("example.com", kTypeA))));  // any case
  EXPECT_FALSE(AnswersQuestion(q, reply_to(Query("example.org", kTypeA))));
  EXPECT_FALSE(AnswersQuestion(q, reply_to(Query("example.com", kTypeAaaa))));
  EXPECT_FALSE(AnswersQuestion(q, q));  // a query, not a response
  std::string no_question = reply_to(q).substr(0, kHeaderSize);
  no_question[5] = 0;
  EXPECT_FALSE(AnswersQuestion(q, no_question));
  EXPECT_FALSE(AnswersQuestion(q, reply_to(q).substr(0, 20)));  // cut inside the question
  EXPECT_FALSE(AnswersQuestion("", reply_to(q)));
}

}  // namespace
}  // namespace shoal::dns
