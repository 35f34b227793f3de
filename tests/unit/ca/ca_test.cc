#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include "base/file.h"
#include "gtest/gtest.h"
#include <openssl/pem.h>

#include "manager/ca/pki.h"
#include "manager/ca/root_ca.h"

namespace shoal::manager::ca {
namespace {

class CaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto root = RootCA::Create(clock_, random_);
    ASSERT_TRUE(root.ok()) << root.status();
    root_ = std::make_unique<RootCA>(*std::move(root));
    auto key = GenerateP256Key();
    ASSERT_TRUE(key.ok());
    node_key_ = *std::move(key);
    auto csr = CreateCsrPem(node_key_.get(), "ignored");
    ASSERT_TRUE(csr.ok());
    csr_ = *csr;
  }

  RootCA::IssueOptions Options(Role role = Role::kWorker) {
    RootCA::IssueOptions o;
    o.node_id = "node1abc";
    o.cluster_id = "clusterxyz";
    o.role = role;
    return o;
  }

  base::FakeClock clock_{absl::FromUnixSeconds(1'800'000'000)};
  base::SystemRandom random_;
  std::unique_ptr<RootCA> root_;
  PKeyPtr node_key_;
  std::string csr_;
};

// Runs a shell command, returning its exit status and stdout.
std::pair<int, std::string> RunShell(const std::string& cmd) {
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  char buf[512];
  while (p != nullptr && fgets(buf, sizeof(buf), p) != nullptr) out += buf;
  int rc = p != nullptr ? ::pclose(p) : -1;
  return {rc, out};
}

TEST_F(CaTest, IssuedCertificateCarriesIdentityAndVerifies) {
  auto cert = root_->IssueNodeCertificate(csr_, Options(Role::kManager), clock_, random_);
  ASSERT_TRUE(cert.ok()) << cert.status();
  auto id = root_->VerifyNodeCertificate(*cert, clock_.Now());
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(id->node_id, "node1abc");
  EXPECT_EQ(id->cluster_id, "clusterxyz");
  EXPECT_EQ(id->role, Role::kManager);
  EXPECT_EQ(id->not_before, clock_.Now() - kCertBackdate);
  EXPECT_EQ(id->not_after, clock_.Now() + kDefaultNodeCertValidity);
}

TEST_F(CaTest, OpensslCommandLineAgreesWithTheCertificate) {
  // An independent verifier: the openssl CLI, at the real current time.
  base::RealClock real;
  auto real_root = RootCA::Create(real, random_);
  ASSERT_TRUE(real_root.ok());
  auto cert = real_root->IssueNodeCertificate(csr_, Options(), real, random_);
  ASSERT_TRUE(cert.ok()) << cert.status();
  char tmpl[] = "/tmp/shoal-ca-test-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  std::string dir = tmpl;
  ASSERT_TRUE(base::WriteFileAtomic(dir + "/root.pem", real_root->cert_pem()).ok());
  ASSERT_TRUE(base::WriteFileAtomic(dir + "/node.pem", *cert).ok());
  auto [rc, out] = RunShell("openssl verify -purpose sslclient -CAfile " + dir + "/root.pem " + dir +
                       "/node.pem 2>&1");
  EXPECT_EQ(rc, 0) << out;
  auto [rc2, subject] = RunShell("openssl x509 -noout -subject -nameopt RFC2253 -in " + dir +
                            "/node.pem");
  EXPECT_EQ(rc2, 0);
  EXPECT_NE(subject.find("CN=node1abc,OU=shoal-worker,O=clusterxyz"), std::string::npos)
      << subject;
  auto [rc3, text] = RunShell("openssl x509 -noout -text -in " + dir + "/node.pem");
  EXPECT_NE(text.find("DNS:shoal-worker, DNS:node1abc"), std::string::npos) << text;
  EXPECT_NE(text.find("prime256v1"), std::string::npos) << text;
  std::filesystem::remove_all(dir);
}

TEST_F(CaTest, CertificateFromAnotherRootIsRefused) {
  auto other = RootCA::Create(clock_, random_);
  ASSERT_TRUE(other.ok());
  auto cert = other->IssueNodeCertificate(csr_, Options(), clock_, random_);
  ASSERT_TRUE(cert.ok());
  auto id = root_->VerifyNodeCertificate(*cert, clock_.Now());
  EXPECT_EQ(id.status().code(), absl::StatusCode::kPermissionDenied);
}

TEST_F(CaTest, ExpiredAndNotYetValidCertificatesAreRefused) {
  auto options = Options();
  options.validity = absl::Hours(2);
  auto cert = root_->IssueNodeCertificate(csr_, options, clock_, random_);
  ASSERT_TRUE(cert.ok());
  EXPECT_TRUE(root_->VerifyNodeCertificate(*cert, clock_.Now() + absl::Hours(1)).ok());
  auto expired = root_->VerifyNodeCertificate(*cert, clock_.Now() + absl::Hours(3));
  EXPECT_EQ(expired.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_NE(expired.status().message().find("expired"), std::string::npos) << expired.status();
  auto early = root_->VerifyNodeCertificate(*cert, clock_.Now() - absl::Hours(2));
  EXPECT_EQ(early.status().code(), absl::StatusCode::kPermissionDenied);
}

TEST_F(CaTest, BadIssueRequestsNameTheField) {
  auto o = Options();
  o.validity = absl::Minutes(30);
  auto s = root_->IssueNodeCertificate(csr_, o, clock_, random_).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("validity"), std::string::npos) << s;

  o = Options();
  o.node_id = "bad/id";
  s = root_->IssueNodeCertificate(csr_, o, clock_, random_).status();
  EXPECT_NE(s.message().find("node_id"), std::string::npos) << s;

  o = Options();
  o.cluster_id = "";
  s = root_->IssueNodeCertificate(csr_, o, clock_, random_).status();
  EXPECT_NE(s.message().find("cluster_id"), std::string::npos) << s;

  s = root_->IssueNodeCertificate("not a csr", Options(), clock_, random_).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("csr"), std::string::npos) << s;
}

TEST_F(CaTest, CsrWithForgedSignatureIsRefused) {
  // Swap in another key's public key: the CSR's self-signature no longer verifies.
  auto csr = CsrFromPem(csr_);
  ASSERT_TRUE(csr.ok());
  auto other = GenerateP256Key();
  ASSERT_TRUE(other.ok());
  ASSERT_EQ(X509_REQ_set_pubkey(csr->get(), other->get()), 1);
  BIO* bio = BIO_new(BIO_s_mem());
  ASSERT_EQ(PEM_write_bio_X509_REQ(bio, csr->get()), 1);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  std::string forged(data, n);
  BIO_free(bio);
  auto s = root_->IssueNodeCertificate(forged, Options(), clock_, random_).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("signature"), std::string::npos) << s;
}

