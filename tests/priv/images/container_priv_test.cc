// A pulled image run as a real container: push to Debian's docker-registry on loopback, pull
// by tag into a fresh store, overlayfs rootfs from Store::PrepareLowerDirs with a fresh upper
// and work dir, a container lease while it runs, and shoal_runtime's namespaces and cgroups.
// Afterwards nothing is left: no mount under the temp dir, no cgroup, no process, no lease.
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/unique_fd.h"
#include "gtest/gtest.h"
#include "kernel/cgroup/plan.h"
#include "kernel/features.h"
#include "runtime/container.h"
#include "runtime/images/import.h"
#include "runtime/images/registry.h"
#include "runtime/images/store.h"
#include "tests/priv/images/registry_fixture.h"
#include "tests/testing/priv.h"
#include "tests/unit/images/image_builder.h"

namespace shoal::runtime::images {
namespace {

using testing::LocalRegistry;
using testing::Slurp;
using testing::TempDir;

// Mount points (from /proc/self/mountinfo) at or below `dir`.
std::vector<std::string> MountsUnder(const std::string& dir) {
  std::vector<std::string> found;
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string id, parent, devno, root, mountpoint;
    fields >> id >> parent >> devno >> root >> mountpoint;
    if (mountpoint == dir || mountpoint.rfind(dir + "/", 0) == 0) found.push_back(mountpoint);
  }
  return found;
}

// An overlayfs of image layers (top-most first) at <dir>/merged with a fresh upper and work
// dir in <dir>. Unmounted by Unmount() or, on any early return (failed ASSERT), the destructor.
class OverlayMount {
 public:
  absl::Status Mount(const std::vector<std::string>& lower, const std::string& dir) {
    merged_ = dir + "/merged";
    upper_ = dir + "/upper";
    for (const std::string& d : {merged_, upper_, dir + "/work"}) {
      std::filesystem::create_directories(d);
    }
    std::string data = absl::StrCat("lowerdir=", absl::StrJoin(lower, ":"), ",upperdir=", upper_,
                                    ",workdir=", dir, "/work");
    if (::mount("overlay", merged_.c_str(), "overlay", 0, data.c_str()) != 0) {
      return absl::InternalError(absl::StrCat("mount overlay ", data, ": ", strerror(errno)));
    }
    mounted_ = true;
    return absl::OkStatus();
  }
  // A plain umount: EBUSY here would mean something still uses the rootfs.
  absl::Status Unmount() {
    if (!mounted_) return absl::OkStatus();
    if (::umount2(merged_.c_str(), 0) != 0) {
      return absl::InternalError(absl::StrCat("umount ", merged_, ": ", strerror(errno)));
    }
    mounted_ = false;
    return absl::OkStatus();
  }
  ~OverlayMount() {
    if (mounted_) ::umount2(merged_.c_str(), MNT_DETACH);
  }
  const std::string& merged() const { return merged_; }
  const std::string& upper() const { return upper_; }

 private:
  std::string merged_, upper_;
  bool mounted_ = false;
};

// Holds a store lease for a container; released by Release() or the destructor.
class Lease {
 public:
  Lease(Store& store, std::string id) : store_(store), id_(std::move(id)) {}
  absl::Status Acquire(const std::string& image) {
    held_ = true;  // AddContainerRef is idempotent; release even after a partial failure
    return store_.AddContainerRef(id_, image);
  }
  absl::Status Release() {
    if (!held_) return absl::OkStatus();
    held_ = false;
    return store_.RemoveContainerRef(id_);
  }
  ~Lease() { Release().IgnoreError(); }

 private:
  Store& store_;
  std::string id_;
  bool held_ = false;
};

std::string ReadAll(int fd) {
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof(buf))) > 0 || (n < 0 && errno == EINTR)) {
    if (n > 0) out.append(buf, n);
  }
  return out;
}

class PulledImageContainerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SHOAL_REQUIRE_ROOT();
    auto f = kernel::ProbeFeatures();
    ASSERT_TRUE(f.ok()) << f.status();
    features_ = *f;
    parent_ = absl::StrCat("shoaltest-imgrun-", ::getpid());
    RuntimeOptions options;
    options.cgroup.mode = features_.cgroup_mode;
    options.cgroup_parent = parent_;
    runtime_ = std::make_unique<Runtime>(options);
  }

  void TearDown() override {
    for (const std::string& dir : CgroupDirs()) ::rmdir(dir.c_str());
    for (const std::string& base : CgroupParents()) ::rmdir(base.c_str());
  }

  std::vector<std::string> CgroupParents() const {
    if (features_.cgroup_mode == kernel::CgroupMode::kV2) return {"/sys/fs/cgroup/" + parent_};
    std::vector<std::string> bases;
    for (const std::string& c : kernel::V1Controllers()) {
      bases.push_back(absl::StrCat("/sys/fs/cgroup/", c, "/", parent_));
    }
    return bases;
  }
  // Container cgroups under our parent, in every hierarchy.
  std::vector<std::string> CgroupDirs() const {
    std::vector<std::string> dirs;
    for (const std::string& base : CgroupParents()) {
      DIR* d = ::opendir(base.c_str());
      if (!d) continue;
      while (dirent* e = ::readdir(d)) {
        if (e->d_type == DT_DIR && e->d_name[0] != '.') dirs.push_back(base + "/" + e->d_name);
      }
      ::closedir(d);
    }
    return dirs;
  }

  kernel::Features features_;
  std::string parent_;
  std::unique_ptr<Runtime> runtime_;
};

