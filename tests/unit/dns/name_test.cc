#include "dns/name.h"

#include "gtest/gtest.h"

namespace shoal::dns {
namespace {

TEST(NameTest, SplitsAndJoins) {
  auto l = SplitName("www.Example.com.");
  ASSERT_TRUE(l.ok());
  EXPECT_EQ(*l, (std::vector<std::string>{"www", "Example", "com"}));
  EXPECT_EQ(JoinLabels(*l), "www.Example.com");
  EXPECT_TRUE(SplitName("")->empty());
  EXPECT_TRUE(SplitName(".")->empty());
}

TEST(NameTest, EscapesRoundTrip) {
  std::vector<std::string> labels = {std::string("a.b\\c\x01 ", 7), "x"};
  std::string text = JoinLabels(labels);
  EXPECT_EQ(text, "a\\.b\\\\c\\001\\032.x");
  EXPECT_EQ(*SplitName(text), labels);
}

TEST(NameTest, RejectsBadNames) {
  EXPECT_FALSE(SplitName("a..b").ok());
  EXPECT_FALSE(SplitName(std::string(64, 'a')).ok());
  EXPECT_TRUE(SplitName(std::string(63, 'a')).ok());
  std::string long_name;
  for (int i = 0; i < 5; ++i) long_name += std::string(60, 'a') + ".";
  EXPECT_FALSE(SplitName(long_name).ok());
  EXPECT_FALSE(SplitName("a\\").ok());
  EXPECT_FALSE(SplitName("a\\25").ok());
  EXPECT_FALSE(SplitName("a\\256").ok());
}

TEST(NameTest, CanonicalLowercasesAndDropsTrailingDot) {
  EXPECT_EQ(CanonicalName("WeB.NeT."), "web.net");
}

TEST(NameTest, ReverseNames) {
  std::string v4("\x0a\x00\x01\x02", 4);
  EXPECT_EQ(ReverseName(v4), "2.1.0.10.in-addr.arpa");
  EXPECT_EQ(*AddressFromReverseName("2.1.0.10.IN-ADDR.ARPA."), v4);
  std::string v6(16, '\0');
  v6[0] = static_cast<char>(0xfd);
  v6[15] = 0x12;
  std::string rev = ReverseName(v6);
  EXPECT_TRUE(rev.starts_with("2.1.0.0."));
  EXPECT_EQ(*AddressFromReverseName(rev), v6);
  EXPECT_FALSE(AddressFromReverseName("1.2.3.in-addr.arpa").ok());
  EXPECT_FALSE(AddressFromReverseName("256.1.2.3.in-addr.arpa").ok());
  EXPECT_FALSE(AddressFromReverseName("example.com").ok());
}

}  // namespace
}  // namespace shoal::dns
