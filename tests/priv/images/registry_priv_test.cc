// Pull/push against a real Debian docker-registry on loopback (plain HTTP and TLS + htpasswd),
// skopeo as an independent client, failure cases that must store nothing, and a process run
// from the pulled image's overlayfs rootfs.
#include "runtime/images/registry.h"

#include <sched.h>
#include <sys/mount.h>
#include <sys/wait.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include "gtest/gtest.h"
#include "runtime/images/import.h"
#include "tests/priv/images/registry_fixture.h"
#include "tests/testing/priv.h"
#include "tests/unit/images/image_builder.h"

namespace shoal::runtime::images {
namespace {

using testing::BuiltImage;
using testing::BusyboxImage;
using testing::LocalRegistry;
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

// Runs argv inside an overlayfs of the image's layers (own mount namespace + chroot; the real
// container runtime is runtime/'s job) and returns its stdout.
std::string RunInImage(Store& store, const std::string& image, const std::string& scratch,
                       const std::vector<std::string>& argv) {
  auto lower = store.LowerDirs(image);
  EXPECT_TRUE(lower.ok()) << lower.status();
  if (!lower.ok()) return "";
  for (const char* d : {"upper", "work", "merged"}) {
    std::filesystem::create_directories(scratch + "/" + d);
  }
  std::string opts = "lowerdir=";
  for (size_t i = 0; i < lower->size(); ++i) opts += (i ? ":" : "") + (*lower)[i];
  opts += ",upperdir=" + scratch + "/upper,workdir=" + scratch + "/work";
  std::string merged = scratch + "/merged";
  int pipefd[2];
  EXPECT_EQ(::pipe(pipefd), 0);
  pid_t pid = ::fork();
  if (pid == 0) {
    // A private mount namespace: the overlay disappears with this process, even on a crash.
    ::dup2(pipefd[1], 1);
    if (::unshare(CLONE_NEWNS) != 0 ||
        ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
        ::mount("overlay", merged.c_str(), "overlay", 0, opts.c_str()) != 0) {
      ::_exit(125);
    }
    if (::chroot(merged.c_str()) != 0 || ::chdir("/") != 0) ::_exit(126);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  ::close(pipefd[1]);
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(pipefd[0], buf, sizeof(buf))) > 0) out.append(buf, n);
  ::close(pipefd[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  return out;
}

class RegistryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (priv test tier)";
    src_ = OpenStore("src");
    img_ = BusyboxImage();
    testing::WriteOciLayout(img_, tmp_ / "oci", "local/busybox:v1");
    ASSERT_TRUE(ImportImages(*src_, tmp_ / "oci").ok());
  }
  std::unique_ptr<Store> OpenStore(const std::string& name) {
    auto s = Store::Open(tmp_ / name);
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? *std::move(s) : nullptr;
  }
  RegistryOptions Plain() {
    RegistryOptions o;
    o.plain_http = true;
    o.auth_file = tmp_ / "auth.json";
    return o;
  }
  Reference Ref(const std::string& s) { return *ParseReference(s); }

