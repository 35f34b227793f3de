// User namespaces (ContainerSpec.uid_mappings/gid_mappings), observed from inside with the
// probe and busybox and from the host through /proc and file ownership.
#include <fcntl.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "base/file.h"
#include "tests/priv/runtime/fixture.h"

namespace shoal::runtime::testing {
namespace {

constexpr uint32_t kHostBase = 100000;  // container ids 0..65535 are host ids 100000..165535

// The test image, copied and owned by the mapped root (as Docker's userns-remap does with
// its layers): a rootfs owned by the host's root is read-only to a remapped root.
class UsernsTest : public RuntimeTest {
 public:
  static void SetUpTestSuite() {
    RuntimeTest::SetUpTestSuite();
    if (geteuid() != 0) return;
    mapped_image_ = absl::StrCat("/tmp/shoaltest-rt-userns-", getpid());
    std::string cmd = absl::StrCat("cp -a ", image_, " ", mapped_image_, " && chown -R ", kHostBase,
                                   ":", kHostBase, " ", mapped_image_);
    ASSERT_EQ(system(cmd.c_str()), 0) << cmd;
  }
  static void TearDownTestSuite() {
    if (!mapped_image_.empty()) std::filesystem::remove_all(mapped_image_);
    RuntimeTest::TearDownTestSuite();
  }

 protected:
  void TearDown() override {
    for (const std::string& d : dirs_) std::filesystem::remove_all(d);
    RuntimeTest::TearDown();
  }

  ContainerSpec MappedSpec(std::vector<std::string> args) {
    ContainerSpec spec = Spec(std::move(args));
    spec.rootfs = mapped_image_;
    spec.uid_mappings = {{0, kHostBase, 65536}};
    spec.gid_mappings = {{0, kHostBase, 65536}};
    return spec;
  }

  // A host directory owned by uid:gid with mode 0755.
  std::string HostDir(const std::string& name, uid_t uid) {
    std::string dir = absl::StrCat("/tmp/shoaltest-rt-userns-", name, "-", getpid());
    std::filesystem::create_directories(dir);
    chown(dir.c_str(), uid, uid);
    chmod(dir.c_str(), 0755);
    dirs_.push_back(dir);
    return dir;
  }

  // Runs `args` in the running container `c`; returns stdout+stderr and the exit code.
  std::pair<std::string, int> Exec(Container& c, std::vector<std::string> args) {
    ProcessSpec ps;
    ps.args = std::move(args);
    auto out = ExecOutput(c, ps);
    if (!out.ok()) return {std::string(out.status().message()), -1};
    return {out->out, out->exit.code};
  }

