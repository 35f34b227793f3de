// The runtime's fast paths (issue #3 benchmark): the pool of pre-created network namespaces
// and Runtime::Run's vfork-style clone with the child joining its cgroup itself. Each must keep
// every isolation property and leave nothing behind (no netns, mount, cgroup, thread, fd).
#include <dirent.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "base/file.h"
#include "kernel/cgroup/cgroup.h"
#include "kernel/features.h"
#include "kernel/ns/netns_pool.h"
#include "tests/priv/runtime/fixture.h"
#include "tests/testing/priv.h"

namespace shoal::runtime::testing {
namespace {

std::string Slurp(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Network namespaces this process holds open as fds ("net:[...]" links in /proc/self/fd).
int NetnsFds() {
  int n = 0;
  DIR* d = opendir("/proc/self/fd");
  while (dirent* e = readdir(d)) {
    char target[64];
    ssize_t len = readlinkat(dirfd(d), e->d_name, target, sizeof(target) - 1);
    if (len > 0 && absl::StartsWith(absl::string_view(target, len), "net:[")) ++n;
  }
  closedir(d);
  return n;
}

int Threads() {
  int n = 0;
  DIR* d = opendir("/proc/self/task");
  while (dirent* e = readdir(d)) n += e->d_name[0] != '.';
  closedir(d);
  return n;
}

int MountCount() {
  std::string m = Slurp("/proc/self/mountinfo");
  return static_cast<int>(std::count(m.begin(), m.end(), '\n'));
}

uint64_t Inode(int fd) {
  struct stat st;
  return fstat(fd, &st) == 0 ? st.st_ino : 0;
}

// What a thread sees in the network namespace `fd` (-1 = a namespace it unshares itself):
// interface names, lo's flags and a few per-netns sysctls.
std::string Observe(int fd) {
  std::string seen;
  std::thread t([&] {
    if (fd >= 0 ? setns(fd, CLONE_NEWNET) != 0 : unshare(CLONE_NEWNET) != 0) {
      seen = "setns failed";
      return;
    }
    struct if_nameindex* ifs = if_nameindex();
    for (struct if_nameindex* i = ifs; i && i->if_index != 0; ++i) {
      absl::StrAppend(&seen, "if=", i->if_name, "\n");
    }
    if_freenameindex(ifs);
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct ifreq req = {};
    strcpy(req.ifr_name, "lo");
    if (ioctl(s, SIOCGIFFLAGS, &req) == 0) absl::StrAppend(&seen, "lo_flags=", req.ifr_flags, "\n");
    close(s);
    for (const char* sysctl : {"ipv4/ip_forward", "ipv4/conf/all/rp_filter",
                               "ipv4/ping_group_range", "ipv6/conf/all/disable_ipv6",
                               "core/somaxconn"}) {
      absl::StrAppend(&seen, sysctl, "=", Slurp(absl::StrCat("/proc/sys/net/", sysctl)));
    }
    absl::StrAppend(&seen, Slurp("/proc/thread-self/net/dev").size() > 0 ? "" : "no-dev\n");
  });
  t.join();
  return seen;
}

TEST(RuntimeNetnsPoolTest, HandsOutEachNamespaceOnceAndClosesTheRestAtShutdown) {
  SHOAL_REQUIRE_ROOT();
  base::UniqueFd host(open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(host);
  const int fds0 = NetnsFds(), threads0 = Threads();
  {
    auto pool = kernel::NetnsPool::Create(3);
    ASSERT_TRUE(pool.ok()) << pool.status();
    ASSERT_TRUE((*pool)->WaitReady(3));
    EXPECT_EQ(NetnsFds(), fds0 + 4);  // 3 ready + the namespace they are made from
    EXPECT_EQ(Threads(), threads0 + 1);
    std::vector<base::UniqueFd> taken;
    std::set<uint64_t> inodes;
    for (int i = 0; i < 6; ++i) {  // more than the pool holds: it refills (or is empty)
      base::UniqueFd fd = (*pool)->Take();
      if (!fd) {
        ASSERT_TRUE((*pool)->WaitReady(1));
        fd = (*pool)->Take();
      }
      ASSERT_TRUE(fd);
      EXPECT_NE(Inode(fd.get()), Inode(host.get()));
      EXPECT_TRUE(inodes.insert(Inode(fd.get())).second) << "handed out twice";
      taken.push_back(std::move(fd));
    }
    ASSERT_TRUE((*pool)->WaitReady(3));
  }  // pool destroyed with 3 ready namespaces: its thread stops, their fds close
  EXPECT_EQ(Threads(), threads0);
  EXPECT_EQ(NetnsFds(), fds0);  // only `taken`, released at the end of the block, held any
}

TEST(RuntimeNetnsPoolTest, PooledNamespaceIsLikeANewOne) {
  SHOAL_REQUIRE_ROOT();
  auto pool = kernel::NetnsPool::Create(1);
  ASSERT_TRUE(pool.ok()) << pool.status();
  ASSERT_TRUE((*pool)->WaitReady(1));
  base::UniqueFd fd = (*pool)->Take();
  ASSERT_TRUE(fd);
  std::string pooled = Observe(fd.get());
  std::string fresh = Observe(-1);
  EXPECT_EQ(pooled, fresh);
  // Only lo, and lo down (IFF_UP = 1), as in any new namespace.
  EXPECT_TRUE(absl::StartsWith(pooled, "if=lo\nlo_flags=")) << pooled;
  EXPECT_EQ(pooled.find("if=", 1), std::string::npos) << pooled;  // lo only
  EXPECT_EQ(std::count(pooled.begin(), pooled.end(), '='), 7) << pooled;
  EXPECT_TRUE(absl::StrContains(pooled, absl::StrCat("lo_flags=", IFF_LOOPBACK, "\n"))) << pooled;
}

// A Runtime with a netns pool; containers run through Runtime::Run (the vfork path).
class RuntimeFastPathTest : public RuntimeTest {
 protected:
  void SetUp() override {
    RuntimeTest::SetUp();
    if (!runtime_) return;
    plain_ = runtime_->options();
    have_plain_ = true;
    RuntimeOptions options = plain_;
    options.netns_pool = 2;
    options.cgroup_pool = 2;
    runtime_.reset();
    fds0_ = NetnsFds();
    threads0_ = Threads();
    mounts0_ = MountCount();
    runtime_ = std::make_unique<Runtime>(options);
    ASSERT_NE(runtime_->netns_pool(), nullptr);
    ASSERT_TRUE(runtime_->netns_pool()->WaitReady(2));
    if (features_.cgroup_mode != kernel::CgroupMode::kV2) {
      ASSERT_NE(runtime_->cgroup_pool(), nullptr);
      ASSERT_TRUE(runtime_->cgroup_pool()->WaitReady(2));
      pool_dirs_ = runtime_->cgroup_pool()->ParentDirs();
    }
  }

  void TearDown() override {
    // The base checks and removes the cgroup parent with a runtime in place; the pools must
    // be gone first (their cgroups live in that parent).
    // Also after ExpectNothingLeft() reset it: the base removes the parent only with one.
    if (have_plain_) runtime_ = std::make_unique<Runtime>(plain_);
    EXPECT_EQ(PooledCgroups(), 0);
    RuntimeTest::TearDown();
  }

  // ".pool-*" cgroups under the parent, all hierarchies.
  int PooledCgroups() const {
    int n = 0;
    for (const std::string& dir : pool_dirs_) {
      DIR* d = opendir(dir.c_str());
      if (!d) continue;
      while (dirent* e = readdir(d)) n += absl::StartsWith(e->d_name, ".pool-");
      closedir(d);
    }
    return n;
  }

  // Run (create + start in one step) with output captured, then wait and delete.
  absl::StatusOr<Output> RunFast(const ContainerSpec& spec) { return Run(spec, /*one_step=*/true); }

  // After the runtime is gone: no namespace fd, thread or mount of ours remains.
  void ExpectNothingLeft() {
    runtime_.reset();
    EXPECT_EQ(NetnsFds(), fds0_);
    EXPECT_EQ(Threads(), threads0_);
    EXPECT_EQ(MountCount(), mounts0_);
    EXPECT_EQ(PooledCgroups(), 0);
  }

  int fds0_ = 0, threads0_ = 0, mounts0_ = 0;
  RuntimeOptions plain_;
  bool have_plain_ = false;
  std::vector<std::string> pool_dirs_;
};

TEST_F(RuntimeFastPathTest, RunKeepsDockerDefaultIsolation) {
  ContainerSpec spec = Spec({"shoal-probe"});
  spec.resources.pids_limit = 50;
  sigset_t before, after;
  pthread_sigmask(SIG_SETMASK, nullptr, &before);
  auto out = RunFast(spec);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->exit.code, 0) << out->out;
  auto m = Parse(out->out);
  EXPECT_EQ(m["pid"], "1");
  EXPECT_EQ(m["CapEff"], "00000000a80425fb");
  EXPECT_EQ(m["CapBnd"], "00000000a80425fb");
  EXPECT_EQ(m["Seccomp"], "2");
  EXPECT_EQ(m["NoNewPrivs"], "1");
  EXPECT_EQ(m["unshare"], "EPERM");
  EXPECT_EQ(m["mount"], "EPERM");
  EXPECT_EQ(m["keys_bytes"], "0");
  EXPECT_EQ(m["timer_list_bytes"], "0");
  EXPECT_EQ(m["proc_sys_write"], "EROFS");
  EXPECT_EQ(m["sys_write"], "EROFS");
  for (const char* ns : {"pid", "net", "uts", "ipc", "mnt", "cgroup"}) {
    char host[64] = {};
    ASSERT_GT(readlink(absl::StrCat("/proc/self/ns/", ns).c_str(), host, sizeof(host) - 1), 0);
    EXPECT_NE(m[absl::StrCat("ns_", ns)], host) << ns;
    EXPECT_FALSE(m[absl::StrCat("ns_", ns)].empty()) << ns;
  }
  std::string pids = features_.cgroup_mode == kernel::CgroupMode::kV2 ? "pids.max"
                                                                       : "pids/pids.max";
  EXPECT_EQ(m["cgroup_" + pids], "50") << out->out;
  // Masked directories (one shared read-only tmpfs) and files.
  for (const char* mnt : {" /proc/acpi tmpfs ro", " /proc/keys ",
                          " /proc/sys proc ro", " /sys/firmware tmpfs ro"}) {
    EXPECT_TRUE(absl::StrContains(out->out, mnt)) << "missing mount" << mnt << "\n" << out->out;
  }
  // The caller's thread is as it was: signal mask, dumpable (the child shared its mm).
  pthread_sigmask(SIG_SETMASK, nullptr, &after);
  for (int sig = 1; sig < NSIG; ++sig) {
    EXPECT_EQ(sigismember(&before, sig), sigismember(&after, sig)) << sig;
  }
  EXPECT_EQ(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0), 1);
  ExpectNothingLeft();
}

TEST_F(RuntimeFastPathTest, MaskedDirectoriesAreEmptyAndReadOnly) {
  auto out = RunFast(Spec({"sh", "-c",
                           "ls -A /proc/acpi /proc/scsi /sys/firmware | wc -l;"
                           "touch /proc/acpi/x 2>&1 || echo acpi-ro;"
                           "mkdir /sys/firmware/x 2>&1 || echo firmware-ro"}));
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_TRUE(absl::StrContains(out->out, "acpi-ro")) << out->out;
  EXPECT_TRUE(absl::StrContains(out->out, "firmware-ro")) << out->out;
  ExpectNothingLeft();
}

TEST_F(RuntimeFastPathTest, EachContainerGetsItsOwnFreshPooledNetns) {
  std::set<std::string> seen;
  char host[64] = {};
  ASSERT_GT(readlink("/proc/self/ns/net", host, sizeof(host) - 1), 0);
  std::vector<std::unique_ptr<Container>> running;
  for (int i = 0; i < 4; ++i) {  // more than the pool holds
    auto c = runtime_->Run(Spec({"sleep", "1000"}), {});
    ASSERT_TRUE(c.ok()) << c.status();
    char ns[64] = {};
    ASSERT_GT(readlink(absl::StrCat("/proc/", (*c)->pid(), "/ns/net").c_str(), ns,
                       sizeof(ns) - 1),
              0);
    EXPECT_NE(std::string(ns), host);
    EXPECT_TRUE(seen.insert(ns).second) << "two running containers share " << ns;
    running.push_back(std::move(*c));
  }
  auto out = RunFast(Spec({"sh", "-c", "cat /proc/net/dev; cat /sys/class/net/lo/flags"}));
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_TRUE(absl::StrContains(out->out, "lo:")) << out->out;
  EXPECT_EQ(std::count(out->out.begin(), out->out.end(), ':'), 1) << out->out;  // lo only
  EXPECT_TRUE(absl::StrContains(out->out, "\n0x8\n")) << out->out;  // IFF_LOOPBACK, not up
  for (auto& c : running) ASSERT_TRUE(c->Delete().ok());
  running.clear();
  EXPECT_TRUE(LeftoverCgroups().empty());
  ExpectNothingLeft();
}

TEST_F(RuntimeFastPathTest, RunFailuresAreReportedAndLeaveNothing) {
  auto c = runtime_->Run(Spec({"/bin/does-not-exist"}), {});
  EXPECT_TRUE(absl::IsNotFound(c.status())) << c.status();
  EXPECT_TRUE(absl::StrContains(c.status().message(), "exec \"/bin/does-not-exist\""))
      << c.status();
  ContainerSpec bad = Spec({"true"});
  bad.process.cwd = "/no/such/dir";
  c = runtime_->Run(bad, {});
  EXPECT_FALSE(c.ok());
  EXPECT_TRUE(absl::StrContains(c.status().message(), "chdir")) << c.status();
  EXPECT_TRUE(LeftoverCgroups().empty());
  siginfo_t info = {};
  EXPECT_TRUE(waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) != 0 && errno == ECHILD);
  // A non-root process user: the child changed its credentials on the shared mm; this
  // process stays dumpable.
  ContainerSpec user = Spec({"sh", "-c", "id -u"});
  user.process.uid = 1000;
  user.process.gid = 1000;
  auto out = RunFast(user);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->out, "1000\n");
  EXPECT_EQ(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0), 1);
  ExpectNothingLeft();
}

