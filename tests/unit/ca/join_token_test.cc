#include "manager/ca/join_token.h"

#include <regex>

#include "gtest/gtest.h"

namespace shoal::manager::ca {
namespace {

std::string Digest(char fill) { return std::string(32, fill); }

TEST(JoinTokenTest, GeneratedTokenHasDocumentedShapeAndParses) {
  base::SystemRandom random;
  std::string token = GenerateJoinToken(Digest('\x42'), random);
  EXPECT_TRUE(std::regex_match(token, std::regex("SHLTKN-1-[0-9a-z]{50}-[0-9a-z]{25}"))) << token;
  auto parsed = ParseJoinToken(token);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->root_digest, Digest('\x42'));
  EXPECT_EQ(parsed->secret.size(), 16u);
  EXPECT_EQ(FormatJoinToken(*parsed), token);
}

TEST(JoinTokenTest, Base36RoundTripsExtremes) {
  EXPECT_EQ(EncodeBase36(std::string(32, '\0'), 50), std::string(50, '0'));
  std::string max(32, '\xff');
  std::string enc = EncodeBase36(max, 50);
  EXPECT_NE(enc[0], '0');  // 2^256 needs all 50 digits
  EXPECT_EQ(*DecodeBase36(enc, 32), max);
  EXPECT_EQ(*DecodeBase36(EncodeBase36(std::string(16, '\xff'), 25), 16), std::string(16, '\xff'));
  EXPECT_FALSE(DecodeBase36(std::string(25, 'z'), 16).ok());  // 36^25-1 > 2^128
  EXPECT_FALSE(DecodeBase36("ABC", 16).ok());
}

TEST(JoinTokenTest, MalformedTokensExplainThemselves) {
  base::SystemRandom random;
  std::string good = GenerateJoinToken(Digest('a'), random);
  struct Case {
    std::string token;
    std::string expect;
  } cases[] = {
      {"", "malformed"},
      {"SWMTKN-1-" + good.substr(9), "malformed"},
      {"SHLTKN-2-" + good.substr(9), "unsupported version"},
      {good.substr(0, good.size() - 1), "secret must be 25"},
      {"SHLTKN-1-abc-" + good.substr(good.size() - 25), "digest must be 50"},
      {good.substr(0, good.size() - 25) + std::string(25, '!'), "not base36"},
      {good + "-extra", "malformed"},
  };
  for (const auto& c : cases) {
    auto parsed = ParseJoinToken(c.token);
    ASSERT_FALSE(parsed.ok()) << c.token;
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(parsed.status().message().find(c.expect), std::string::npos)
        << c.token << " -> " << parsed.status();
  }
}

TEST(JoinTokenTest, AuthorizeJoinPicksRoleAndRefusesOthers) {
  base::SystemRandom random;
  std::string digest = Digest('d');
  std::string worker = GenerateJoinToken(digest, random);
  std::string manager = GenerateJoinToken(digest, random);
  EXPECT_EQ(*AuthorizeJoin(worker, worker, manager, digest), Role::kWorker);
  EXPECT_EQ(*AuthorizeJoin(manager, worker, manager, digest), Role::kManager);

  std::string rotated = GenerateJoinToken(digest, random);
  auto s = AuthorizeJoin(worker, rotated, manager, digest).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_NE(s.message().find("wrong or rotated"), std::string::npos);

  std::string other_cluster = GenerateJoinToken(Digest('e'), random);
  s = AuthorizeJoin(other_cluster, worker, manager, digest).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_NE(s.message().find("different root CA"), std::string::npos);

  EXPECT_EQ(AuthorizeJoin("garbage", worker, manager, digest).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(JoinTokenTest, JoinerVerifiesFetchedRootAgainstToken) {
  base::FakeClock clock;
  base::SystemRandom random;
  auto root = RootCA::Create(clock, random);
  auto impostor = RootCA::Create(clock, random);
  ASSERT_TRUE(root.ok() && impostor.ok());
  auto token = ParseJoinToken(GenerateJoinToken(root->digest(), random));
  ASSERT_TRUE(token.ok());
  EXPECT_TRUE(VerifyRootMatchesToken(*root, *token).ok());
  auto s = VerifyRootMatchesToken(*impostor, *token);
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
}

}  // namespace
}  // namespace shoal::manager::ca