TEST_F(CaTest, RootRoundTripsThroughPemAndChecksItsKey) {
  auto loaded = RootCA::FromPem(root_->cert_pem(), root_->key_pem());
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->digest(), root_->digest());
  EXPECT_EQ(loaded->digest().size(), 32u);
  auto cert = loaded->IssueNodeCertificate(csr_, Options(), clock_, random_);
  ASSERT_TRUE(cert.ok());
  EXPECT_TRUE(root_->VerifyNodeCertificate(*cert, clock_.Now()).ok());

  auto other = RootCA::Create(clock_, random_);
  auto mismatched = RootCA::FromPem(root_->cert_pem(), other->key_pem());
  EXPECT_EQ(mismatched.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(mismatched.status().message().find("does not match"), std::string::npos);
}

TEST_F(CaTest, VerifyOnlyRootCannotSign) {
  auto public_only = RootCA::FromPem(root_->cert_pem(), "");
  ASSERT_TRUE(public_only.ok());
  EXPECT_FALSE(public_only->can_sign());
  auto s = public_only->IssueNodeCertificate(csr_, Options(), clock_, random_).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(CaTest, NodeCertificateIsNotAcceptedAsRoot) {
  auto cert = root_->IssueNodeCertificate(csr_, Options(), clock_, random_);
  ASSERT_TRUE(cert.ok());
  auto as_root = RootCA::FromPem(*cert, "");
  EXPECT_EQ(as_root.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(as_root.status().message().find("not a CA"), std::string::npos);
}

TEST(RenewalTest, RenewalFallsBetweenHalfAndFourFifthsAndSpreads) {
  base::FakeRandom random(3);
  absl::Time nb = absl::FromUnixSeconds(0);
  absl::Time na = nb + absl::Hours(100);
  absl::Time lo = na, hi = nb;
  for (int i = 0; i < 2000; ++i) {
    absl::Time t = RenewalTime(nb, na, random);
    ASSERT_GE(t, nb + absl::Hours(50));
    ASSERT_LE(t, nb + absl::Hours(80));
    lo = std::min(lo, t);
    hi = std::max(hi, t);
  }
  EXPECT_LT(lo, nb + absl::Hours(52));
  EXPECT_GT(hi, nb + absl::Hours(78));
}

}  // namespace
}  // namespace shoal::manager::ca