// Two containers starting at once under a new shared parent: one has created the parent's
// cpuset directory (empty cpus/mems) but not filled it yet when the other creates its leaf.
// The leaf must still get the cpus and mems of the nearest filled ancestor, or a process
// cannot join it (ENOSPC; seen in CI as a rejected agent task).
TEST(RuntimeCgroupRaceTest, LeafUnderAnEmptyCpusetParentGetsTheRootsCpus) {
  SHOAL_REQUIRE_ROOT();
  auto features = kernel::ProbeFeatures();
  ASSERT_TRUE(features.ok());
  if (features->cgroup_mode == kernel::CgroupMode::kV2) GTEST_SKIP() << "v1 cpuset only";
  kernel::CgroupConfig config;
  config.mode = features->cgroup_mode;
  const std::string parent = absl::StrCat("shoaltest-cpuset-race-", getpid());
  const std::string parent_dir = absl::StrCat(config.root, "/cpuset/", parent);
  ASSERT_EQ(mkdir(parent_dir.c_str(), 0755), 0) << parent_dir;  // as the other container left it
  struct Cleanup {
    std::string parent;
    ~Cleanup() {
      for (const char* c : {"cpuset", "cpu", "cpuacct", "memory", "devices", "freezer", "blkio",
                            "pids", "net_cls", "net_prio", "perf_event", "hugetlb", "rdma",
                            "misc", "systemd"}) {
        std::string d = absl::StrCat("/sys/fs/cgroup/", c, "/", parent);
        rmdir(absl::StrCat(d, "/leaf").c_str());
        rmdir(d.c_str());
      }
    }
  } cleanup{parent};
  auto cg = kernel::Cgroup::Create(config, parent + "/leaf", kernel::CgroupResources{});
  ASSERT_TRUE(cg.ok()) << cg.status();
  auto root_cpus = base::ReadFile(config.root + "/cpuset/cpuset.cpus");
  ASSERT_TRUE(root_cpus.ok());
  auto leaf_cpus = base::ReadFile((*cg)->Dir("cpuset") + "/cpuset.cpus");
  ASSERT_TRUE(leaf_cpus.ok()) << leaf_cpus.status();
  EXPECT_EQ(absl::StripAsciiWhitespace(*leaf_cpus), absl::StripAsciiWhitespace(*root_cpus));
  // A process can join it.
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    pause();
    _exit(0);
  }
  absl::Status joined = (*cg)->AddProcess(child);
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  EXPECT_TRUE(joined.ok()) << joined;
  EXPECT_TRUE((*cg)->Remove().ok());
}