  static std::string mapped_image_;
  std::vector<std::string> dirs_;
};

std::string UsernsTest::mapped_image_;

std::string Squash(absl::string_view s) {
  return absl::StrJoin(absl::StrSplit(s, ' ', absl::SkipEmpty()), " ");
}

std::string StatusLine(pid_t pid, const std::string& key) {
  auto status = base::ReadFile(absl::StrCat("/proc/", pid, "/status"));
  if (!status.ok()) return "";
  for (absl::string_view line : absl::StrSplit(*status, '\n')) {
    if (absl::StartsWith(line, key + ":")) {
      return absl::StrJoin(absl::StrSplit(line.substr(key.size() + 1), '\t', absl::SkipEmpty()),
                           " ");
    }
  }
  return "";
}

TEST_F(UsernsTest, RootInsideIsTheMappedUserOutside) {
  std::string owned = HostDir("owned", kHostBase);
  std::string host_root = HostDir("hostroot", 0);
  ContainerSpec spec = MappedSpec({"sleep", "1000"});
  spec.mounts = {{"/data", "bind", owned, {}}, {"/hostroot", "bind", host_root, {}}};
  auto c = runtime_->Create(spec, {});
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_TRUE((*c)->Start().ok());
  pid_t pid = (*c)->pid();
  // From the host: PID 1 runs as the mapped user, in its own user namespace.
  EXPECT_EQ(StatusLine(pid, "Uid"), "100000 100000 100000 100000");
  EXPECT_EQ(StatusLine(pid, "Gid"), "100000 100000 100000 100000");
  char self[128] = {}, container[128] = {};
  readlink("/proc/self/ns/user", self, sizeof(self) - 1);
  readlink(absl::StrCat("/proc/", pid, "/ns/user").c_str(), container, sizeof(container) - 1);
  EXPECT_STRNE(self, container);

  // From inside (exec joins the user namespace first): the maps, root, the default caps.
  auto [probe, code] = Exec(**c, {"shoal-probe"});
  ASSERT_EQ(code, 0) << probe;
  auto m = Parse(probe);
  EXPECT_EQ(Squash(m["uid_map"]), "0 100000 65536");
  EXPECT_EQ(m["uid"], "0");
  EXPECT_EQ(m["ns_user"], container);
  EXPECT_EQ(m["CapEff"], "00000000a80425fb");
  EXPECT_EQ(m["Seccomp"], "2");
  // Host-owned sysctl files: the mapped root is "other" to them (EACCES) before the
  // read-only mount is even consulted; its own sysfs (its netns) is read-only as usual.
  EXPECT_EQ(m["proc_sys_write"], "EACCES");
  EXPECT_EQ(m["sys_write"], "EROFS");
  EXPECT_TRUE(absl::StrContains(probe, " /proc/sys proc ro")) << probe;
  EXPECT_TRUE(absl::StrContains(probe, " /sys sysfs ro")) << probe;
  auto [maps, maps_code] = Exec(**c, {"cat", "/proc/self/gid_map"});
  EXPECT_EQ(Squash(absl::StripAsciiWhitespace(maps)), "0 100000 65536") << maps;

  // Files the container's root creates belong to the mapped user on the host.
  auto [touch, touch_code] = Exec(**c, {"touch", "/data/made-inside"});
  EXPECT_EQ(touch_code, 0) << touch;
  struct stat st;
  ASSERT_EQ(stat((owned + "/made-inside").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, kHostBase);
  EXPECT_EQ(st.st_gid, kHostBase);

  // Its capabilities hold in its own user namespace only: CAP_DAC_OVERRIDE does not cover a
  // directory of the host's root, CAP_MKNOD does not allow device nodes (both work without a
  // user namespace: see DevicesAndSymlinksInFreshDev), the default devices still work.
  auto [denied, denied_code] =
      Exec(**c, {"sh", "-c",
                 "touch /hostroot/x 2>&1; mknod /tmp/null2 c 1 3 2>&1; echo hi > /dev/null && "
                 "echo null-ok; head -c 4 /dev/zero | wc -c"});
  EXPECT_TRUE(absl::StrContains(denied, "/hostroot/x: Permission denied")) << denied;
  EXPECT_TRUE(absl::StrContains(denied, "mknod: /tmp/null2: Operation not permitted")) << denied;
  EXPECT_TRUE(absl::StrContains(denied, "null-ok\n4\n")) << denied;
  EXPECT_FALSE(std::filesystem::exists(host_root + "/x"));

  if (features_.cgroup_mode == kernel::CgroupMode::kV2) {
    // The container's root owns its cgroup (delegation).
    std::string dir = (*c)->cgroup().dirs().front();
    for (const char* f : {"", "/cgroup.procs", "/cgroup.subtree_control"}) {
      ASSERT_EQ(stat((dir + f).c_str(), &st), 0) << f;
      EXPECT_EQ(st.st_uid, kHostBase) << f;
    }
  }
  auto exit = (*c)->Stop(SIGKILL, absl::ZeroDuration());
  ASSERT_TRUE(exit.ok());
  ASSERT_TRUE((*c)->Delete().ok());
}

TEST_F(UsernsTest, ProbeAsPid1SeesDefaultMountsAndDevices) {
  ContainerSpec spec = MappedSpec({"sh", "-c",
                                   "shoal-probe; ls -l /dev/null /dev/tty /dev/urandom; "
                                   "echo x > /dev/shm/f && echo shm-ok; echo nofile=$(ulimit -n)"});
  // Above this process's hard limit: only the parent, outside the user namespace, may raise
  // it (when it holds CAP_SYS_RESOURCE: the development host's bounding set lacks it, the VM
  // lab's root has it; without it the limit stays at the hard limit).
  struct rlimit host;
  getrlimit(RLIMIT_NOFILE, &host);
  const bool can_raise = prctl(PR_CAPBSET_READ, CAP_SYS_RESOURCE, 0, 0, 0) == 1;
  const uint64_t nofile =
      can_raise ? std::min<uint64_t>(host.rlim_max + 1000, 1048576) : host.rlim_max;
  spec.process.rlimits = {{"RLIMIT_NOFILE", nofile, nofile}};
  spec.process.uid = 1000;
  spec.process.gid = 1000;
  spec.process.additional_gids = {5};
  auto out = Run(spec);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->exit.code, 0) << out->out;
  auto m = Parse(out->out);
  EXPECT_EQ(m["uid"], "1000");
  EXPECT_EQ(m["CapEff"], "0000000000000000");  // a non-root user, as without a userns
  for (const char* mnt : {" /dev tmpfs rw,nosuid", " /dev/pts devpts rw,nosuid,noexec",
                          " /dev/mqueue mqueue rw", " /sys sysfs ro,nosuid,nodev,noexec",
                          " /proc proc rw,nosuid,nodev,noexec", " /proc/sys proc ro"}) {
    EXPECT_TRUE(absl::StrContains(out->out, mnt)) << "missing mount" << mnt << "\n" << out->out;
  }
  EXPECT_TRUE(absl::StrContains(out->out, absl::StrCat("nofile=", nofile, "\n"))) << out->out;
  for (const char* want : {"1,   3", "5,   0", "1,   9", "shm-ok"}) {
    EXPECT_TRUE(absl::StrContains(out->out, want)) << want << "\n" << out->out;
  }
}

TEST_F(UsernsTest, JoinedNetnsGetsTheHostSysReadOnly) {
  std::string name = absl::StrCat("shoaltest-rt-userns-", getpid());
  ASSERT_EQ(system(("ip netns add " + name).c_str()), 0);
  ContainerSpec spec = MappedSpec({"shoal-probe"});
  spec.netns_path = "/run/netns/" + name;
  char before[128] = {};
  readlink("/proc/self/ns/net", before, sizeof(before) - 1);
  auto out = Run(spec);
  char after[128] = {};
  readlink("/proc/self/ns/net", after, sizeof(after) - 1);
  struct stat st;
  ASSERT_EQ(stat(spec.netns_path.c_str(), &st), 0);
  system(("ip netns del " + name).c_str());
  EXPECT_STREQ(before, after);  // the creating thread is back in its own netns
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->exit.code, 0) << out->out;
  auto m = Parse(out->out);
  EXPECT_EQ(m["ns_net"], absl::StrCat("net:[", st.st_ino, "]"));
  EXPECT_EQ(Squash(m["uid_map"]), "0 100000 65536");
  EXPECT_NE(m["sys_write"], "ok");
  EXPECT_TRUE(absl::StrContains(out->out, " /sys sysfs ro")) << out->out;
}

TEST_F(UsernsTest, OverlayRootfsCreatedFilesBelongToTheMappedRoot) {
  std::string base = HostDir("ov", 0);
  for (const char* d : {"/upper", "/work", "/mnt"}) {
    std::filesystem::create_directories(base + d);
    chown((base + d).c_str(), kHostBase, kHostBase);
  }
  ContainerSpec spec = MappedSpec({"sh", "-c", "echo new > /etc/created && cat /etc/created"});
  spec.rootfs = base + "/mnt";
  spec.overlay = {{mapped_image_}, base + "/upper", base + "/work"};
  auto out = Run(spec);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->exit.code, 0) << out->out;
  EXPECT_EQ(out->out, "new\n");
  struct stat st;
  ASSERT_EQ(stat((base + "/upper/etc/created").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, kHostBase);
  EXPECT_TRUE(std::filesystem::is_empty(base + "/mnt"));  // the overlay stayed inside
}

TEST_F(UsernsTest, BadMapsNameTheFieldAndLeaveNothing) {
  struct Case {
    std::function<void(ContainerSpec&)> mutate;
    std::string want;
  };
  std::vector<Case> cases = {
      {[](ContainerSpec& s) { s.gid_mappings.clear(); }, "gid_mappings: must be set"},
      {[](ContainerSpec& s) { s.uid_mappings[0].size = 0; }, "uid_mappings[0].size"},
      {[](ContainerSpec& s) {
         s.uid_mappings.push_back({10, 300000, 5});
       },
       "uid_mappings[1]: container ids 10-14 overlap uid_mappings[0]"},
      {[](ContainerSpec& s) {
         s.gid_mappings = {{1, kHostBase, 100}};
       },
       "gid_mappings: must map container id 0"},
      {[](ContainerSpec& s) { s.process.uid = 70000; }, "process.uid: 70000 is not mapped"},
  };
  for (const Case& c : cases) {
    ContainerSpec spec = MappedSpec({"true"});
    c.mutate(spec);
    auto got = runtime_->Create(spec, {});
    EXPECT_TRUE(absl::IsInvalidArgument(got.status())) << got.status();
    EXPECT_TRUE(absl::StrContains(got.status().message(), c.want)) << got.status();
    EXPECT_TRUE(LeftoverCgroups().empty()) << c.want;
    siginfo_t info = {};
    EXPECT_TRUE(waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) != 0 && errno == ECHILD);
  }
}

}  // namespace
}  // namespace shoal::runtime::testing
