#include "manager/store/pmap.h"

#include <map>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "gtest/gtest.h"

namespace shoal::manager::store {
namespace {

std::vector<std::pair<std::string, int>> Items(const PMap<int>& m) {
  std::vector<std::pair<std::string, int>> out;
  m.ForEach([&](absl::string_view k, const int& v) {
    out.emplace_back(std::string(k), v);
    return true;
  });
  return out;
}

TEST(PMapTest, SetFindEraseInOrder) {
  PMap<int> m;
  EXPECT_TRUE(m.empty());
  m.Set("b", 2);
  m.Set("a", 1);
  m.Set("c", 3);
  m.Set("b", 20);  // replace
  EXPECT_EQ(m.size(), 3u);
  ASSERT_NE(m.Find("b"), nullptr);
  EXPECT_EQ(*m.Find("b"), 20);
  EXPECT_EQ(m.Find("d"), nullptr);
  EXPECT_EQ(Items(m), (std::vector<std::pair<std::string, int>>{{"a", 1}, {"b", 20}, {"c", 3}}));
  EXPECT_TRUE(m.Erase("a"));
  EXPECT_FALSE(m.Erase("a"));
  EXPECT_EQ(m.size(), 2u);
  EXPECT_EQ(Items(m), (std::vector<std::pair<std::string, int>>{{"b", 20}, {"c", 3}}));
}

TEST(PMapTest, CopiesAreIndependentSnapshots) {
  PMap<int> m;
  for (int i = 0; i < 100; ++i) m.Set(absl::StrCat("k", i), i);
  PMap<int> snap = m;
  EXPECT_TRUE(snap.SameAs(m));
  m.Set("k5", 500);
  m.Erase("k6");
  m.Set("new", 1);
  EXPECT_FALSE(snap.SameAs(m));
  EXPECT_EQ(*snap.Find("k5"), 5);
  EXPECT_NE(snap.Find("k6"), nullptr);
  EXPECT_EQ(snap.Find("new"), nullptr);
  EXPECT_EQ(snap.size(), 100u);
  EXPECT_EQ(*m.Find("k5"), 500);
  EXPECT_EQ(m.Find("k6"), nullptr);
  EXPECT_EQ(m.size(), 100u);
}

TEST(PMapTest, PrefixAndLowerBoundScans) {
  PMap<int> m;
  for (const char* k : {"ab", "abc", "abd", "ac", "b", "a"}) m.Set(k, 0);
  std::vector<std::string> got;
  m.ForEachPrefix("ab", [&](absl::string_view k, const int&) {
    got.emplace_back(k);
    return true;
  });
  EXPECT_EQ(got, (std::vector<std::string>{"ab", "abc", "abd"}));
  got.clear();
  m.ForEachFrom("abz", [&](absl::string_view k, const int&) {
    got.emplace_back(k);
    return got.size() < 2;  // stop early
  });
  EXPECT_EQ(got, (std::vector<std::string>{"ac", "b"}));
  got.clear();
  m.ForEachPrefix("zz", [&](absl::string_view k, const int&) {
    got.emplace_back(k);
    return true;
  });
  EXPECT_TRUE(got.empty());
}

// Random operations against std::map, keeping old versions and checking they never change.
TEST(PMapTest, MatchesStdMapUnderRandomOperationsAndKeepsOldVersions) {
  std::mt19937 rng(7);
  PMap<int> m;
  std::map<std::string, int> ref;
  std::vector<std::pair<PMap<int>, std::map<std::string, int>>> versions;
  for (int step = 0; step < 20000; ++step) {
    std::string key = absl::StrCat("key", rng() % 500);
    if (rng() % 3 == 0) {
      EXPECT_EQ(m.Erase(key), ref.erase(key) == 1);
    } else {
      int v = static_cast<int>(rng());
      m.Set(key, v);
      ref[key] = v;
    }
    if (step % 1000 == 0) versions.emplace_back(m, ref);
  }
  auto check = [](const PMap<int>& pm, const std::map<std::string, int>& r) {
    ASSERT_EQ(pm.size(), r.size());
    std::vector<std::pair<std::string, int>> want(r.begin(), r.end());
    EXPECT_EQ(Items(pm), want);
  };
  check(m, ref);
  for (const auto& [pm, r] : versions) check(pm, r);
}

TEST(PMapTest, StaysShallowWithManyKeys) {
  PMap<int> m;
  std::mt19937_64 rng(1);
  for (int i = 0; i < 100000; ++i) m.Set(absl::StrCat(rng()), i);
  // Expected treap height is about 3 ln n (~35 for 1e5); a list would be 1e5.
  EXPECT_LT(m.Height(), 80u);
  // Sequential keys (the worst case for an unbalanced tree) are spread by the hash priority.
  PMap<int> seq;
  for (int i = 0; i < 100000; ++i) seq.Set(absl::StrFormat("%08d", i), i);
  EXPECT_LT(seq.Height(), 80u);
}

}  // namespace
}  // namespace shoal::manager::store
