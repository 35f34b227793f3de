#include "runtime/images/reference.h"

#include <string>

#include "gtest/gtest.h"

namespace shoal::runtime::images {
namespace {

struct Good {
  const char* input;
  const char* full;      // Reference::String()
  const char* familiar;  // Reference::Familiar()
  const char* domain;
  const char* path;
  const char* tag;
};

const std::string kHex(64, 'a');
const std::string kDigest = "sha256:" + kHex;

TEST(ReferenceTest, NormalizesLikeDocker) {
  const Good cases[] = {
      {"busybox", "docker.io/library/busybox:latest", "busybox:latest", "docker.io",
       "library/busybox", "latest"},
      {"busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36", "docker.io",
       "library/busybox", "1.36"},
      {"library/busybox", "docker.io/library/busybox:latest", "busybox:latest", "docker.io",
       "library/busybox", "latest"},
      {"docker.io/busybox", "docker.io/library/busybox:latest", "busybox:latest", "docker.io",
       "library/busybox", "latest"},
      {"index.docker.io/busybox", "docker.io/library/busybox:latest", "busybox:latest", "docker.io",
       "library/busybox", "latest"},
      {"user/app:v2", "docker.io/user/app:v2", "user/app:v2", "docker.io", "user/app", "v2"},
      {"localhost/app", "localhost/app:latest", "localhost/app:latest", "localhost", "app",
       "latest"},
      {"localhost:5000/a/b/c:t", "localhost:5000/a/b/c:t", "localhost:5000/a/b/c:t",
       "localhost:5000", "a/b/c", "t"},
      {"127.0.0.1:5000/x", "127.0.0.1:5000/x:latest", "127.0.0.1:5000/x:latest", "127.0.0.1:5000",
       "x", "latest"},
      {"[::1]:5000/x:y", "[::1]:5000/x:y", "[::1]:5000/x:y", "[::1]:5000", "x", "y"},
      {"quay.io/coreos/etcd", "quay.io/coreos/etcd:latest", "quay.io/coreos/etcd:latest", "quay.io",
       "coreos/etcd", "latest"},
      // "localhost:5000" without a slash is image "localhost", tag "5000" (as in Docker).
      {"localhost:5000", "docker.io/library/localhost:5000", "localhost:5000", "docker.io",
       "library/localhost", "5000"},
      // An uppercase first element is taken as a domain.
      {"Registry/app", "Registry/app:latest", "Registry/app:latest", "Registry", "app", "latest"},
      {"a__b/c.d/e-----f:_T.a-G", "docker.io/a__b/c.d/e-----f:_T.a-G", "a__b/c.d/e-----f:_T.a-G",
       "docker.io", "a__b/c.d/e-----f", "_T.a-G"},
      {"my-registry.example.com:443/ns/img:1", "my-registry.example.com:443/ns/img:1",
       "my-registry.example.com:443/ns/img:1", "my-registry.example.com:443", "ns/img", "1"},
      {"library/deep/path", "docker.io/library/deep/path:latest", "library/deep/path:latest",
       "docker.io", "library/deep/path", "latest"},
  };
  for (const Good& c : cases) {
    SCOPED_TRACE(c.input);
    auto ref = ParseReference(c.input);
    ASSERT_TRUE(ref.ok()) << ref.status();
    EXPECT_EQ(ref->String(), c.full);
    EXPECT_EQ(ref->Familiar(), c.familiar);
    EXPECT_EQ(ref->domain, c.domain);
    EXPECT_EQ(ref->path, c.path);
    EXPECT_EQ(ref->tag, c.tag);
    EXPECT_TRUE(ref->digest.empty());
  }
}

TEST(ReferenceTest, DigestWithoutTagHasNoDefaultTag) {
  auto ref = ParseReference("localhost:5000/x@" + kDigest);
  ASSERT_TRUE(ref.ok()) << ref.status();
  EXPECT_EQ(ref->tag, "");
  EXPECT_EQ(ref->digest.String(), kDigest);
  EXPECT_EQ(ref->ManifestReference(), kDigest);
  EXPECT_EQ(ref->String(), "localhost:5000/x@" + kDigest);
}

TEST(ReferenceTest, TagAndDigestKeepsBothAndPullsByDigest) {
  auto ref = ParseReference("busybox:1.36@" + kDigest);
  ASSERT_TRUE(ref.ok()) << ref.status();
  EXPECT_EQ(ref->tag, "1.36");
  EXPECT_EQ(ref->ManifestReference(), kDigest);
  EXPECT_EQ(ref->Familiar(), "busybox:1.36@" + kDigest);
}

TEST(ReferenceTest, RegistryHost) {
  EXPECT_EQ(ParseReference("busybox")->RegistryHost(), "registry-1.docker.io");
  EXPECT_EQ(ParseReference("localhost:5000/a")->RegistryHost(), "localhost:5000");
}

struct Bad {
  std::string input;
  std::string reason;  // substring of the error message
};

TEST(ReferenceTest, RejectsMalformedWithReason) {
  const Bad cases[] = {
      {"", "at least one component"},
      {kHex, "64-byte hexadecimal"},
      {"Busybox", "must be lowercase"},
      {"user/App", "must be lowercase"},
      {"busybox:", "invalid tag"},
      {"busybox:-x", "must start with"},
      {"busybox:a/b", "invalid registry domain"},  // "busybox:a" has a colon: a domain
      {"busybox:" + std::string(129, 'a'), "longer than 128"},
      {"busybox:t@t", "invalid digest"},
      {"busybox@sha256:abc", "needs 64 hex"},
      {"busybox@md5:" + kHex, "unsupported digest algorithm"},
      {"busybox@sha256:" + std::string(64, 'A'), "lowercase"},
      {"busybox@" + kHex, "expected <algorithm>:<hex>"},
      {"a//b", "empty path component"},
      {"a/b/", "empty path component"},
      {"/a", "empty path component"},
      {"-a/b", "invalid path component"},
      {"a_/b", "invalid path component"},
      {"a___b", "invalid path component"},
      {"a..b", "invalid path component"},
      {"a b", "invalid path component"},
      {"exa_mple.com/x", "invalid registry domain"},
      {"example.com:/x", "invalid registry domain"},
      {"example.com:5x/x", "invalid registry domain"},
      {"-example.com/x", "invalid registry domain"},
      {"[::1/x", "invalid registry domain"},
      {"[zz]:5000/x", "invalid registry domain"},
      {"x.io/" + std::string(260, 'a'), "not be more than 255"},
  };
  for (const Bad& c : cases) {
    SCOPED_TRACE(c.input);
    auto ref = ParseReference(c.input);
    ASSERT_FALSE(ref.ok()) << ref->String();
    EXPECT_EQ(ref.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(std::string(ref.status().message()).find(c.reason), std::string::npos)
        << ref.status();
    EXPECT_NE(std::string(ref.status().message()).find("invalid reference"), std::string::npos);
  }
}

TEST(ReferenceTest, ValidateTag) {
  EXPECT_TRUE(ValidateTag("v1.2.3-rc_1").ok());
  EXPECT_TRUE(ValidateTag(std::string(128, 'x')).ok());
  EXPECT_FALSE(ValidateTag(std::string(129, 'x')).ok());
  EXPECT_FALSE(ValidateTag(".x").ok());
  EXPECT_FALSE(ValidateTag("a:b").ok());
}

}  // namespace
}  // namespace shoal::runtime::images