  TempDir tmp_;
  std::unique_ptr<Store> src_;
  BuiltImage img_;
};

TEST_F(RegistryTest, PushThenPullByTagAndByDigestAndRunIt) {
  LocalRegistry reg({});
  std::string name = reg.host() + "/test/busybox";
  auto pushed = Push(*src_, "local/busybox:v1", Ref(name + ":v1"), Plain());
  ASSERT_TRUE(pushed.ok()) << pushed.status();
  EXPECT_EQ(*pushed, img_.manifest_digest);

  auto dst = OpenStore("dst");
  std::atomic<int> progress_calls{0};
  RegistryOptions o = Plain();
  o.progress = [&](const Progress&) { ++progress_calls; };
  auto rec = Pull(*dst, Ref(name + ":v1"), o);
  ASSERT_TRUE(rec.ok()) << rec.status();
  EXPECT_EQ(rec->id, img_.config_digest);
  EXPECT_EQ(rec->manifest_digest, img_.manifest_digest);
  EXPECT_EQ(rec->repo_tags, std::vector<std::string>{name + ":v1"});
  EXPECT_EQ(rec->repo_digests, std::vector<std::string>{name + "@" + pushed->String()});
  EXPECT_GE(progress_calls.load(), 3);  // config + 2 layers

  auto by_digest_store = OpenStore("dst2");
  RegistryOptions lazy = Plain();
  lazy.unpack = false;
  auto by_digest = Pull(*by_digest_store, Ref(name + "@" + pushed->String()), lazy);
  ASSERT_TRUE(by_digest.ok()) << by_digest.status();
  EXPECT_EQ(by_digest->id, img_.config_digest);
  EXPECT_TRUE(by_digest->repo_tags.empty());
  std::string by_digest_name = name + "@" + pushed->String();
  EXPECT_TRUE(by_digest_store->Resolve(by_digest_name).ok());
  // Lazy pull: nothing unpacked until the rootfs is prepared.
  EXPECT_EQ(by_digest_store->LowerDirs(by_digest_name).status().code(),
            absl::StatusCode::kFailedPrecondition);
  auto prepared = by_digest_store->PrepareLowerDirs(by_digest_name);
  ASSERT_TRUE(prepared.ok()) << prepared.status();
  EXPECT_EQ(Slurp(prepared->front() + "/etc/motd"), "hello from shoal\n");

  // Pulling again dedups: nothing new is fetched, the record is the same.
  auto again = Pull(*dst, Ref(name + ":v1"), Plain());
  ASSERT_TRUE(again.ok()) << again.status();

  EXPECT_EQ(RunInImage(*dst, name + ":v1", tmp_ / "run", {"/bin/cat", "/etc/motd"}),
            "hello from shoal\n");

  // Removing the only tag removes the pulled image (its repo digest does not keep it).
  auto removed = dst->Remove(name + ":v1", false);
  ASSERT_TRUE(removed.ok()) << removed.status();
  EXPECT_EQ(removed->deleted_images.size(), 1u);
  EXPECT_EQ(CountEntries(dst->LayersDir()), 0u);
}

TEST_F(RegistryTest, SkopeoInteroperatesBothWays) {
  LocalRegistry reg({});
  // skopeo pushes an OCI layout; shoal pulls it.
  std::string by_skopeo = reg.host() + "/skopeo/busybox:v1";
  ASSERT_EQ(testing::Run("skopeo copy --quiet --dest-tls-verify=false oci:" + (tmp_ / "oci") +
                         ":local/busybox:v1 docker://" + by_skopeo),
            0);
  auto dst = OpenStore("dst");
  auto rec = Pull(*dst, Ref(by_skopeo), Plain());
  ASSERT_TRUE(rec.ok()) << rec.status();
  EXPECT_EQ(rec->id, img_.config_digest);
  // shoal pushes; skopeo reads it back with the same digest.
  std::string by_shoal = reg.host() + "/shoal/busybox:v2";
  auto pushed = Push(*src_, "local/busybox:v1", Ref(by_shoal), Plain());
  ASSERT_TRUE(pushed.ok()) << pushed.status();
  ASSERT_EQ(testing::Run("skopeo inspect --tls-verify=false --format '{{.Digest}}' docker://" +
                         by_shoal + " > " + (tmp_ / "digest")),
            0);
  EXPECT_EQ(Slurp(tmp_ / "digest"), pushed->String() + "\n");
}

TEST_F(RegistryTest, MissingTagWrongDigestAndTamperedBlobStoreNothing) {
  LocalRegistry reg({});
  std::string name = reg.host() + "/test/busybox";
  ASSERT_TRUE(Push(*src_, "local/busybox:v1", Ref(name + ":v1"), Plain()).ok());
  auto dst = OpenStore("dst");

  auto missing = Pull(*dst, Ref(name + ":nope"), Plain());
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound) << missing.status();
  EXPECT_NE(std::string(missing.status().message()).find("MANIFEST_UNKNOWN"), std::string::npos)
      << missing.status();

  auto wrong = Pull(*dst, Ref(name + "@" + Sha256Of("nope").String()), Plain());
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.status().code(), absl::StatusCode::kNotFound) << wrong.status();

  // Corrupt the top layer inside the registry's storage.
  std::string f = reg.BlobFile(img_.parsed.layers[1].digest.hex);
  std::string blob = Slurp(f);
  blob[blob.size() / 2] ^= 0x01;
  Spit(f, blob);
  RegistryOptions o = Plain();
  o.retries = 1;
  auto tampered = Pull(*dst, Ref(name + ":v1"), o);
  ASSERT_FALSE(tampered.ok());
  EXPECT_EQ(tampered.status().code(), absl::StatusCode::kDataLoss) << tampered.status();
  EXPECT_NE(std::string(tampered.status().message()).find("digest mismatch"), std::string::npos);
  EXPECT_EQ(CountEntries(dst->root() + "/images"), 0u);
  EXPECT_FALSE(dst->HasBlob(img_.parsed.layers[1].digest));
  EXPECT_EQ(CountEntries(dst->root() + "/tmp"), 0u);
}

