#include "lb/ipvs_backend.h"

#include <arpa/inet.h>

#include "gtest/gtest.h"

#define RETURN_GATE \
  if (absl::Status g = Gate(); !g.ok()) return g

namespace shoal::lb {
namespace {
namespace ipvs = kernel::ipvs;

// Wraps the fake to fail the n-th mutating call (to test rollback).
class FlakyIpvs : public ipvs::Ipvs {
 public:
  explicit FlakyIpvs(ipvs::Ipvs* inner) : inner_(inner) {}
  int fail_at = -1;
  absl::Status Gate() {
    return calls_++ == fail_at ? absl::UnavailableError("injected") : absl::OkStatus();
  }
  absl::Status AddService(const ipvs::ServiceSpec& s) override {
    RETURN_GATE;
    return inner_->AddService(s);
  }
  absl::Status UpdateService(const ipvs::ServiceSpec& s) override {
    RETURN_GATE;
    return inner_->UpdateService(s);
  }
  absl::Status DeleteService(const ipvs::ServiceKey& k) override {
    RETURN_GATE;
    return inner_->DeleteService(k);
  }
  absl::Status AddDest(const ipvs::ServiceKey& k, const ipvs::DestSpec& d) override {
    RETURN_GATE;
    return inner_->AddDest(k, d);
  }
  absl::Status UpdateDest(const ipvs::ServiceKey& k, const ipvs::DestSpec& d) override {
    RETURN_GATE;
    return inner_->UpdateDest(k, d);
  }
  absl::Status DeleteDest(const ipvs::ServiceKey& k, const ipvs::DestSpec& d) override {
    RETURN_GATE;
    return inner_->DeleteDest(k, d);
  }
  absl::StatusOr<std::vector<ipvs::ServiceState>> List() override { return inner_->List(); }
  absl::Status Flush() override { return inner_->Flush(); }

 private:
  ipvs::Ipvs* inner_;
  int calls_ = 0;
};

Service Web() {
  Service s;
  s.name = "web";
  s.vip = "10.0.0.2";
  s.port = 80;
  s.backends = {{"10.0.1.1", 8080, 1}, {"10.0.1.2", 8080, 1}};
  return s;
}

class IpvsBackendTest : public ::testing::Test {
 protected:
  std::unique_ptr<ipvs::Ipvs> fake_ = ipvs::NewFakeIpvs();
  FlakyIpvs* flaky_ = new FlakyIpvs(fake_.get());
  IpvsBackend backend_{std::unique_ptr<ipvs::Ipvs>(flaky_)};
};

TEST_F(IpvsBackendTest, AddressServiceWithMasqDestinations) {
  ASSERT_TRUE(backend_.Apply(Change{{Web()}, {}}).ok());
  auto list = *fake_->List();
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].spec.key.protocol, 6);
  EXPECT_EQ(list[0].spec.key.port, 80);
  EXPECT_EQ(list[0].spec.key.addr, std::string("\x0a\x00\x00\x02", 4));
  EXPECT_EQ(list[0].spec.scheduler, "wrr");
  ASSERT_EQ(list[0].dests.size(), 2u);
  EXPECT_EQ(list[0].dests[0].fwd_method, ipvs::kFwdMasq);
}

TEST_F(IpvsBackendTest, DrainIsWeightZeroAndRemovalDeletes) {
  ASSERT_TRUE(backend_.Apply(Change{{Web()}, {}}).ok());
  ASSERT_TRUE(Drain(backend_, "web", "10.0.1.2", 8080).ok());
  auto list = *fake_->List();
  EXPECT_EQ(list[0].dests[1].weight, 0u);
  EXPECT_EQ(list[0].dests.size(), 2u);  // still there: established connections continue
  Service one = Web();
  one.backends.pop_back();
  ASSERT_TRUE(backend_.Apply(Change{{one}, {}}).ok());
  EXPECT_EQ((*fake_->List())[0].dests.size(), 1u);
  ASSERT_TRUE(backend_.Apply(Change{{}, {"web"}}).ok());
  EXPECT_TRUE(fake_->List()->empty());
}

TEST_F(IpvsBackendTest, FailureMidwayRollsBack) {
  ASSERT_TRUE(backend_.Apply(Change{{Web()}, {}}).ok());
  auto before = *fake_->List();
  Service other = Web();
  other.name = "other";
  other.vip = "10.0.0.3";
  flaky_->fail_at = 5;  // second dest of "other" (after 3 calls for web: svc + 2 dests)
  EXPECT_FALSE(backend_.Apply(Change{{other}, {}}).ok());
  auto after = *fake_->List();
  ASSERT_EQ(after.size(), before.size());
  EXPECT_EQ(backend_.Services().size(), 1u);
}

TEST_F(IpvsBackendTest, PublishedPortsAreNotSupportedYet) {
  Service p = Web();
  p.frontend = Frontend::kPublished;
  p.vip = "";
  EXPECT_EQ(backend_.Apply(Change{{p}, {}}).code(), absl::StatusCode::kUnimplemented);
}

}  // namespace
}  // namespace shoal::lb
