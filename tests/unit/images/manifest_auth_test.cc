#include "gtest/gtest.h"
#include "runtime/images/auth.h"
#include "runtime/images/http.h"
#include "runtime/images/manifest.h"
#include "tests/unit/images/test_util.h"

namespace shoal::runtime::images {
namespace {

const std::string kD = "sha256:" + std::string(64, 'a');

TEST(ManifestTest, ParsesDockerAndOciManifests) {
  std::string docker = R"({"schemaVersion":2,"mediaType":")" + std::string(media::kDockerManifest) +
                       R"(","config":{"mediaType":"x","digest":")" + kD +
                       R"(","size":7},"layers":[{"mediaType":")" + media::kDockerLayerGzip +
                       R"(","digest":")" + kD + R"(","size":9}]})";
  auto m = ParseManifest(docker);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->media_type, media::kDockerManifest);
  EXPECT_EQ(m->layers.size(), 1u);
  EXPECT_EQ(m->layers[0].size, 9);
  EXPECT_EQ(*DetectMediaType(docker), media::kDockerManifest);
  // No mediaType: OCI manifest by shape.
  std::string oci =
      R"({"schemaVersion":2,"config":{"digest":")" + kD + R"(","size":1},"layers":[]})";
  EXPECT_EQ(*DetectMediaType(oci), media::kOciManifest);
  EXPECT_TRUE(ParseManifest(oci).ok());
}

TEST(ManifestTest, ErrorsNameTheField) {
  auto bad_digest =
      ParseManifest(R"({"schemaVersion":2,"config":{"digest":"sha256:xyz","size":1},"layers":[]})");
  ASSERT_FALSE(bad_digest.ok());
  EXPECT_NE(std::string(bad_digest.status().message()).find("config.digest"), std::string::npos);
  auto bad_layer = ParseManifest(R"({"schemaVersion":2,"config":{"digest":")" + kD +
                                 R"(","size":1},"layers":[{"mediaType":"text/plain","digest":")" +
                                 kD + R"(","size":1}]})");
  ASSERT_FALSE(bad_layer.ok());
  EXPECT_NE(std::string(bad_layer.status().message()).find("layers[0].mediaType"),
            std::string::npos);
  EXPECT_FALSE(ParseManifest("{").ok());
  EXPECT_FALSE(ParseManifest(R"({"schemaVersion":1})").ok());
  EXPECT_EQ(DetectMediaType(R"({"schemaVersion":1,"fsLayers":[]})").status().code(),
            absl::StatusCode::kUnimplemented);
}

TEST(ManifestTest, SelectsPlatformFromIndex) {
  std::string idx = R"({"schemaVersion":2,"manifests":[
    {"digest":")" + kD +
                    R"(","size":1,"platform":{"os":"linux","architecture":"arm64","variant":"v8"}},
    {"digest":"sha256:)" +
                    std::string(64, 'b') +
                    R"(","size":1,"platform":{"os":"linux","architecture":"amd64"}}]})";
  auto index = ParseIndex(idx);
  ASSERT_TRUE(index.ok()) << index.status();
  auto d = SelectPlatform(*index, {"linux", "amd64", ""});
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->digest.hex, std::string(64, 'b'));
  auto none = SelectPlatform(*index, {"linux", "s390x", ""});
  ASSERT_FALSE(none.ok());
  EXPECT_NE(std::string(none.status().message()).find("linux/arm64/v8"), std::string::npos);
}

TEST(AuthTest, ParsesChallenges) {
  auto c = ParseChallenge(
      R"(Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push")");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->scheme, "bearer");
  EXPECT_EQ(c->params["realm"], "https://auth.example/token");
  EXPECT_EQ(c->params["service"], "registry.example");
  EXPECT_EQ(c->params["scope"], "repository:a/b:pull,push");
  auto b = ParseChallenge(R"(Basic realm="shoaltest")");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->scheme, "basic");
  EXPECT_FALSE(ParseChallenge(R"(Bearer realm="unterminated)").ok());
}

TEST(AuthTest, Base64RoundTrip) {
  for (std::string s : {"", "a", "ab", "abc", "user:p@ss:word"}) {
    auto d = Base64Decode(Base64Encode(s));
    ASSERT_TRUE(d.ok());
    EXPECT_EQ(*d, s);
  }
  EXPECT_EQ(Base64Encode("shoal:s3cret"), "c2hvYWw6czNjcmV0");
  EXPECT_FALSE(Base64Decode("abc").ok());
}

TEST(AuthTest, CredentialStorePutGetErase) {
  testing::TempDir t;
  CredentialStore cs(t / "sub/auth.json");
  EXPECT_FALSE(cs.Get("r:5000")->has_value());
  ASSERT_TRUE(cs.Put("r:5000", {"u", "p:w"}).ok());
  auto got = cs.Get("r:5000");
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ((*got)->username, "u");
  EXPECT_EQ((*got)->password, "p:w");
  ASSERT_TRUE(cs.Erase("r:5000").ok());
  EXPECT_FALSE(cs.Get("r:5000")->has_value());
}

TEST(HttpTest, ResolvesLocations) {
  EXPECT_EQ(ResolveUrl("http://h:5000/v2/x/blobs/uploads/", "/v2/x/blobs/uploads/abc?s=1"),
            "http://h:5000/v2/x/blobs/uploads/abc?s=1");
  EXPECT_EQ(ResolveUrl("http://h/v2/", "https://o/u"), "https://o/u");
}

}  // namespace
}  // namespace shoal::runtime::images
