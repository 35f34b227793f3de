// Isolation observed from inside a container (the probe), exec, and bad specs.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/file.h"
#include "kernel/ns/ns.h"
#include "tests/priv/runtime/fixture.h"

namespace shoal::runtime::testing {
namespace {

// The probe prints the cgroup files it finds: "cgroup_<controller>/<file>" on v1 and hybrid
// hosts, "cgroup_<file>" on v2 (the VM lab runs this suite on pure cgroup v2).
template <typename Map>
std::string CgroupFile(Map& m, const std::string& v1, const std::string& v2) {
  std::string v = m["cgroup_" + v1];
  return v.empty() ? m["cgroup_" + v2] : v;
}

std::string HostNs(const char* name) {
  char buf[128] = {};
  readlink(absl::StrCat("/proc/self/ns/", name).c_str(), buf, sizeof(buf) - 1);
  return buf;
}

bool NoChildren() {
  siginfo_t info = {};
  return waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) != 0 && errno == ECHILD;
}

TEST_F(RuntimeTest, ProbeSeesDockerDefaultIsolation) {
  ContainerSpec spec = Spec({"shoal-probe"});
  spec.hostname = "probe-host";
  spec.resources.memory_limit = 64 << 20;
  spec.resources.pids_limit = 50;
  auto out = Run(spec);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->exit.code, 0) << out->out;
  auto m = Parse(out->out);
  EXPECT_EQ(m["pid"], "1");
  EXPECT_EQ(m["hostname"], "probe-host");
  EXPECT_EQ(m["CapEff"], "00000000a80425fb");  // Docker's 14 default capabilities
  EXPECT_EQ(m["CapPrm"], "00000000a80425fb");
  EXPECT_EQ(m["CapBnd"], "00000000a80425fb");
  EXPECT_EQ(m["CapInh"], "0000000000000000");
  EXPECT_EQ(m["CapAmb"], "0000000000000000");
  EXPECT_EQ(m["Seccomp"], "2");
  EXPECT_EQ(m["NoNewPrivs"], "1");
  EXPECT_EQ(m["unshare"], "EPERM");
  EXPECT_EQ(m["mount"], "EPERM");
  EXPECT_EQ(m["clone3"], "ENOSYS");    // so glibc falls back to clone
  EXPECT_EQ(m["keyctl"], "EPERM");     // never allowed by Docker's profile
  EXPECT_EQ(m["syscall_999"], "ENOSYS");
  // Masked by /dev/null (this kernel has no /proc/kcore; where it exists it reads empty too).
  EXPECT_EQ(m["keys_bytes"], "0");
  EXPECT_EQ(m["timer_list_bytes"], "0");
  EXPECT_TRUE(m["kcore_bytes"] == "0" || m["kcore_bytes"] == "!ENOENT") << m["kcore_bytes"];
  EXPECT_EQ(m["proc_sys_write"], "EROFS");
  EXPECT_EQ(m["sys_write"], "EROFS");
  for (const char* ns : {"pid", "net", "uts", "ipc", "mnt", "cgroup"}) {
    EXPECT_NE(m[absl::StrCat("ns_", ns)], HostNs(ns)) << ns;
    EXPECT_FALSE(m[absl::StrCat("ns_", ns)].empty()) << ns;
  }
  EXPECT_EQ(m["ns_user"], HostNs("user"));  // no user namespace requested
  EXPECT_EQ(CgroupFile(m, "pids/pids.max", "pids.max"), "50");
  EXPECT_EQ(CgroupFile(m, "memory/memory.limit_in_bytes", "memory.max"), absl::StrCat(64 << 20));
  // Default filesystems.
  for (const char* mnt : {" /dev tmpfs rw,nosuid", " /dev/pts devpts rw,nosuid,noexec",
                          " /dev/shm tmpfs rw,nosuid,nodev,noexec", " /dev/mqueue mqueue rw",
                          " /sys sysfs ro,nosuid,nodev,noexec", " /proc proc rw,nosuid,nodev,noexec",
                          " /proc/sys proc ro", " /proc/keys ", " /proc/acpi tmpfs ro"}) {
    EXPECT_TRUE(absl::StrContains(out->out, mnt)) << "missing mount" << mnt << "\n" << out->out;
  }
}

