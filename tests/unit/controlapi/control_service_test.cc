// The Control service through a real gRPC server on a unix socket, over a store.
#include "manager/controlapi/control_service.h"

#include <stdlib.h>
#include <unistd.h>

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "manager/store/fake_proposer.h"

namespace shoal::manager::controlapi {
namespace {

class ControlServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    proposer_.Attach(&store_);
    char tmpl[] = "/tmp/shoal-controlapi-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    std::string addr = "unix:" + dir_ + "/control.sock";
    grpc::ServerBuilder builder;
    builder.AddListeningPort(addr, grpc::InsecureServerCredentials());
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    stub_ = api::Control::NewStub(grpc::CreateChannel(addr, grpc::InsecureChannelCredentials()));
  }
  void TearDown() override {
    server_->Shutdown();
    std::filesystem::remove_all(dir_);
  }

  api::ServiceSpec Spec(const std::string& name) {
    api::ServiceSpec s;
    s.mutable_annotations()->set_name(name);
    s.mutable_replicated()->set_replicas(1);
    s.mutable_task()->mutable_container()->set_image("busybox");
    return s;
  }
  grpc::Status Create(const api::ServiceSpec& spec, api::Service* out = nullptr) {
    grpc::ClientContext ctx;
    api::CreateServiceRequest req;
    *req.mutable_spec() = spec;
    api::CreateServiceResponse resp;
    auto s = stub_->CreateService(&ctx, req, &resp);
    if (out != nullptr) *out = resp.service();
    return s;
  }

  store::FakeProposer proposer_;
  base::FakeClock clock_;
  base::SystemRandom random_;
  store::MemoryStore store_{&proposer_, &clock_, &random_};
  ControlService service_{store_, random_};
  std::string dir_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<api::Control::Stub> stub_;
};

TEST_F(ControlServiceTest, CreateGetAndDuplicateNames) {
  api::Service svc;
  ASSERT_TRUE(Create(Spec("web"), &svc).ok());
  EXPECT_EQ(svc.spec_version(), 1u);
  EXPECT_GT(svc.meta().version().index(), 0u);
  grpc::ClientContext ctx;
  api::GetServiceRequest get;
  get.set_service_id("web");  // by name
  api::GetServiceResponse got;
  ASSERT_TRUE(stub_->GetService(&ctx, get, &got).ok());
  EXPECT_EQ(got.service().id(), svc.id());
  auto dup = Create(Spec("web"));
  EXPECT_EQ(dup.error_code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_NE(dup.error_message().find("already in use"), std::string::npos);
}

TEST_F(ControlServiceTest, InvalidSpecIsRefusedWithTheField) {
  auto spec = Spec("web");
  spec.mutable_task()->mutable_resources()->mutable_limits()->set_memory_bytes(1);
  auto s = Create(spec);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("spec.task.resources.limits.memory_bytes"), std::string::npos);
  spec = Spec("web");
  spec.mutable_task()->add_networks()->set_target("nope");
  s = Create(spec);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_NE(s.error_message().find("spec.task.networks: network 'nope' not found"), std::string::npos)
      << s.error_message();
}

