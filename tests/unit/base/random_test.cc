#include "base/random.h"

#include <set>

#include "gtest/gtest.h"

namespace shoal::base {
namespace {

TEST(RandomTest, IdsHaveSwarmShapeAndAreUnique) {
  SystemRandom random;
  std::set<std::string> seen;
  for (int i = 0; i < 10000; ++i) {
    std::string id = NewId(random);
    ASSERT_EQ(id.size(), kIdLength);
    ASSERT_TRUE(IsValidId(id)) << id;
    ASSERT_TRUE(seen.insert(id).second) << "duplicate id " << id;
  }
}

TEST(RandomTest, IdUsesAllOfBase36) {
  SystemRandom random;
  std::set<char> chars;
  for (int i = 0; i < 2000; ++i) {
    std::string id = NewId(random);
    chars.insert(id.begin() + 1, id.end());  // first digit is biased (36^25 > 2^128)
  }
  EXPECT_EQ(chars.size(), 36u);
}

TEST(RandomTest, FakeRandomIsDeterministic) {
  FakeRandom a(42), b(42), c(43);
  std::string ia = NewId(a), ib = NewId(b), ic = NewId(c);
  EXPECT_EQ(ia, ib);
  EXPECT_NE(ia, ic);
}

TEST(RandomTest, AllZeroBytesGiveAllZeroId) {
  class Zero : public Random {
   public:
    void Fill(std::span<uint8_t> out) override { std::fill(out.begin(), out.end(), 0); }
  } zero;
  EXPECT_EQ(NewId(zero), std::string(kIdLength, '0'));
  EXPECT_EQ(NewHexId(zero), std::string(64, '0'));
}

TEST(RandomTest, HexIdShape) {
  SystemRandom random;
  std::string id = NewHexId(random);
  ASSERT_EQ(id.size(), 64u);
  EXPECT_EQ(id.find_first_not_of("0123456789abcdef"), std::string::npos);
}

TEST(RandomTest, IsValidIdRejectsBadShapes) {
  EXPECT_FALSE(IsValidId(""));
  EXPECT_FALSE(IsValidId("abc"));
  EXPECT_FALSE(IsValidId(std::string(24, 'a')));
  EXPECT_FALSE(IsValidId(std::string(26, 'a')));
  EXPECT_FALSE(IsValidId(std::string(24, 'a') + "A"));
  EXPECT_FALSE(IsValidId(std::string(24, 'a') + "-"));
}

TEST(RandomTest, UniformStaysInRangeAndCoversIt) {
  FakeRandom random(7);
  std::vector<int> counts(10);
  for (int i = 0; i < 100000; ++i) {
    uint64_t v = random.Uniform(10);
    ASSERT_LT(v, 10u);
    counts[v]++;
  }
  for (int c : counts) {
    EXPECT_GT(c, 9000);
    EXPECT_LT(c, 11000);
  }
}

}  // namespace
}  // namespace shoal::base