TEST_F(RegistryTest, RegistryKilledMidPullIsAClearErrorAndNothingPartial) {
  LocalRegistry reg({});
  std::string name = reg.host() + "/test/big";
  // A 48 MiB incompressible layer so the kill lands mid-transfer.
  std::string noise(48 << 20, '\0');
  uint64_t x = 88172645463325252ull;
  for (size_t i = 0; i < noise.size(); i += 8) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    std::memcpy(&noise[i], &x, 8);
  }
  testing::TarBuilder big;
  big.File("noise", noise);
  BuiltImage bimg = testing::BuildImage({{big, testing::Compression::kNone}});
  testing::WriteOciLayout(bimg, tmp_ / "bigoci", "local/big:v1");
  ASSERT_TRUE(ImportImages(*src_, tmp_ / "bigoci").ok());
  ASSERT_TRUE(Push(*src_, "local/big:v1", Ref(name + ":v1"), Plain()).ok());

  auto dst = OpenStore("dst");
  RegistryOptions o = Plain();
  o.retries = 1;
  std::atomic<bool> killed{false};
  o.progress = [&](const Progress& p) {
    if (p.status == "downloading" && p.done > 0 && !killed.exchange(true)) reg.Kill();
  };
  auto r = Pull(*dst, Ref(name + ":v1"), o);
  ASSERT_TRUE(killed.load()) << "the transfer finished before the kill";
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
  EXPECT_NE(std::string(r.status().message()).find(reg.host()), std::string::npos) << r.status();
  EXPECT_EQ(CountEntries(dst->root() + "/images"), 0u);
  EXPECT_FALSE(dst->HasBlob(bimg.parsed.layers[0].digest));
  EXPECT_EQ(CountEntries(dst->root() + "/tmp"), 0u);
  EXPECT_EQ(CountEntries(dst->LayersDir()), 0u);
}

