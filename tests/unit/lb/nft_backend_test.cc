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
  for (int i = 0; i < backends; ++i) s.backends.push_back({absl::StrCat("10.0.1.", 10 + i), 8080, 1});
  return s;
}

class NftBackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto fake = std::make_unique<nft::FakeNft>();
    fake_ = fake.get();
    auto b = NftBackend::Create(std::move(fake), nullptr, {"snd-lb", 251, 7});
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

TEST_F(NftBackendTest, CreateBuildsSkeleton) {
  nft::Table t = Table();
  EXPECT_TRUE(HasChain(t, "prerouting"));
  EXPECT_TRUE(HasChain(t, "output"));
  ASSERT_NE(FindSet(t, "services"), nullptr);
  EXPECT_TRUE(FindSet(t, "services")->elements.empty());
  EXPECT_EQ(t.rules.size(), 4u);
}

TEST_F(NftBackendTest, AddDrainRemove) {
  ASSERT_TRUE(backend_->Apply(Change{{Web("web", "10.0.0.2")}, {}}).ok());
  nft::Table t = Table();
  EXPECT_EQ(FindSet(t, "services")->elements.size(), 1u);
  EXPECT_EQ(FindSet(t, "services")->elements[0].verdict, nft::Goto("svc-web"));
  EXPECT_EQ(FindSet(t, "svc-web-be")->elements.size(), 3u);
  EXPECT_TRUE(HasChain(t, "be-web-10.0.1.11-8080"));

  ASSERT_TRUE(Drain(*backend_, "web", "10.0.1.11", 8080).ok());
  t = Table();
  const nft::Set* be = FindSet(t, "svc-web-be");
  ASSERT_EQ(be->elements.size(), 2u);
  for (const nft::Element& e : be->elements) {
    EXPECT_NE(e.verdict, nft::Goto("be-web-10.0.1.11-8080"));
  }
  EXPECT_TRUE(HasChain(t, "be-web-10.0.1.11-8080"));  // kept for established flows

  Service fewer = Web("web", "10.0.0.2", 2);
  ASSERT_TRUE(backend_->Apply(Change{{fewer}, {}}).ok());
  EXPECT_FALSE(HasChain(Table(), "be-web-10.0.1.12-8080"));

  ASSERT_TRUE(backend_->Apply(Change{{}, {"web"}}).ok());
  t = Table();
  EXPECT_TRUE(FindSet(t, "services")->elements.empty());
  EXPECT_EQ(FindSet(t, "svc-web-be"), nullptr);
  EXPECT_FALSE(HasChain(t, "svc-web"));
  EXPECT_EQ(t.chains.size(), 2u);
}

TEST_F(NftBackendTest, AllDrainedDrops) {
  Service s = Web("web", "10.0.0.2", 1);
  s.backends[0].weight = 0;
  ASSERT_TRUE(backend_->Apply(Change{{s}, {}}).ok());
  nft::Table t = Table();
  EXPECT_TRUE(FindSet(t, "svc-web-be")->elements.empty());
}

TEST_F(NftBackendTest, MaglevFillsTableSlots) {
  Service s = Web("web", "10.0.0.2", 3);
  s.scheduler = Scheduler::kMaglev;
  ASSERT_TRUE(backend_->Apply(Change{{s}, {}}).ok());
  EXPECT_EQ(FindSet(Table(), "svc-web-be")->elements.size(), 251u);
}

TEST_F(NftBackendTest, PublishedPortGoesToPublishedMap) {
  Service s = Web("ing", "", 2);
  s.frontend = Frontend::kPublished;
  s.port = 30080;
  ASSERT_TRUE(backend_->Apply(Change{{s}, {}}).ok());
  nft::Table t = Table();
  EXPECT_EQ(FindSet(t, "published")->elements.size(), 1u);
  EXPECT_TRUE(FindSet(t, "services")->elements.empty());
}

TEST_F(NftBackendTest, FailedApplyChangesNothing) {
  ASSERT_TRUE(backend_->Apply(Change{{Web("a", "10.0.0.2")}, {}}).ok());
  fake_->FailNextApply(absl::UnavailableError("injected"));
  EXPECT_FALSE(backend_->Apply(Change{{Web("b", "10.0.0.3")}, {}}).ok());
  EXPECT_EQ(backend_->Services().size(), 1u);
  EXPECT_EQ(FindSet(Table(), "services")->elements.size(), 1u);
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
  // One service: its chains, map, rules and one frontend element — independent of the 500.
  EXPECT_LT(fake_->ops_applied() - ops, 15u);
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
