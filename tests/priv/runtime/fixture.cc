#include "tests/priv/runtime/fixture.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "kernel/cgroup/plan.h"
#include "tests/testing/priv.h"

namespace shoal::runtime::testing {

std::string RuntimeTest::image_;

void RuntimeTest::SetUpTestSuite() {
  if (geteuid() != 0) return;
  image_ = absl::StrCat("/tmp/shoaltest-rt-img-", getpid());
  std::string cmd = absl::StrCat(SHOAL_SOURCE_DIR, "/scripts/mkimage ", image_, " ",
                                 SHOAL_PROBE_PATH, " >/dev/null");
  ASSERT_EQ(system(cmd.c_str()), 0) << cmd;
}

void RuntimeTest::TearDownTestSuite() {
  if (!image_.empty()) std::filesystem::remove_all(image_);
}

void RuntimeTest::SetUp() {
  SHOAL_REQUIRE_ROOT();
  auto f = kernel::ProbeFeatures();
  ASSERT_TRUE(f.ok()) << f.status();
  features_ = *f;
  parent_ = absl::StrCat("shoaltest-rt-", getpid());
  RuntimeOptions options;
  options.cgroup.mode = features_.cgroup_mode;
  options.cgroup_parent = parent_;
  runtime_ = std::make_unique<Runtime>(options);
}

std::vector<std::string> RuntimeTest::LeftoverCgroups() const {
  std::vector<std::string> left;
  std::vector<std::string> bases;
  if (features_.cgroup_mode == kernel::CgroupMode::kV2) {
    bases.push_back("/sys/fs/cgroup/" + parent_);
  } else {
    for (const std::string& c : kernel::V1Controllers()) {
      bases.push_back(absl::StrCat("/sys/fs/cgroup/", c, "/", parent_));
    }
  }
  for (const std::string& base : bases) {
    DIR* d = opendir(base.c_str());
    if (!d) continue;
    while (dirent* e = readdir(d)) {
      if (e->d_type == DT_DIR && e->d_name[0] != '.') left.push_back(base + "/" + e->d_name);
    }
    closedir(d);
  }
  return left;
}

void RuntimeTest::TearDown() {
  if (!runtime_) return;
  EXPECT_TRUE(LeftoverCgroups().empty()) << "cgroups left behind: " << LeftoverCgroups().front();
  for (const std::string& dir : LeftoverCgroups()) rmdir(dir.c_str());
  if (features_.cgroup_mode == kernel::CgroupMode::kV2) {
    rmdir(("/sys/fs/cgroup/" + parent_).c_str());
  } else {
    for (const std::string& c : kernel::V1Controllers()) {
      rmdir(absl::StrCat("/sys/fs/cgroup/", c, "/", parent_).c_str());
    }
  }
}

ContainerSpec RuntimeTest::Spec(std::vector<std::string> args) {
  ContainerSpec spec;
  spec.id = absl::StrCat("c", getpid(), "-", ++counter_);
  spec.rootfs = image_;
  spec.process.args = std::move(args);
  return spec;
}

std::string RuntimeTest::ReadAll(int fd) {
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof(buf))) > 0 || (n < 0 && errno == EINTR)) {
    if (n > 0) out.append(buf, n);
  }
  return out;
}

absl::StatusOr<RuntimeTest::Output> RuntimeTest::Run(const ContainerSpec& spec) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return absl::InternalError("pipe");
  base::UniqueFd r(p[0]), w(p[1]);
  auto c = runtime_->Create(spec, Stdio{-1, w.get(), w.get()});
  w.Reset();
  if (!c.ok()) return c.status();
  if (auto s = (*c)->Start(); !s.ok()) return s;
  Output out;
  out.out = ReadAll(r.get());
  auto exit = (*c)->Wait();
  if (!exit.ok()) return exit.status();
  out.exit = *exit;
  if (auto s = (*c)->Delete(); !s.ok()) return s;
  return out;
}

std::map<std::string, std::string> RuntimeTest::Parse(const std::string& out) {
  std::map<std::string, std::string> m;
  for (absl::string_view line : absl::StrSplit(out, '\n', absl::SkipEmpty())) {
    std::pair<std::string, std::string> kv = absl::StrSplit(line, absl::MaxSplits('=', 1));
    m.emplace(kv.first, kv.second);
  }
  return m;
}

}  // namespace shoal::runtime::testing
