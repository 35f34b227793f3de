// The image store through its public API: import (OCI layout dir, OCI tar, docker save), ls,
// inspect, tags, rm, prune, leases, dedup by chain id, verification failures leave nothing.
#include "runtime/images/store.h"

#include <filesystem>

#include "gtest/gtest.h"
#include "runtime/images/import.h"
#include "tests/testing/priv.h"
#include "tests/unit/images/image_builder.h"

namespace shoal::runtime::images {
namespace {

using testing::BuiltImage;
using testing::BusyboxImage;
using testing::Compression;
using testing::Slurp;
using testing::Spit;
using testing::TempDir;

size_t CountEntries(const std::string& dir) {
  size_t n = 0;
  for (auto it = std::filesystem::directory_iterator(dir);
       it != std::filesystem::directory_iterator(); ++it) {
    ++n;
  }
  return n;
}

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (priv test tier)";
    auto s = Store::Open(tmp_ / "store");
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = *std::move(s);
  }
  std::vector<ImageRecord> Import(const std::string& path) {
    auto r = ImportImages(*store_, path);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : std::vector<ImageRecord>{};
  }
  TempDir tmp_;
  std::unique_ptr<Store> store_;
};

TEST_F(StoreTest, ImportOciLayoutThenInspectAndLowerDirs) {
  BuiltImage img = BusyboxImage();
  testing::WriteOciLayout(img, tmp_ / "oci", "localhost:5000/test/busybox:v1");
  auto recs = Import(tmp_ / "oci");
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_EQ(recs[0].id, img.config_digest);
  EXPECT_EQ(recs[0].manifest_digest, img.manifest_digest);
  EXPECT_EQ(recs[0].repo_tags, std::vector<std::string>{"localhost:5000/test/busybox:v1"});
  EXPECT_EQ(recs[0].config.cmd, (std::vector<std::string>{"/bin/cat", "/etc/motd"}));

  auto rec = store_->Resolve("localhost:5000/test/busybox:v1");
  ASSERT_TRUE(rec.ok()) << rec.status();
  EXPECT_EQ(store_->Resolve(img.config_digest.hex.substr(0, 12))->id, img.config_digest);
  EXPECT_EQ(store_->Resolve(img.config_digest.String())->id, img.config_digest);
  EXPECT_EQ(store_->Resolve("nope:v1").status().code(), absl::StatusCode::kNotFound);

  auto lower = store_->LowerDirs("localhost:5000/test/busybox:v1");
  ASSERT_TRUE(lower.ok()) << lower.status();
  ASSERT_EQ(lower->size(), 2u);  // top-most first
  EXPECT_EQ(Slurp((*lower)[0] + "/etc/motd"), "hello from shoal\n");
  EXPECT_EQ(Slurp((*lower)[1] + "/bin/busybox"), Slurp("/bin/busybox"));
  EXPECT_EQ(std::filesystem::read_symlink((*lower)[1] + "/bin/sh"), "busybox");
  EXPECT_EQ((*lower)[1], store_->LayersDir() + "/" + rec->layers[0].chain_id.hex + "/diff");
}

TEST_F(StoreTest, DockerSaveAndOciTarImportAndLayersAreSharedByChainId) {
  BuiltImage a = BusyboxImage("a\n", Compression::kNone);
  BuiltImage b = BusyboxImage("b\n", Compression::kNone);  // same base layer, other top
  Spit(tmp_ / "a.tar", testing::DockerSaveTar(a, "img-a:latest"));
  Spit(tmp_ / "b.tar", testing::DockerSaveTar(b, "img-b:1"));
  ASSERT_EQ(Import(tmp_ / "a.tar").size(), 1u);
  ASSERT_EQ(Import(tmp_ / "b.tar").size(), 1u);
  auto list = store_->List();
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->size(), 2u);
  EXPECT_TRUE(store_->Resolve("img-a").ok());
  EXPECT_TRUE(store_->Resolve("docker.io/library/img-b:1").ok());
  // 3 layers on disk, not 4: the base is unpacked once.
  EXPECT_EQ(CountEntries(store_->LayersDir()), 3u);
  auto counts = store_->LayerRefCounts();
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ(counts->at(store_->Resolve("img-a")->layers[0].chain_id), 2);
  EXPECT_EQ(Slurp(store_->LowerDirs("img-b:1")->at(0) + "/etc/motd"), "b\n");
}

