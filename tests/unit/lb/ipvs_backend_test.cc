#include "lb/ipvs_backend.h"

#include <arpa/inet.h>

#include <cstring>
#include <map>

#include "gtest/gtest.h"
#include "kernel/nft/fake_nft.h"

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

TEST_F(IpvsBackendTest, PublishedPortsNeedAnNftAdapter) {
  Service p = Web();
  p.frontend = Frontend::kPublished;
  p.vip = "";
  absl::Status st = backend_.Apply(Change{{p}, {}});
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition) << st;
  EXPECT_NE(std::string(st.message()).find("service web: published ports"), std::string::npos);
}

// Forwards to a FakeNft the test keeps (the backend owns its adapter).
class SharedNft : public kernel::nft::Nft {
 public:
  explicit SharedNft(kernel::nft::FakeNft* f) : f_(f) {}
  absl::Status Apply(const kernel::nft::Batch& b) override { return f_->Apply(b); }
  absl::StatusOr<std::vector<kernel::nft::TableRef>> ListTables() override {
    return f_->ListTables();
  }
  absl::StatusOr<kernel::nft::Table> GetTable(const kernel::nft::TableRef& t) override {
    return f_->GetTable(t);
  }

 private:
  kernel::nft::FakeNft* f_;
};

class IpvsPublishedTest : public ::testing::Test {
 protected:
  Service Pub(const std::string& name, uint16_t port) {
    Service p = Web();
    p.name = name;
    p.frontend = Frontend::kPublished;
    p.vip = "";
    p.port = port;
    return p;
  }
  // (proto, port) -> mark, as the kernel table holds them.
  std::map<std::pair<std::string, std::string>, uint32_t> Marks() {
    std::map<std::pair<std::string, std::string>, uint32_t> out;
    auto t = nft_.GetTable({kernel::nft::Family::kIp, "shoal-ipvs"});
    EXPECT_TRUE(t.ok()) << t.status();
    if (!t.ok()) return out;
    for (const auto& set : t->sets) {
      if (set.name != "pub-marks") continue;
      for (const auto& e : set.elements) {
        uint32_t mark;
        memcpy(&mark, e.data[0].bytes.data(), 4);
        out[{e.key[0].bytes, e.key[1].bytes}] = mark;
      }
    }
    return out;
  }
  std::unique_ptr<ipvs::Ipvs> fake_ = ipvs::NewFakeIpvs();
  FlakyIpvs* flaky_ = new FlakyIpvs(fake_.get());
  kernel::nft::FakeNft nft_;
  IpvsBackend backend_{std::unique_ptr<ipvs::Ipvs>(flaky_), std::make_unique<SharedNft>(&nft_)};
};

TEST_F(IpvsPublishedTest, PublishedPortIsAFwmarkServiceMarkedByNft) {
  ASSERT_TRUE(backend_.Apply(Change{{Pub("p1", 30080), Web()}, {}}).ok());
  EXPECT_EQ(backend_.MarkOf("p1"), 256u);
  EXPECT_EQ(backend_.MarkOf("web"), 0u);  // VIPs stay address services
  auto list = *fake_->List();
  ASSERT_EQ(list.size(), 2u);
  const ipvs::ServiceState* fw = list[0].spec.key.fwmark ? &list[0] : &list[1];
  EXPECT_EQ(fw->spec.key.fwmark, 256u);
  EXPECT_EQ(fw->spec.key.port, 0);
  EXPECT_EQ(fw->dests.size(), 2u);
  auto marks = Marks();
  ASSERT_EQ(marks.size(), 1u);
  EXPECT_EQ(marks.begin()->first.first, kernel::nft::Proto(6).bytes);
  EXPECT_EQ(marks.begin()->first.second, kernel::nft::Port(30080).bytes);
  EXPECT_EQ(marks.begin()->second, 256u);
  // Both hooks mark local-destined traffic through the map.
  auto t = *nft_.GetTable({kernel::nft::Family::kIp, "shoal-ipvs"});
  EXPECT_EQ(t.rules.size(), 2u);
  EXPECT_EQ(t.rules, IpvsBackend::MarksTable(backend_.Services(), {{"p1", 256}}, {}).rules);
}

TEST_F(IpvsPublishedTest, MarksAreReusedAfterRemovalAndDrainIsWeightZero) {
  ASSERT_TRUE(backend_.Apply(Change{{Pub("p1", 30080), Pub("p2", 30081)}, {}}).ok());
  EXPECT_EQ(backend_.MarkOf("p1"), 256u);
  EXPECT_EQ(backend_.MarkOf("p2"), 257u);
  ASSERT_TRUE(backend_.Apply(Change{{}, {"p1"}}).ok());
  EXPECT_EQ(Marks().size(), 1u);
  ASSERT_TRUE(backend_.Apply(Change{{Pub("p3", 30082)}, {}}).ok());
  EXPECT_EQ(backend_.MarkOf("p3"), 256u);
  ASSERT_TRUE(Drain(backend_, "p3", "10.0.1.2", 8080).ok());
  auto listed = fake_->List();
  ASSERT_TRUE(listed.ok());
  std::vector<ipvs::ServiceState> list = *std::move(listed);
  for (const auto& s : list) {
    if (s.spec.key.fwmark != 256) continue;
    ASSERT_EQ(s.dests.size(), 2u);
    EXPECT_EQ(s.dests[1].weight, 0u);
  }
}

TEST_F(IpvsPublishedTest, NftFailureRollsBackIpvs) {
  ASSERT_TRUE(backend_.Apply(Change{{Pub("p1", 30080)}, {}}).ok());
  auto before = *fake_->List();
  nft_.FailNextApply(absl::UnavailableError("injected"));
  EXPECT_FALSE(backend_.Apply(Change{{Pub("p2", 30081)}, {}}).ok());
  auto after = *fake_->List();
  EXPECT_EQ(after.size(), before.size());
  EXPECT_EQ(backend_.MarkOf("p2"), 0u);
  EXPECT_EQ(Marks().size(), 1u);
}

}  // namespace
}  // namespace shoal::lb