TEST_F(RuntimeTest, DevicesAndSymlinksInFreshDev) {
  auto out = Run(Spec({"sh", "-c",
                       "ls -l /dev/null /dev/zero /dev/full /dev/random /dev/urandom /dev/tty;"
                       "for l in fd stdin stdout stderr ptmx; do readlink /dev/$l; done;"
                       "echo hi > /dev/null && echo null-ok"}));
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->exit.code, 0) << out->out;
  for (const char* want : {"1,   3", "1,   5", "1,   7", "1,   8", "1,   9", "5,   0",
                           "/proc/self/fd\n", "/proc/self/fd/0", "/proc/self/fd/2", "pts/ptmx",
                           "null-ok"}) {
    EXPECT_TRUE(absl::StrContains(out->out, want)) << want << "\n" << out->out;
  }
}

TEST_F(RuntimeTest, ProcessSettingsApply) {
  ContainerSpec spec = Spec({"sh", "-c", "echo uid=$(id -u) gid=$(id -g) groups=$(id -G);"
                                         "echo cwd=$(pwd); echo foo=$FOO; echo nofile=$(ulimit -n);"
                                         "grep CapEff /proc/self/status"});
  spec.process.uid = 65534;
  spec.process.gid = 65534;
  spec.process.additional_gids = {5};
  spec.process.cwd = "/tmp";
  spec.process.env = {"FOO=bar"};
  spec.process.rlimits = {{"RLIMIT_NOFILE", 100, 100}};
  auto out = Run(spec);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_TRUE(absl::StrContains(out->out, "uid=65534 gid=65534 groups=65534 5")) << out->out;
  EXPECT_TRUE(absl::StrContains(out->out, "cwd=/tmp")) << out->out;
  EXPECT_TRUE(absl::StrContains(out->out, "foo=bar")) << out->out;
  EXPECT_TRUE(absl::StrContains(out->out, "nofile=100")) << out->out;
  // A non-root user keeps no effective capabilities across execve.
  EXPECT_TRUE(absl::StrContains(out->out, "CapEff:\t0000000000000000")) << out->out;
}

TEST_F(RuntimeTest, CapAddDropAndExitCodes) {
  ContainerSpec spec = Spec({"sh", "-c", "grep CapEff /proc/self/status; exit 7"});
  spec.process.cap_add = {"NET_ADMIN"};
  spec.process.cap_drop = {"CAP_CHOWN", "kill"};
  auto out = Run(spec);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->exit.code, 7);
  // a80425fb + NET_ADMIN (bit 12) - CHOWN (bit 0) - KILL (bit 5)
  EXPECT_TRUE(absl::StrContains(out->out, "CapEff:\t00000000a80435da")) << out->out;
  // PID 1 ignores even SIGKILL sent from inside its own pid namespace; from the host it dies.
  auto c = runtime_->Create(Spec({"sleep", "1000"}), {});
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_TRUE((*c)->Start().ok());
  ASSERT_TRUE((*c)->Signal(SIGKILL).ok());
  auto killed = (*c)->Wait();
  ASSERT_TRUE(killed.ok()) << killed.status();
  EXPECT_EQ(killed->signal, SIGKILL);
  EXPECT_EQ(killed->code, 137);
  EXPECT_FALSE(killed->oom_killed);
  ASSERT_TRUE((*c)->Delete().ok());
}

