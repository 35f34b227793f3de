// Device access control: Docker's allow-list from inside a container (v1 devices.* files on
// this hybrid host, the BPF_PROG_TYPE_CGROUP_DEVICE program on pure cgroup v2 in the VM lab),
// and the BPF program itself on whichever cgroup v2 hierarchy the host has.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/file.h"
#include "kernel/cgroup/devices.h"
#include "tests/priv/runtime/fixture.h"

namespace shoal::runtime::testing {
namespace {

TEST_F(RuntimeTest, DisallowedDeviceCanBeCreatedButNotOpened) {
  ContainerSpec spec = Spec({"sh", "-c",
                             "mknod /t/fuse c 10 229 && echo mknod-ok; cat /t/fuse 2>&1;"
                             "echo hi > /dev/null && echo null-ok; head -c 3 /dev/zero | wc -c"});
  spec.mounts = {{"/t", "tmpfs", "", {}}};
  auto out = Run(spec);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_TRUE(absl::StrContains(out->out, "mknod-ok\n")) << out->out;
  EXPECT_TRUE(absl::StrContains(out->out, "can't open '/t/fuse': Operation not permitted"))
      << out->out;
  EXPECT_TRUE(absl::StrContains(out->out, "null-ok\n3\n")) << out->out;
}

// The program on the real kernel without a container: a process in the cgroup may mknod a
// device but not open it unless a rule allows it; outside the cgroup nothing changes.
TEST_F(RuntimeTest, DeviceProgramFiltersOpensOnTheV2Hierarchy) {
  std::string v2 = features_.cgroup_mode == kernel::CgroupMode::kV2       ? "/sys/fs/cgroup"
                   : features_.cgroup_mode == kernel::CgroupMode::kHybrid ? "/sys/fs/cgroup/unified"
                                                                          : "";
  if (v2.empty()) GTEST_SKIP() << "no cgroup v2 hierarchy";
  std::string dir = absl::StrCat(v2, "/shoaltest-rt-dev-", getpid());
  ASSERT_EQ(mkdir(dir.c_str(), 0755), 0) << strerror(errno);
  std::string node = absl::StrCat("/tmp/shoaltest-rt-zero-", getpid());
  std::vector<kernel::DeviceRule> rules = {
      {false, 'a', -1, -1, "rwm"}, {true, 'c', -1, -1, "m"}, {true, 'c', 1, 3, "rw"}};
  absl::Status attached = kernel::AttachDeviceProgram(dir, kernel::BuildDeviceProgram(rules));
  int status = -1;
  if (attached.ok()) {
    pid_t child = fork();
    if (child == 0) {
      // 1: join failed, 2: mknod failed, 3: /dev/null refused, 4: the node opened, 0: as
      // expected (open refused with EPERM).
      std::string self = absl::StrCat(getpid());
      int fd = open((dir + "/cgroup.procs").c_str(), O_WRONLY);
      if (fd < 0 || write(fd, self.data(), self.size()) < 0) _exit(1);
      close(fd);
      if (mknod(node.c_str(), S_IFCHR | 0600, makedev(1, 5)) != 0) _exit(2);
      int null_fd = open("/dev/null", O_RDWR);
      if (null_fd < 0) _exit(3);
      int zero_fd = open(node.c_str(), O_RDONLY);
      _exit(zero_fd >= 0 ? 4 : errno == EPERM ? 0 : 5);
    }
    waitpid(child, &status, 0);
  }
  int outside = open(node.c_str(), O_RDONLY);  // the host is not filtered
  if (outside >= 0) close(outside);
  unlink(node.c_str());
  rmdir(dir.c_str());
  ASSERT_TRUE(attached.ok()) << attached;
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_GE(outside, 0) << strerror(errno);
}

}  // namespace
}  // namespace shoal::runtime::testing
