#include "lb/nft_backend.h"

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "kernel/nft/fake_nft.h"

namespace shoal::lb {
namespace {
namespace nft = kernel::nft;

Service Web(std::string name, std::string vip, int backends = 3) {
  Service s;
  s.name = std::move(name);
  s.vip = std::move(vip);
  s.port = 80;
  for (int i = 0; i < backends; ++i)
    s.backends.push_back({absl::StrCat("10.0.1.", 10 + i), 8080, 1});
  return s;
}

class NftBackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto fake = std::make_unique<nft::FakeNft>();
    fake_ = fake.get();
    auto b = NftBackend::Create(std::move(fake), nullptr, {"snd-lb", 61, 7});
    ASSERT_TRUE(b.ok()) << b.status();
    backend_ = *std::move(b);
  }
  nft::Table Table() { return *fake_->GetTable({nft::Family::kIp, "snd-lb"}); }
  const nft::Set* FindSet(const nft::Table& t, const std::string& name) {
    for (const nft::Set& s : t.sets) {
      if (s.name == name) return &s;
    }
    return nullptr;
  }
  bool HasChain(const nft::Table& t, const std::string& name) {
    for (const nft::Chain& c : t.chains) {
      if (c.name == name) return true;
    }
    return false;
  }

  nft::FakeNft* fake_;
  std::unique_ptr<NftBackend> backend_;
};

// How many slots of `map` point at ip:port.
int SlotsOf(const nft::Set* map, const char* ip, uint16_t port) {
  int n = 0;
  for (const nft::Element& e : map->elements) {
    if (e.data == std::vector<nft::Datum>{nft::Ipv4(ip), nft::Port(port)}) ++n;
  }
  return n;
}

TEST_F(NftBackendTest, CreateBuildsSkeleton) {
  nft::Table t = Table();
  EXPECT_TRUE(HasChain(t, "prerouting"));
  EXPECT_TRUE(HasChain(t, "output"));
  ASSERT_NE(FindSet(t, "vip-random"), nullptr);
  ASSERT_NE(FindSet(t, "pub-maglev"), nullptr);
  EXPECT_TRUE(FindSet(t, "vip-random")->elements.empty());
  EXPECT_EQ(t.rules.size(), 8u);
  EXPECT_EQ(t.chains.size(), 2u);  // chain-free: services never add chains
}

TEST_F(NftBackendTest, AddDrainRemove) {
  ASSERT_TRUE(backend_->Apply(Change{{Web("web", "10.0.0.2")}, {}}).ok());
  nft::Table t = Table();
  const nft::Set* m = FindSet(t, "vip-random");
  ASSERT_EQ(m->elements.size(), 61u);
  EXPECT_EQ(m->elements[0].key[0], nft::Ipv4("10.0.0.2"));
  for (const char* ip : {"10.0.1.10", "10.0.1.11", "10.0.1.12"}) {
    EXPECT_NEAR(SlotsOf(m, ip, 8080), 61 / 3, 2) << ip;
  }

  ASSERT_TRUE(Drain(*backend_, "web", "10.0.1.11", 8080).ok());
  t = Table();
  m = FindSet(t, "vip-random");
  ASSERT_EQ(m->elements.size(), 61u);
  EXPECT_EQ(SlotsOf(m, "10.0.1.11", 8080), 0);

  ASSERT_TRUE(backend_->Apply(Change{{}, {"web"}}).ok());
  t = Table();
  EXPECT_TRUE(FindSet(t, "vip-random")->elements.empty());
  EXPECT_EQ(t.chains.size(), 2u);
}

TEST_F(NftBackendTest, AllDrainedHasNoSlots) {
  Service s = Web("web", "10.0.0.2", 1);
  s.backends[0].weight = 0;
  ASSERT_TRUE(backend_->Apply(Change{{s}, {}}).ok());
  EXPECT_TRUE(FindSet(Table(), "vip-random")->elements.empty());
}