TEST_F(PulledImageContainerTest, PulledByTagRunsInARealContainerAndLeavesNothing) {
  TempDir tmp;
  // Build the busybox image locally, push it to the registry, pull it by tag into a new store.
  auto src = Store::Open(tmp / "src");
  ASSERT_TRUE(src.ok()) << src.status();
  testing::BuiltImage img = testing::BusyboxImage();
  testing::WriteOciLayout(img, tmp / "oci", "local/busybox:v1");
  ASSERT_TRUE(ImportImages(**src, tmp / "oci").ok());
  LocalRegistry reg({});
  std::string name = reg.host() + "/run/busybox:v1";
  RegistryOptions ro;
  ro.plain_http = true;
  ro.auth_file = tmp / "auth.json";
  ASSERT_TRUE(Push(**src, "local/busybox:v1", *ParseReference(name), ro).ok());
  auto store = Store::Open(tmp / "dst");
  ASSERT_TRUE(store.ok()) << store.status();
  ro.unpack = false;  // PrepareLowerDirs unpacks, as it would for a lazy pull
  auto rec = Pull(**store, *ParseReference(name), ro);
  ASSERT_TRUE(rec.ok()) << rec.status();
  EXPECT_EQ(rec->id, img.config_digest);

  std::string id = absl::StrCat("imgrun-", ::getpid());
  std::string run_dir = tmp / "run";
  pid_t pid = -1;
  {
    Lease lease(**store, id);
    ASSERT_TRUE(lease.Acquire(name).ok());
    auto lower = (*store)->PrepareLowerDirs(name);
    ASSERT_TRUE(lower.ok()) << lower.status();
    ASSERT_EQ(lower->size(), 2u);
    OverlayMount overlay;
    ASSERT_TRUE(overlay.Mount(*lower, run_dir).ok());

    // The lease keeps the image: a plain rm is refused while the container exists.
    auto refused = (*store)->Remove(name, false);
    EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition) << refused.status();

    ContainerSpec spec;
    spec.id = id;
    spec.rootfs = overlay.merged();
    spec.hostname = "pulled";
    spec.process.env = rec->config.env;
    spec.process.args = {"/bin/sh", "-c",
                         "cat /etc/motd; echo pid=$$ host=$(busybox hostname);"
                         "echo changed > /etc/motd; cat /etc/motd"};
    int p[2];
    ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
    base::UniqueFd r(p[0]), w(p[1]);
    auto c = runtime_->Create(spec, Stdio{-1, w.get(), w.get()});
    w.Reset();
    ASSERT_TRUE(c.ok()) << c.status();
    pid = (*c)->pid();
    EXPECT_EQ(CgroupDirs().size(), features_.cgroup_mode == kernel::CgroupMode::kV2
                                       ? 1u
                                       : kernel::V1Controllers().size());
    ASSERT_TRUE((*c)->Start().ok());
    std::string out = ReadAll(r.get());
    auto exit = (*c)->Wait();
    ASSERT_TRUE(exit.ok()) << exit.status();
    EXPECT_EQ(exit->code, 0) << out;
    EXPECT_EQ(exit->signal, 0);
    EXPECT_EQ(out, "hello from shoal\npid=1 host=pulled\nchanged\n");
    ASSERT_TRUE((*c)->Delete().ok());
    c->reset();

    // The write went to the container's upper dir; the shared layer is untouched.
    EXPECT_EQ(Slurp(overlay.upper() + "/etc/motd"), "changed\n");
    EXPECT_EQ(Slurp(lower->front() + "/etc/motd"), "hello from shoal\n");
    ASSERT_TRUE(overlay.Unmount().ok());
    ASSERT_TRUE(lease.Release().ok());
  }

  EXPECT_TRUE(MountsUnder(tmp.path()).empty()) << MountsUnder(tmp.path()).front();
  EXPECT_TRUE(CgroupDirs().empty()) << CgroupDirs().front();
  EXPECT_EQ(::kill(pid, 0), -1);
  EXPECT_EQ(errno, ESRCH) << "container PID 1 " << pid << " still exists";
  // No lease is left: the image (and its layers) can now be removed without force.
  auto removed = (*store)->Remove(name, false);
  ASSERT_TRUE(removed.ok()) << removed.status();
  EXPECT_EQ(removed->deleted_layers.size(), 2u);
  EXPECT_TRUE(std::filesystem::is_empty((*store)->LayersDir()));
}

}  // namespace
}  // namespace shoal::runtime::images