TEST_F(RuntimeFastPathTest, PooledCgroupIsLikeANewOneAndNoneIsLeft) {
  if (features_.cgroup_mode == kernel::CgroupMode::kV2) GTEST_SKIP() << "no cgroup pool on v2";
  EXPECT_EQ(PooledCgroups(), 2 * static_cast<int>(pool_dirs_.size()));
  // The same container through a pooled cgroup and through Cgroup::Create (no pool): the
  // container sees the same limits, device rules and cpuset.
  const char* script =
      "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max"
      " /sys/fs/cgroup/devices/devices.list /sys/fs/cgroup/cpuset/cpuset.cpus"
      " /sys/fs/cgroup/cpuset/cpuset.mems; cat /proc/self/cgroup";
  ContainerSpec spec = Spec({"sh", "-c", script});
  spec.resources.memory_limit = 64 << 20;
  spec.resources.pids_limit = 50;
  auto pooled = RunFast(spec);
  ASSERT_TRUE(pooled.ok()) << pooled.status();
  auto plain = std::make_unique<Runtime>(plain_);
  std::swap(runtime_, plain);  // RunFast uses runtime_
  ContainerSpec spec2 = spec;
  spec2.id = spec.id + "-nopool";
  auto fresh = RunFast(spec2);
  std::swap(runtime_, plain);
  plain.reset();
  ASSERT_TRUE(fresh.ok()) << fresh.status();
  EXPECT_EQ(pooled->out, fresh->out);
  EXPECT_TRUE(absl::StrContains(pooled->out, absl::StrCat(64 << 20, "\n50\n"))) << pooled->out;
  EXPECT_TRUE(absl::StrContains(pooled->out, "c 1:3 rwm")) << pooled->out;
  // A duplicate id through the pool: ALREADY_EXISTS, the existing container untouched, the
  // pooled cgroup consumed (removed), nothing else left.
  auto first = runtime_->Run(Spec({"sleep", "1000"}), {});
  ASSERT_TRUE(first.ok()) << first.status();
  ContainerSpec dup = Spec({"true"});
  dup.id = (*first)->id();
  ASSERT_TRUE(runtime_->cgroup_pool()->WaitReady(2));
  auto second = runtime_->Run(dup, {});
  EXPECT_TRUE(absl::IsAlreadyExists(second.status())) << second.status();
  EXPECT_EQ(kill((*first)->pid(), 0), 0);
  ASSERT_TRUE((*first)->Delete().ok());
  EXPECT_TRUE(LeftoverCgroups().empty());
  ExpectNothingLeft();
}

TEST_F(RuntimeFastPathTest, CgroupsPooledByADeadProcessAreSweptAway) {
  if (features_.cgroup_mode == kernel::CgroupMode::kV2) GTEST_SKIP() << "no cgroup pool on v2";
  pid_t dead = fork();
  if (dead == 0) _exit(0);
  ASSERT_GT(dead, 0);
  ASSERT_EQ(waitpid(dead, nullptr, 0), dead);
  std::string stale = absl::StrCat(".pool-", dead, "-0");
  for (const std::string& dir : pool_dirs_) {
    ASSERT_EQ(mkdir(absl::StrCat(dir, "/", stale).c_str(), 0755), 0) << dir;
  }
  RuntimeOptions options = runtime_->options();
  runtime_.reset();  // its own pooled cgroups go
  runtime_ = std::make_unique<Runtime>(options);  // sweeps the dead process's
  for (const std::string& dir : pool_dirs_) {
    struct stat st;
    EXPECT_NE(stat(absl::StrCat(dir, "/", stale).c_str(), &st), 0) << dir;
  }
  ExpectNothingLeft();
}

}  // namespace
}  // namespace shoal::runtime::testing