TEST_F(RuntimeTest, MountsResolveInsideRootfsAndReadonlyRootfs) {
  std::string host_dir = absl::StrCat("/tmp/shoaltest-rt-vol-", getpid());
  std::filesystem::create_directories(host_dir);
  ASSERT_TRUE(base::WriteFileAtomic(host_dir + "/file", "from-host").ok());
  ContainerSpec spec = Spec({"sh", "-c",
                             "cat /data/deep/file; echo; touch /data/deep/w && echo vol-rw;"
                             "touch /ro/x || echo ro-denied; touch /rootfile || echo rootfs-ro;"
                             "touch /scratch/x && echo tmpfs-ok"});
  spec.readonly_rootfs = true;
  spec.mounts = {{"/data/deep", "bind", host_dir, {}},
                 {"/ro", "bind", host_dir, {"ro"}},
                 {"/scratch", "tmpfs", "", {"size=1m", "mode=1777"}}};
  auto out = Run(spec);
  std::filesystem::remove_all(host_dir);
  ASSERT_TRUE(out.ok()) << out.status();
  for (const char* want : {"from-host", "vol-rw", "ro-denied", "rootfs-ro", "tmpfs-ok"}) {
    EXPECT_TRUE(absl::StrContains(out->out, want)) << want << "\n" << out->out;
  }
}

TEST_F(RuntimeTest, JoinsExistingNetworkNamespace) {
  std::string name = absl::StrCat("shoaltest-rt-", getpid());
  ASSERT_EQ(system(("ip netns add " + name).c_str()), 0);
  ContainerSpec spec = Spec({"shoal-probe"});
  spec.netns_path = "/run/netns/" + name;
  auto out = Run(spec);
  struct stat st;
  ASSERT_EQ(stat(spec.netns_path.c_str(), &st), 0);
  system(("ip netns del " + name).c_str());
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Parse(out->out)["ns_net"], absl::StrCat("net:[", st.st_ino, "]"));
}

TEST_F(RuntimeTest, ExecJoinsNamespacesCgroupAndRestrictions) {
  ContainerSpec spec = Spec({"sleep", "1000"});
  spec.resources.pids_limit = 20;
  auto c = runtime_->Create(spec, {});
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_TRUE((*c)->Start().ok());
  ProcessSpec ps;
  ps.args = {"shoal-probe"};
  auto out = ExecOutput(**c, ps);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->exit.code, 0) << out->out;
  auto m = Parse(out->out);
  pid_t pid1 = (*c)->pid();
  for (const char* ns : {"pid", "net", "uts", "ipc", "mnt", "cgroup"}) {
    char link[128] = {};
    readlink(absl::StrCat("/proc/", pid1, "/ns/", ns).c_str(), link, sizeof(link) - 1);
    EXPECT_EQ(m[absl::StrCat("ns_", ns)], link) << ns;
  }
  EXPECT_NE(m["pid"], "1");
  EXPECT_EQ(m["CapEff"], "00000000a80425fb");
  EXPECT_EQ(m["Seccomp"], "2");
  EXPECT_EQ(m["unshare"], "EPERM");
  EXPECT_EQ(CgroupFile(m, "pids/pids.max", "pids.max"), "20");
  // A long-running exec'd process sits in the container's cgroup in every hierarchy (read
  // while it is alive: an exited task no longer shows its cgroup).
  auto sleeper = (*c)->Exec(ProcessSpec{.args = {"sleep", "1000"}}, {});
  ASSERT_TRUE(sleeper.ok()) << sleeper.status();
  auto exec_cgroup = base::ReadFile(absl::StrCat("/proc/", (*sleeper)->pid(), "/cgroup"));
  auto pid1_cgroup = base::ReadFile(absl::StrCat("/proc/", pid1, "/cgroup"));
  ASSERT_TRUE(exec_cgroup.ok() && pid1_cgroup.ok());
  EXPECT_EQ(*exec_cgroup, *pid1_cgroup);
  EXPECT_TRUE(absl::StrContains(*exec_cgroup, (*c)->id()));
  ASSERT_TRUE((*sleeper)->Signal(SIGKILL).ok());
  ASSERT_TRUE((*sleeper)->Wait().ok());
  auto bad = (*c)->Exec(ProcessSpec{.args = {"/no/such/binary"}}, {});
  EXPECT_TRUE(absl::IsNotFound(bad.status())) << bad.status();
  EXPECT_TRUE(absl::StrContains(bad.status().message(), "/no/such/binary")) << bad.status();
  ASSERT_TRUE((*c)->Delete().ok());
  EXPECT_TRUE(NoChildren());  // PID 1, the exec'd process and the helpers are all reaped
}