TEST_F(ControlServiceTest, UpdateChecksVersionAndModeAndKeepsPreviousSpec) {
  api::Service svc;
  ASSERT_TRUE(Create(Spec("web"), &svc).ok());
  api::UpdateServiceRequest req;
  req.set_service_id(svc.id());
  *req.mutable_service_version() = svc.meta().version();
  *req.mutable_spec() = Spec("web");
  req.mutable_spec()->mutable_replicated()->set_replicas(5);
  api::UpdateServiceResponse resp;
  {
    grpc::ClientContext ctx;
    ASSERT_TRUE(stub_->UpdateService(&ctx, req, &resp).ok());
  }
  EXPECT_EQ(resp.service().spec().replicated().replicas(), 5u);
  EXPECT_EQ(resp.service().spec_version(), 2u);
  EXPECT_EQ(resp.service().previous_spec().replicated().replicas(), 1u);
  {
    grpc::ClientContext ctx;  // the same (now stale) version again
    auto s = stub_->UpdateService(&ctx, req, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::ABORTED);
    EXPECT_NE(s.error_message().find("update out of sequence"), std::string::npos);
  }
  {
    grpc::ClientContext ctx;
    auto current = *store_.View().Get<api::Service>(svc.id());
    *req.mutable_service_version() = current.meta().version();
    req.mutable_spec()->mutable_global();
    auto s = stub_->UpdateService(&ctx, req, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_NE(s.error_message().find("mode change"), std::string::npos);
  }
  {
    grpc::ClientContext ctx;  // rollback returns to the previous spec
    api::UpdateServiceRequest rb;
    rb.set_service_id("web");
    *rb.mutable_service_version() = store_.View().Get<api::Service>(svc.id())->meta().version();
    rb.set_rollback(true);
    ASSERT_TRUE(stub_->UpdateService(&ctx, rb, &resp).ok());
    EXPECT_EQ(resp.service().spec().replicated().replicas(), 1u);
    // Marked as a rollback of exactly this spec version (the orchestrator then rolls it out
    // with the rollback config).
    EXPECT_EQ(resp.service().update_status().state(), api::UpdateStatus::STATE_ROLLBACK_STARTED);
    EXPECT_EQ(resp.service().update_status().spec_version(), resp.service().spec_version());
  }
}

TEST_F(ControlServiceTest, ListFiltersAndPaginatesWithoutMissingAny) {
  for (int i = 0; i < 25; ++i) {
    auto spec = Spec(absl::StrCat(i % 2 == 0 ? "front-" : "back-", i));
    (*spec.mutable_annotations()->mutable_labels())["tier"] = i % 2 == 0 ? "front" : "back";
    ASSERT_TRUE(Create(spec).ok());
  }
  std::set<std::string> seen;
  api::ListServicesRequest req;
  req.mutable_page()->set_page_size(4);
  (*req.mutable_filters()->mutable_labels())["tier"] = "front";
  int pages = 0;
  do {
    grpc::ClientContext ctx;
    api::ListServicesResponse resp;
    ASSERT_TRUE(stub_->ListServices(&ctx, req, &resp).ok());
    EXPECT_LE(resp.services_size(), 4);
    for (const auto& s : resp.services()) {
      EXPECT_EQ(s.spec().annotations().labels().at("tier"), "front");
      EXPECT_TRUE(seen.insert(s.id()).second) << "duplicate across pages";
    }
    req.mutable_page()->set_page_token(resp.next_page_token());
    ++pages;
  } while (!req.page().page_token().empty());
  EXPECT_EQ(seen.size(), 13u);
  EXPECT_EQ(pages, 4);

  grpc::ClientContext ctx;
  api::ListServicesRequest prefix;
  prefix.mutable_filters()->add_name_prefixes("back-1");
  api::ListServicesResponse resp;
  ASSERT_TRUE(stub_->ListServices(&ctx, prefix, &resp).ok());
  EXPECT_EQ(resp.services_size(), 6);  // back-1, back-11, back-13, ..., back-19
}

TEST_F(ControlServiceTest, SecretsNeverLeaveAndInUseObjectsCannotBeRemoved) {
  api::CreateSecretRequest sreq;
  sreq.mutable_spec()->mutable_annotations()->set_name("db-pass");
  sreq.mutable_spec()->set_data("hunter2");
  api::CreateSecretResponse sresp;
  {
    grpc::ClientContext ctx;
    ASSERT_TRUE(stub_->CreateSecret(&ctx, sreq, &sresp).ok());
  }
  EXPECT_TRUE(sresp.secret().spec().data().empty());
  {
    grpc::ClientContext ctx;
    api::ListSecretsResponse list;
    ASSERT_TRUE(stub_->ListSecrets(&ctx, api::ListSecretsRequest(), &list).ok());
    ASSERT_EQ(list.secrets_size(), 1);
    EXPECT_TRUE(list.secrets(0).spec().data().empty());
  }
  // The data is stored, just never returned.
  EXPECT_EQ(store_.View().Get<api::Secret>(sresp.secret().id())->spec().data(), "hunter2");

  api::CreateNetworkRequest nreq;
  nreq.mutable_spec()->mutable_annotations()->set_name("backend");
  api::CreateNetworkResponse nresp;
  {
    grpc::ClientContext ctx;
    ASSERT_TRUE(stub_->CreateNetwork(&ctx, nreq, &nresp).ok());
  }
  auto spec = Spec("db");
  spec.mutable_task()->add_networks()->set_target("backend");
  auto* ref = spec.mutable_task()->mutable_container()->add_secrets();
  ref->set_secret_id(sresp.secret().id());
  ref->set_secret_name("db-pass");
  api::Service svc;
  ASSERT_TRUE(Create(spec, &svc).ok());
  EXPECT_EQ(svc.spec().task().networks(0).target(), nresp.network().id());  // resolved to id
  {
    grpc::ClientContext ctx;
    api::RemoveNetworkRequest r;
    r.set_network_id("backend");
    api::RemoveNetworkResponse rr;
    auto s = stub_->RemoveNetwork(&ctx, r, &rr);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
    EXPECT_NE(s.error_message().find("in use by service db"), std::string::npos);
  }
  {
    grpc::ClientContext ctx;
    api::RemoveSecretRequest r;
    r.set_secret_id("db-pass");
    api::RemoveSecretResponse rr;
    EXPECT_EQ(stub_->RemoveSecret(&ctx, r, &rr).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  }
  {
    grpc::ClientContext ctx;
    api::RemoveServiceRequest r;
    r.set_service_id("db");
    api::RemoveServiceResponse rr;
    ASSERT_TRUE(stub_->RemoveService(&ctx, r, &rr).ok());
  }
  {
    grpc::ClientContext ctx;
    api::RemoveNetworkRequest r;
    r.set_network_id("backend");
    api::RemoveNetworkResponse rr;
    EXPECT_TRUE(stub_->RemoveNetwork(&ctx, r, &rr).ok());
  }
}

TEST_F(ControlServiceTest, SecondIngressNetworkIsRefused) {
  api::CreateNetworkRequest req;
  req.mutable_spec()->mutable_annotations()->set_name("ingress");
  req.mutable_spec()->set_ingress(true);
  api::CreateNetworkResponse resp;
  {
    grpc::ClientContext ctx;
    ASSERT_TRUE(stub_->CreateNetwork(&ctx, req, &resp).ok());
  }
  req.mutable_spec()->mutable_annotations()->set_name("ingress2");
  grpc::ClientContext ctx;
  auto s = stub_->CreateNetwork(&ctx, req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::ALREADY_EXISTS);
}

}  // namespace
}  // namespace shoal::manager::controlapi