TEST_F(RegistryTest, TlsWithBasicAuthNeedsLoginAndVerifiesTheCertificate) {
  LocalRegistry reg({.tls = true, .user = "shoal", .password = "s3cret"});
  std::string name = reg.host() + "/secure/busybox:v1";
  RegistryOptions o;
  o.auth_file = tmp_ / "auth.json";
  o.ca_file = reg.ca_file();

  // Unknown CA: refused.
  RegistryOptions no_ca = o;
  no_ca.ca_file.clear();
  auto untrusted = Push(*src_, "local/busybox:v1", Ref(name), no_ca);
  ASSERT_FALSE(untrusted.ok());
  EXPECT_NE(std::string(untrusted.status().message()).find("TLS"), std::string::npos)
      << untrusted.status();

  // No credentials yet.
  auto anon = Push(*src_, "local/busybox:v1", Ref(name), o);
  ASSERT_FALSE(anon.ok());
  EXPECT_EQ(anon.status().code(), absl::StatusCode::kUnauthenticated) << anon.status();

  // Wrong password: clear error, nothing stored.
  absl::Status bad = Login(reg.host(), {"shoal", "wrong"}, o);
  EXPECT_EQ(bad.code(), absl::StatusCode::kUnauthenticated) << bad;
  EXPECT_FALSE(std::filesystem::exists(tmp_ / "auth.json"));

  ASSERT_TRUE(Login(reg.host(), {"shoal", "s3cret"}, o).ok());
  EXPECT_EQ(std::filesystem::status(tmp_ / "auth.json").permissions() & std::filesystem::perms::all,
            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  auto pushed = Push(*src_, "local/busybox:v1", Ref(name), o);
  ASSERT_TRUE(pushed.ok()) << pushed.status();
  auto dst = OpenStore("dst");
  auto rec = Pull(*dst, Ref(name), o);
  ASSERT_TRUE(rec.ok()) << rec.status();
  EXPECT_EQ(rec->id, img_.config_digest);
}

TEST_F(RegistryTest, ConcurrentPullsOfTheSameImageShareOneCopy) {
  LocalRegistry reg({});
  std::string name = reg.host() + "/test/busybox:v1";
  ASSERT_TRUE(Push(*src_, "local/busybox:v1", Ref(name), Plain()).ok());
  auto dst = OpenStore("dst");
  // Two store handles on the same root, as two processes would have.
  auto dst2 = OpenStore("dst");
  absl::StatusOr<ImageRecord> a, b;
  std::thread ta([&] { a = Pull(*dst, Ref(name), Plain()); });
  std::thread tb([&] { b = Pull(*dst2, Ref(name), Plain()); });
  ta.join();
  tb.join();
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(CountEntries(dst->root() + "/images"), 1u);
  EXPECT_EQ(CountEntries(dst->LayersDir()), 2u);
  EXPECT_EQ(CountEntries(dst->root() + "/tmp"), 0u);
  EXPECT_EQ(CountEntries(dst->root() + "/blobs/sha256"), 4u);  // manifest, config, 2 layers
}

TEST_F(RegistryTest, PullsTheLinuxAmd64ManifestFromAMultiPlatformIndex) {
  LocalRegistry reg({});
  // An OCI layout whose tag points at an image index: arm64 (a dummy image) and amd64 (busybox).
  testing::TarBuilder other;
  other.File("etc/motd", "arm64\n");
  BuiltImage arm = testing::BuildImage({{other, testing::Compression::kGzip}});
  std::string dir = tmp_ / "multi";
  testing::WriteOciLayout(img_, dir, "unused");
  testing::WriteBlob(dir, arm.manifest_digest, arm.manifest);
  testing::WriteBlob(dir, arm.config_digest, arm.config);
  testing::WriteBlob(dir, arm.parsed.layers[0].digest, arm.layer_blobs[0]);
  nlohmann::json index = {{"schemaVersion", 2},
                          {"mediaType", media::kOciIndex},
                          {"manifests",
                           {{{"mediaType", media::kOciManifest},
                             {"digest", arm.manifest_digest.String()},
                             {"size", arm.manifest.size()},
                             {"platform", {{"os", "linux"}, {"architecture", "arm64"}}}},
                            {{"mediaType", media::kOciManifest},
                             {"digest", img_.manifest_digest.String()},
                             {"size", img_.manifest.size()},
                             {"platform", {{"os", "linux"}, {"architecture", "amd64"}}}}}}};
  std::string index_blob = index.dump();
  Digest index_digest = Sha256Of(index_blob);
  testing::WriteBlob(dir, index_digest, index_blob);
  nlohmann::json top = {{"schemaVersion", 2},
                        {"manifests",
                         {{{"mediaType", media::kOciIndex},
                           {"digest", index_digest.String()},
                           {"size", index_blob.size()},
                           {"annotations", {{"org.opencontainers.image.ref.name", "multi"}}}}}}};
  Spit(dir + "/index.json", top.dump());
  std::string name = reg.host() + "/test/multi:v1";
  ASSERT_EQ(testing::Run("skopeo copy --quiet --all --dest-tls-verify=false oci:" + dir +
                         ":multi docker://" + name),
            0);
  auto dst = OpenStore("dst");
  auto rec = Pull(*dst, Ref(name), Plain());
  ASSERT_TRUE(rec.ok()) << rec.status();
  EXPECT_EQ(rec->id, img_.config_digest);
  EXPECT_EQ(Slurp(dst->LowerDirs(name)->at(0) + "/etc/motd"), "hello from shoal\n");
  RegistryOptions s390 = Plain();
  s390.platform = {"linux", "s390x", ""};
  auto none = Pull(*OpenStore("dst2"), Ref(name), s390);
  ASSERT_FALSE(none.ok());
  EXPECT_NE(std::string(none.status().message()).find("no manifest for platform linux/s390x"),
            std::string::npos)
      << none.status();
}

TEST_F(RegistryTest, BearerTokenChallengeWithStoredCredentials) {
  LocalRegistry reg({.user = "tok", .password = "pw", .token = true});
  std::string name = reg.host() + "/bearer/busybox:v1";
  RegistryOptions o = Plain();

  // Without credentials the token service refuses: a clear auth error, nothing pushed.
  auto anon = Push(*src_, "local/busybox:v1", Ref(name), o);
  ASSERT_FALSE(anon.ok());
  EXPECT_EQ(anon.status().code(), absl::StatusCode::kUnauthenticated) << anon.status();
  EXPECT_NE(std::string(anon.status().message()).find("token"), std::string::npos) << anon.status();
  EXPECT_FALSE(Login(reg.host(), {"tok", "bad"}, o).ok());

  ASSERT_TRUE(Login(reg.host(), {"tok", "pw"}, o).ok());
  auto pushed = Push(*src_, "local/busybox:v1", Ref(name), o);
  ASSERT_TRUE(pushed.ok()) << pushed.status();
  auto dst = OpenStore("dst");
  auto rec = Pull(*dst, Ref(name), o);
  ASSERT_TRUE(rec.ok()) << rec.status();
  EXPECT_EQ(rec->id, img_.config_digest);
}

}  // namespace
}  // namespace shoal::runtime::images