struct BadSpecCase {
  std::string name;
  std::function<void(ContainerSpec&, const std::string& image)> mutate;
  absl::StatusCode code;
  std::string field;
};

TEST_F(RuntimeTest, BadSpecsNameTheFieldAndLeaveNothing) {
  symlink("../../../../../../../tmp", (image_ + "/escape").c_str());
  std::vector<BadSpecCase> cases = {
      {"missing rootfs", [](ContainerSpec& s, auto&) { s.rootfs = "/nonexistent/rootfs"; },
       absl::StatusCode::kInvalidArgument, "rootfs:"},
      {"relative rootfs", [](ContainerSpec& s, auto&) { s.rootfs = "rel/rootfs"; },
       absl::StatusCode::kInvalidArgument, "rootfs:"},
      {"unknown cap", [](ContainerSpec& s, auto&) { s.process.cap_add = {"CAP_FLY"}; },
       absl::StatusCode::kInvalidArgument, "cap_add[0]: unknown capability \"CAP_FLY\""},
      {"negative memory", [](ContainerSpec& s, auto&) { s.resources.memory_limit = -5; },
       absl::StatusCode::kInvalidArgument, "resources.memory_limit"},
      {"swap below memory",
       [](ContainerSpec& s, auto&) {
         s.resources.memory_limit = 1 << 20;
         s.resources.memory_swap = 1000;
       },
       absl::StatusCode::kInvalidArgument, "resources.memory_swap"},
      {"kernel rejects cpuset", [](ContainerSpec& s, auto&) { s.resources.cpuset_cpus = "999"; },
       absl::StatusCode::kInvalidArgument, "cpuset.cpus=999"},
      {"symlink escape",
       [](ContainerSpec& s, auto&) { s.mounts = {{"/escape/x", "tmpfs", "", {}}}; },
       absl::StatusCode::kInvalidArgument, "mounts[0].destination: \"/escape/x\" escapes"},
      {"relative destination",
       [](ContainerSpec& s, auto&) { s.mounts = {{"data", "tmpfs", "", {}}}; },
       absl::StatusCode::kInvalidArgument, "mounts[0].destination"},
      {"relative cwd", [](ContainerSpec& s, auto&) { s.process.cwd = "tmp"; },
       absl::StatusCode::kInvalidArgument, "process.cwd"},
      {"bad id", [](ContainerSpec& s, auto&) { s.id = "../x"; },
       absl::StatusCode::kInvalidArgument, "id:"},
      {"unknown mount option",
       [](ContainerSpec& s, auto&) { s.mounts = {{"/m", "tmpfs", "", {"bogus"}}}; },
       absl::StatusCode::kInvalidArgument, "mounts[0]: options[0]"},
      {"kernel rejects tmpfs size in the child",
       [](ContainerSpec& s, auto&) { s.mounts = {{"/m", "tmpfs", "", {"size=lots"}}}; },
       absl::StatusCode::kInvalidArgument, "mount m"},
      {"not a netns", [](ContainerSpec& s, auto&) { s.netns_path = "/etc/hostname"; },
       absl::StatusCode::kInvalidArgument, "netns_path"},
  };
  for (const BadSpecCase& c : cases) {
    ContainerSpec spec = Spec({"true"});
    c.mutate(spec, image_);
    auto got = runtime_->Create(spec, {});
    EXPECT_EQ(got.status().code(), c.code) << c.name << ": " << got.status();
    EXPECT_TRUE(absl::StrContains(got.status().message(), c.field))
        << c.name << ": " << got.status();
    EXPECT_TRUE(LeftoverCgroups().empty()) << c.name;
    EXPECT_TRUE(NoChildren()) << c.name;
  }
  unlink((image_ + "/escape").c_str());
  std::filesystem::remove_all(image_ + "/m");
}