TEST_F(NftBackendTest, WeightsAreSlotShares) {
  Service s = Web("web", "10.0.0.2", 2);
  s.backends[1].weight = 3;
  ASSERT_TRUE(backend_->Apply(Change{{s}, {}}).ok());
  nft::Table t = Table();
  const nft::Set* m = FindSet(t, "vip-random");
  EXPECT_NEAR(SlotsOf(m, "10.0.1.11", 8080), 61 * 3 / 4, 2);
}

TEST_F(NftBackendTest, MaglevServicesUseTheHashedMap) {
  Service s = Web("web", "10.0.0.2", 3);
  s.scheduler = Scheduler::kMaglev;
  ASSERT_TRUE(backend_->Apply(Change{{s}, {}}).ok());
  EXPECT_EQ(FindSet(Table(), "vip-maglev")->elements.size(), 61u);
  EXPECT_TRUE(FindSet(Table(), "vip-random")->elements.empty());
}

TEST_F(NftBackendTest, PublishedPortGoesToPublishedMap) {
  Service s = Web("ing", "", 2);
  s.frontend = Frontend::kPublished;
  s.port = 30080;
  ASSERT_TRUE(backend_->Apply(Change{{s}, {}}).ok());
  nft::Table t = Table();
  EXPECT_EQ(FindSet(t, "pub-random")->elements.size(), 61u);
  EXPECT_TRUE(FindSet(t, "vip-random")->elements.empty());
}

TEST_F(NftBackendTest, MoreBackendsThanSlotsIsRejectedBeforeTheKernel) {
  int before = fake_->applies();
  absl::Status st = backend_->Apply(Change{{Web("big", "10.0.0.9", 62)}, {}});
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << st;
  EXPECT_NE(st.message().find("service big"), std::string::npos) << st;
  EXPECT_EQ(fake_->applies(), before);
}

TEST_F(NftBackendTest, FailedApplyChangesNothing) {
  ASSERT_TRUE(backend_->Apply(Change{{Web("a", "10.0.0.2")}, {}}).ok());
  fake_->FailNextApply(absl::UnavailableError("injected"));
  EXPECT_FALSE(backend_->Apply(Change{{Web("b", "10.0.0.3")}, {}}).ok());
  EXPECT_EQ(backend_->Services().size(), 1u);
  EXPECT_EQ(FindSet(Table(), "vip-random")->elements.size(), 61u);
  // Bad input never reaches the kernel.
  int before = fake_->applies();
  EXPECT_EQ(backend_->Apply(Change{{Web("c", "10.0.0.2")}, {}}).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(fake_->applies(), before);
}

TEST_F(NftBackendTest, ChangeCostDoesNotGrowWithServiceCount) {
  Change many;
  for (int i = 0; i < 500; ++i) {
    many.upsert.push_back(Web(absl::StrCat("s", i), absl::StrCat("10.1.", i / 250, ".", i % 250)));
  }
  ASSERT_TRUE(backend_->Apply(many).ok());
  size_t ops = fake_->ops_applied();
  ASSERT_TRUE(backend_->Apply(Change{{Web("new", "10.9.0.1")}, {}}).ok());
  // One service = one element add op (61 elements), independent of the 500 already there.
  EXPECT_EQ(fake_->ops_applied() - ops, 1u);
}

TEST_F(NftBackendTest, ResyncRepairsKernelState) {
  ASSERT_TRUE(backend_->Apply(Change{{Web("web", "10.0.0.2")}, {}}).ok());
  nft::Table good = Table();
  // Someone deletes the table behind our back.
  ASSERT_TRUE(nft::DeleteTableIfExists(*fake_, {nft::Family::kIp, "snd-lb"}).ok());
  ASSERT_TRUE(backend_->Resync().ok());
  EXPECT_EQ(Table(), good);
}

}  // namespace
}  // namespace shoal::lb
