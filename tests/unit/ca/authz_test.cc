// The per-method access policy, decided without gRPC.
#include "manager/ca/authz.h"

#include <set>

#include "base/clock.h"
#include "base/random.h"
#include "gtest/gtest.h"
#include "manager/ca/pki.h"

namespace shoal::manager::ca {
namespace {

TEST(RequiredAccessTest, PolicyTable) {
  EXPECT_EQ(RequiredAccess("/shoal.api.v1.CA/GetRootCACertificate"), Access::kPublic);
  EXPECT_EQ(RequiredAccess("/shoal.api.v1.CA/GetUnlockKey"), Access::kManager);
  EXPECT_EQ(RequiredAccess("/shoal.api.v1.NodeCA/IssueNodeCertificate"), Access::kPublic);
  EXPECT_EQ(RequiredAccess("/shoal.api.v1.Dispatcher/Session"), Access::kNode);
  EXPECT_EQ(RequiredAccess("/shoal.api.v1.Control/ListNodes"), Access::kManager);
  EXPECT_EQ(RequiredAccess("/shoal.api.v1.Raft/ProcessRaftMessage"), Access::kManager);
  EXPECT_EQ(RequiredAccess("/shoal.api.v1.RaftMembership/Join"), Access::kManager);
  // Default deny: unknown services, a bare prefix, prefix tricks.
  EXPECT_EQ(RequiredAccess("/shoal.api.v1.Unknown/Do"), std::nullopt);
  EXPECT_EQ(RequiredAccess("/shoal.api.v1.Control/"), std::nullopt);
  EXPECT_EQ(RequiredAccess("/shoal.api.v1.CA/GetRootCACertificateX"), std::nullopt);
  EXPECT_EQ(RequiredAccess("/shoal.api.v1.ControlX/ListNodes"), std::nullopt);
  EXPECT_EQ(RequiredAccess(""), std::nullopt);
}

class DecideTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto root = RootCA::Create(clock_, random_);
    ASSERT_TRUE(root.ok());
    root_ = std::make_shared<const RootCA>(*root);
    Authorizer::Options o;
    o.root = root_;
    o.cluster_id = "cluster1";
    o.clock = &clock_;
    o.is_removed = [this](const std::string& id) { return removed_.contains(id); };
    authz_ = std::make_unique<Authorizer>(o);
  }
  std::string Cert(const std::string& id, Role role, const std::string& cluster = "cluster1",
                   const RootCA* by = nullptr) {
    auto key = GenerateP256Key();
    auto csr = CreateCsrPem(key->get(), "x");
    RootCA::IssueOptions o;
    o.node_id = id;
    o.role = role;
    o.cluster_id = cluster;
    auto c = (by ? by : root_.get())->IssueNodeCertificate(*csr, o, clock_, random_);
    EXPECT_TRUE(c.ok()) << c.status();
    return *c;
  }

  base::RealClock clock_;
  base::SystemRandom random_;
  std::shared_ptr<const RootCA> root_;
  std::set<std::string> removed_;
  std::unique_ptr<Authorizer> authz_;
};

TEST_F(DecideTest, RolesAgainstMethods) {
  std::string mgr = Cert("m1", Role::kManager), wrk = Cert("w1", Role::kWorker);
  auto m = authz_->Decide("/shoal.api.v1.Control/ListNodes", mgr);
  ASSERT_TRUE(m.ok()) << m.status();
  ASSERT_TRUE(m->has_value());
  EXPECT_EQ((*m)->node_id, "m1");
  auto w = authz_->Decide("/shoal.api.v1.Control/ListNodes", wrk);
  EXPECT_EQ(w.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(authz_->Decide("/shoal.api.v1.Dispatcher/Session", wrk).ok());
  EXPECT_EQ(authz_->Decide("/shoal.api.v1.Raft/ProcessRaftMessage", wrk).status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(authz_->Decide("/shoal.api.v1.Nope/X", mgr).status().code(),
            absl::StatusCode::kPermissionDenied);
}

TEST_F(DecideTest, AnonymousOnlyForPublicMethods) {
  auto pub = authz_->Decide("/shoal.api.v1.NodeCA/IssueNodeCertificate", "");
  ASSERT_TRUE(pub.ok());
  EXPECT_FALSE(pub->has_value());
  EXPECT_EQ(authz_->Decide("/shoal.api.v1.Dispatcher/Session", "").status().code(),
            absl::StatusCode::kUnauthenticated);
}

TEST_F(DecideTest, ForeignClusterRemovedNodeAndForeignRoot) {
  std::string foreign = Cert("m2", Role::kManager, "cluster2");
  auto f = authz_->Decide("/shoal.api.v1.Control/ListNodes", foreign);
  EXPECT_EQ(f.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_NE(f.status().message().find("cluster2"), std::string::npos);

  removed_.insert("m3");
  auto r = authz_->Decide("/shoal.api.v1.Control/ListNodes", Cert("m3", Role::kManager));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kPermissionDenied);
  // A removed node may still go through the public join path, as an anonymous caller.
  auto rejoin = authz_->Decide("/shoal.api.v1.NodeCA/IssueNodeCertificate",
                               Cert("m3", Role::kManager));
  ASSERT_TRUE(rejoin.ok());
  EXPECT_FALSE(rejoin->has_value());

  auto other_root = RootCA::Create(clock_, random_);
  ASSERT_TRUE(other_root.ok());
  auto o = authz_->Decide("/shoal.api.v1.Dispatcher/Session",
                          Cert("w9", Role::kWorker, "cluster1", &*other_root));
  EXPECT_EQ(o.status().code(), absl::StatusCode::kUnauthenticated);
}

}  // namespace
}  // namespace shoal::manager::ca