TEST_F(RuntimeTest, DuplicateIdAndFailedExecLeaveNothing) {
  ContainerSpec spec = Spec({"true"});
  auto first = runtime_->Create(spec, {});
  ASSERT_TRUE(first.ok()) << first.status();
  auto second = runtime_->Create(spec, {});
  EXPECT_TRUE(absl::IsAlreadyExists(second.status())) << second.status();
  EXPECT_TRUE(absl::StrContains(second.status().message(), "id: container")) << second.status();
  ASSERT_TRUE((*first)->Delete().ok());
  EXPECT_TRUE(LeftoverCgroups().empty());

  auto c = runtime_->Create(Spec({"/bin/does-not-exist"}), {});
  ASSERT_TRUE(c.ok()) << c.status();
  auto started = (*c)->Start();
  EXPECT_TRUE(absl::IsNotFound(started)) << started;
  EXPECT_TRUE(absl::StrContains(started.message(), "exec \"/bin/does-not-exist\"")) << started;
  auto exit = (*c)->Wait();
  ASSERT_TRUE(exit.ok());
  EXPECT_EQ(exit->code, 127);
  ASSERT_TRUE((*c)->Delete().ok());
  EXPECT_TRUE(LeftoverCgroups().empty());
  EXPECT_TRUE(NoChildren());
}

TEST_F(RuntimeTest, DeleteBeforeStartKillsTheWaitingInit) {
  auto c = runtime_->Create(Spec({"true"}), {});
  ASSERT_TRUE(c.ok()) << c.status();
  pid_t pid = (*c)->pid();
  ASSERT_TRUE((*c)->Delete().ok());
  EXPECT_NE(kill(pid, 0), 0);
  EXPECT_TRUE(NoChildren());
}

TEST_F(RuntimeTest, SeccompIsCompiledOncePerCapabilitySet) {
  for (int i = 0; i < 3; ++i) {
    auto out = Run(Spec({"true"}));
    ASSERT_TRUE(out.ok()) << out.status();
  }
  EXPECT_EQ(runtime_->seccomp().compilations(), 1);
}

}  // namespace
}  // namespace shoal::runtime::testing

namespace shoal::runtime::testing {
namespace {

TEST_F(RuntimeTest, OverlayRootfsOfLayersStaysInsideTheContainer) {
  std::string base = absl::StrCat("/tmp/shoaltest-rt-ov-", getpid());
  for (const char* d : {"/layer2/etc", "/upper", "/work", "/mnt"}) {
    std::filesystem::create_directories(base + d);
  }
  ASSERT_TRUE(base::WriteFileAtomic(base + "/layer2/etc/motd", "from layer 2\n").ok());
  ContainerSpec spec = Spec({"sh", "-c", "cat /etc/motd; echo new > /created; ls /bin/busybox"});
  spec.rootfs = base + "/mnt";
  spec.overlay.lower_dirs = {base + "/layer2", image_};  // top-most first
  spec.overlay.upper_dir = base + "/upper";
  spec.overlay.work_dir = base + "/work";
  auto out = Run(spec);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->exit.code, 0) << out->out;
  EXPECT_TRUE(absl::StrContains(out->out, "from layer 2")) << out->out;
  EXPECT_TRUE(absl::StrContains(out->out, "/bin/busybox")) << out->out;
  // Writes land in the upper dir, never in a layer; the overlay was never mounted on the host.
  EXPECT_TRUE(std::filesystem::exists(base + "/upper/created"));
  EXPECT_FALSE(std::filesystem::exists(image_ + "/created"));
  auto mountinfo = base::ReadFile("/proc/self/mountinfo");
  ASSERT_TRUE(mountinfo.ok());
  EXPECT_FALSE(absl::StrContains(*mountinfo, base + "/mnt"));
  EXPECT_TRUE(std::filesystem::is_empty(base + "/mnt"));

  ContainerSpec bad = Spec({"true"});
  bad.rootfs = base + "/mnt";
  bad.overlay.lower_dirs = {image_};
  auto got = runtime_->Create(bad, {});
  EXPECT_TRUE(absl::StrContains(got.status().message(), "overlay.upper_dir")) << got.status();
  std::filesystem::remove_all(base);
}

}  // namespace
}  // namespace shoal::runtime::testing