TEST_F(StoreTest, RemoveUntagsThenDeletesAndKeepsSharedAndLeasedLayers) {
  BuiltImage a = BusyboxImage("a\n");
  BuiltImage b = BusyboxImage("b\n");
  testing::WriteOciLayout(a, tmp_ / "a", "a:1");
  testing::WriteOciLayout(b, tmp_ / "b", "b:1");
  Import(tmp_ / "a");
  Import(tmp_ / "b");
  ASSERT_TRUE(store_->Tag("a:1", *ParseReference("a:2")).ok());
  EXPECT_EQ(store_->Resolve("a:2")->id, a.config_digest);

  // By ID with two tags: refused without force.
  auto by_id = store_->Remove(a.config_digest.hex, false);
  EXPECT_EQ(by_id.status().code(), absl::StatusCode::kFailedPrecondition) << by_id.status();
  // By tag: only untags.
  auto untag = store_->Remove("a:1", false);
  ASSERT_TRUE(untag.ok()) << untag.status();
  EXPECT_EQ(untag->untagged, std::vector<std::string>{"docker.io/library/a:1"});
  EXPECT_TRUE(untag->deleted_images.empty());
  EXPECT_FALSE(store_->Resolve("a:1").ok());

  // A container pins b's layers; b cannot be removed without force.
  ASSERT_TRUE(store_->AddContainerRef("ctr1", "b:1").ok());
  EXPECT_EQ(store_->Remove("b:1", false).status().code(), absl::StatusCode::kFailedPrecondition);
  auto forced = store_->Remove("b:1", true);
  ASSERT_TRUE(forced.ok()) << forced.status();
  EXPECT_EQ(forced->deleted_images.size(), 1u);
  EXPECT_TRUE(forced->deleted_layers.empty());  // leased
  EXPECT_EQ(CountEntries(store_->LayersDir()), 3u);

  // Remove a: its top layer goes, the base stays (leased by ctr1).
  auto gone = store_->Remove("a:2", false);
  ASSERT_TRUE(gone.ok()) << gone.status();
  EXPECT_EQ(gone->deleted_layers.size(), 1u);
  EXPECT_EQ(CountEntries(store_->LayersDir()), 2u);

  ASSERT_TRUE(store_->RemoveContainerRef("ctr1").ok());
  auto pruned = store_->Prune(false);
  ASSERT_TRUE(pruned.ok()) << pruned.status();
  EXPECT_EQ(CountEntries(store_->LayersDir()), 0u);
  EXPECT_EQ(CountEntries(store_->root() + "/blobs/sha256"), 0u);
  EXPECT_EQ(CountEntries(store_->root() + "/images"), 0u);
}

TEST_F(StoreTest, TamperedBlobOrWrongDiffIdStoresNothing) {
  BuiltImage img = BusyboxImage();
  testing::WriteOciLayout(img, tmp_ / "bad", "bad:1");
  // Flip bytes in the top layer blob: its digest no longer matches.
  std::string p = tmp_ / ("bad/blobs/sha256/" + img.parsed.layers[1].digest.hex);
  std::string blob = Slurp(p);
  blob[blob.size() / 2] ^= 0x55;
  Spit(p, blob);
  auto r = ImportImages(*store_, tmp_ / "bad");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss) << r.status();
  EXPECT_NE(std::string(r.status().message()).find("digest mismatch"), std::string::npos);
  EXPECT_EQ(CountEntries(store_->root() + "/images"), 0u);
  EXPECT_FALSE(store_->HasBlob(Sha256Of(blob)));

  // A config whose diff_ids do not match the layers: unpack fails, no layer dir, no image.
  BuiltImage lie = BusyboxImage();
  std::string cfg = lie.config;
  std::string real = Sha256Of(lie.layer_tars[1]).String();
  cfg.replace(cfg.find(real), real.size(), Sha256Of("lie").String());
  lie.config = cfg;
  lie.config_digest = Sha256Of(cfg);
  lie.parsed.config.digest = lie.config_digest;
  lie.parsed.config.size = static_cast<int64_t>(cfg.size());
  lie.manifest = SerializeManifest(lie.parsed);
  lie.manifest_digest = Sha256Of(lie.manifest);
  testing::WriteOciLayout(lie, tmp_ / "lie", "lie:1");
  auto r2 = ImportImages(*store_, tmp_ / "lie");
  ASSERT_FALSE(r2.ok());
  EXPECT_EQ(r2.status().code(), absl::StatusCode::kDataLoss) << r2.status();
  EXPECT_NE(std::string(r2.status().message()).find("diff_id"), std::string::npos);
  EXPECT_EQ(CountEntries(store_->root() + "/images"), 0u);
  EXPECT_EQ(CountEntries(store_->LayersDir()), 1u);  // the honest base layer only
  ASSERT_TRUE(store_->Prune(false).ok());
  EXPECT_EQ(CountEntries(store_->LayersDir()), 0u);
  EXPECT_EQ(CountEntries(store_->root() + "/tmp"), 0u);
}

TEST_F(StoreTest, Docker25SaveFormatAsTarWithZstdLayers) {
  // Docker Engine >= 25: an OCI layout plus manifest.json carrying RepoTags, as one tar.
  BuiltImage img = BusyboxImage("zstd\n", Compression::kZstd);
  testing::WriteOciLayout(img, tmp_ / "d25", "ignored-name-without-repo");
  nlohmann::json manifest =
      nlohmann::json::array({{{"Config", "blobs/sha256/" + img.config_digest.hex},
                              {"RepoTags", {"example.com/team/app:2.0"}},
                              {"Layers",
                               {"blobs/sha256/" + img.parsed.layers[0].digest.hex,
                                "blobs/sha256/" + img.parsed.layers[1].digest.hex}}}});
  Spit(tmp_ / "d25/manifest.json", manifest.dump());
  ASSERT_EQ(std::system(("tar -C " + (tmp_ / "d25") + " -cf " + (tmp_ / "d25.tar") + " .").c_str()),
            0);
  auto recs = Import(tmp_ / "d25.tar");
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_EQ(recs[0].repo_tags, std::vector<std::string>{"example.com/team/app:2.0"});
  EXPECT_EQ(recs[0].layers[0].blob.media_type, media::kOciLayerZstd);
  EXPECT_EQ(Slurp(store_->LowerDirs("example.com/team/app:2.0")->at(0) + "/etc/motd"), "zstd\n");
  EXPECT_EQ(CountEntries(store_->root() + "/tmp"), 0u);  // the unpacked tar is gone
}

TEST_F(StoreTest, NotAnImageArchiveIsAClearError) {
  std::filesystem::create_directories(tmp_ / "empty");
  auto r = ImportImages(*store_, tmp_ / "empty");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(std::string(r.status().message()).find("neither index.json"), std::string::npos);
}

}  // namespace
}  // namespace shoal::runtime::images
