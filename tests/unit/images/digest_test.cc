#include "runtime/images/digest.h"

#include "gtest/gtest.h"

namespace shoal::runtime::images {
namespace {

TEST(DigestTest, Sha256KnownVectors) {
  EXPECT_EQ(Sha256Of("").String(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  Sha256 h;
  h.Update("ab");
  h.Update("c");
  EXPECT_EQ(h.Finish().String(),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(DigestTest, ParseRoundTrip) {
  auto d = ParseDigest("sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->algorithm, "sha256");
  EXPECT_FALSE(ParseDigest("sha256:").ok());
  EXPECT_FALSE(ParseDigest(":abc").ok());
  EXPECT_FALSE(ParseDigest("sha1:abc").ok());
}

TEST(DigestTest, ChainIdFollowsImageSpec) {
  Digest a = Sha256Of("a"), b = Sha256Of("b");
  EXPECT_EQ(ChainIdOf(Digest{}, a), a);
  EXPECT_EQ(ChainIdOf(a, b), Sha256Of(a.String() + " " + b.String()));
}

}  // namespace
}  // namespace shoal::runtime::images
