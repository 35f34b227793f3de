#include "tests/priv/runtime/fixture.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "base/file.h"
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

absl::StatusOr<RuntimeTest::Output> RuntimeTest::Run(const ContainerSpec& spec, bool one_step) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return absl::InternalError("pipe");
  base::UniqueFd r(p[0]), w(p[1]);
  Stdio stdio{-1, w.get(), w.get()};
  auto c = one_step ? runtime_->Run(spec, stdio) : runtime_->Create(spec, stdio);
  w.Reset();
  if (!c.ok()) return c.status();
  if (!one_step) {
    if (auto s = (*c)->Start(); !s.ok()) return s;
  }
  Output out;
  out.out = ReadAll(r.get());
  auto exit = (*c)->Wait();
  if (!exit.ok()) return exit.status();
  out.exit = *exit;
  if (auto s = (*c)->Delete(); !s.ok()) return s;
  return out;
}

absl::StatusOr<RuntimeTest::Output> RuntimeTest::ExecOutput(Container& c,
                                                            const ProcessSpec& process) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return absl::InternalError("pipe");
  base::UniqueFd r(p[0]), w(p[1]);
  auto proc = c.Exec(process, Stdio{-1, w.get(), w.get()});
  w.Reset();
  if (!proc.ok()) return proc.status();
  Output out;
  out.out = ReadAll(r.get());
  auto exit = (*proc)->Wait();
  if (!exit.ok()) return exit.status();
  out.exit = *exit;
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

void OciCliTest::SetUp() {
  RuntimeTest::SetUp();
  if (IsSkipped() || HasFatalFailure()) return;
  dir_ = absl::StrCat("/tmp/shoaltest-rt-oci-", getpid());
  bundle_ = dir_ + "/bundle";
  root_ = dir_ + "/root";
  std::filesystem::create_directories(bundle_);
  std::filesystem::create_directory_symlink(image_, bundle_ + "/rootfs");
  prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
}

void OciCliTest::TearDown() {
  if (!dir_.empty()) {
    for (const auto& entry : std::filesystem::directory_iterator(root_, ec_)) {
      std::string id = entry.path().filename().string();
      if (id[0] != '.') Cli("delete --force " + id);  // not .cache (compiled seccomp programs)
    }
    Reap();
    prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0);
    std::filesystem::remove_all(dir_);
  }
  RuntimeTest::TearDown();
}

nlohmann::json OciCliTest::Config(const nlohmann::json& process) {
  nlohmann::json p = {{"env", {"PATH=/bin"}}, {"cwd", "/"}, {"user", {{"uid", 0}, {"gid", 0}}}};
  p.merge_patch(process);
  return {{"ociVersion", "1.0.2"},
          {"process", p},
          {"root", {{"path", "rootfs"}}},
          {"linux",
           {{"namespaces",
             {{{"type", "pid"}},
              {{"type", "network"}},
              {{"type", "mount"}},
              {{"type", "ipc"}},
              {{"type", "uts"}}}}}}};
}

void OciCliTest::WriteBundleConfig(const nlohmann::json& config) {
  ASSERT_TRUE(base::WriteFileAtomic(bundle_ + "/config.json", config.dump()).ok());
}

std::pair<int, std::string> OciCliTest::Cli(const std::string& args) {
  std::string out_file = dir_ + "/cli.out";
  std::string cmd =
      absl::StrCat("cd ", bundle_, " && ", SHOAL_RUNTIME_PATH, " --root ", root_,
                   " --cgroup-parent ", parent_, " ", args, " </dev/null >", out_file, " 2>&1");
  int status = system(cmd.c_str());
  auto out = base::ReadFile(out_file);
  unlink(out_file.c_str());
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out.ok() ? *out : ""};
}

void OciCliTest::Reap() {
  while (waitpid(-1, nullptr, WNOHANG) > 0) {
  }
}

std::string OciCliTest::Status(const std::string& id) {
  Reap();
  auto [code, out] = Cli("state " + id);
  if (code != 0) return "error: " + out;
  return nlohmann::json::parse(out)["status"].get<std::string>();
}

void OciCliTest::AwaitStopped(const std::string& id) {
  absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (Status(id) != "stopped" && absl::Now() < deadline) usleep(20000);
  EXPECT_EQ(Status(id), "stopped");
}

}  // namespace shoal::runtime::testing
