// shoal-runtime as `dockerd --add-runtime shoal=<path>` with Debian's docker.io: an image
// imported with `docker import` from scripts/mkimage, run with `docker run --runtime=shoal
// --network=none`, observed the way a docker user would (output, exit codes, logs, exec, stop,
// inspect) plus the host's view (cgroup files, processes, mounts, runtime state).
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/file.h"
#include "gtest/gtest.h"
#include "tests/e2e/docker/docker_fixture.h"

namespace shoal::testing {
namespace {

class DockerTest : public DockerFixture {
 protected:
  std::string MemoryLimitFile(const std::string& id) {
    if (access("/sys/fs/cgroup/memory", F_OK) == 0) {
      return absl::StrCat("/sys/fs/cgroup/memory/", dockerd_->cgroup_parent(), "/", id,
                          "/memory.limit_in_bytes");
    }
    return absl::StrCat("/sys/fs/cgroup/", dockerd_->cgroup_parent(), "/", id, "/memory.max");
  }
};

TEST_F(DockerTest, RunShowsTheProbesReportAndPropagatesExitCodes) {
  auto probe = Run("", "shoal-probe");
  ASSERT_EQ(probe.code, 0) << probe.err;
  EXPECT_TRUE(absl::StrContains(probe.out, "pid=1\n")) << probe.out;
  EXPECT_TRUE(absl::StrContains(probe.out, "CapEff=00000000a80425fb\n"))
      << probe.out;  // Docker's 14
  EXPECT_TRUE(absl::StrContains(probe.out, "Seccomp=2\n")) << probe.out;
  EXPECT_TRUE(absl::StrContains(probe.out, "mount=EPERM\n")) << probe.out;
  EXPECT_TRUE(absl::StrContains(probe.out, "proc_sys_write=EROFS\n")) << probe.out;

  auto r = Run("", "sh -c 'echo to-out; echo to-err >&2; exit 7'");
  EXPECT_EQ(r.code, 7) << r.err;
  EXPECT_EQ(r.out, "to-out\n");
  EXPECT_TRUE(absl::StrContains(r.err, "to-err")) << r.err;

  // docker's own sysctls for a private network namespace reach the container's namespace.
  auto sysctl = Run("", "cat /proc/sys/net/ipv4/ip_unprivileged_port_start");
  EXPECT_EQ(sysctl.out, "0\n") << sysctl.err;

  // What shoal-runtime does not support is refused with the config field named, through
  // docker's own error path.
  auto privileged = Run("--privileged", "true");
  EXPECT_NE(privileged.code, 0);
  EXPECT_TRUE(absl::StrContains(privileged.err, "linux.devices: ")) << privileged.err;
  auto host_pid = Run("--pid=host", "true");
  EXPECT_NE(host_pid.code, 0);
  EXPECT_TRUE(absl::StrContains(host_pid.err, "the host's pid namespace")) << host_pid.err;

  auto missing = Run("", "/nonexistent");
  EXPECT_NE(missing.code, 0);
  EXPECT_TRUE(absl::StrContains(missing.err, "/nonexistent")) << missing.err;
}

// docker -t / -it / exec -t: the pty master travels from shoal-runtime to containerd-shim over
// the --console-socket; the shim copies it to docker and resizes it.
TEST_F(DockerTest, TerminalsForRunAndExec) {
  auto tty = Run("-t", "tty");
  EXPECT_EQ(tty.code, 0) << tty.err;
  EXPECT_EQ(tty.out, "/dev/pts/0\r\n");  // a terminal's line ends
  auto code = Run("-t", "sh -c '[ -t 0 ] && [ -t 1 ] && exit 9'");
  EXPECT_EQ(code.code, 9) << code.err;

  // The docker CLI on a terminal of 30x100 (script(1) gives it one) sizes the container's
  // terminal (dockerd 20.10 / API 1.41 has no consoleSize at create: the CLI resizes right
  // after the start, so the container polls until its terminal has a size), and -i feeds
  // input through the pty.
  std::string docker = absl::StrCat("DOCKER_CONFIG=", dockerd_->dir(), "/cli ", Dockerd::kDocker,
                                    " -H unix://", dockerd_->dir(), "/docker.sock");
  auto in_pty = [&](const std::string& input, const std::string& args) {
    std::string out = dockerd_->dir() + "/pty.out";
    std::string cmd =
        absl::StrCat("printf '", input, "' | timeout 120 script -qec \"stty rows 30 cols 100; ",
                     docker, " ", args, "\" /dev/null >", out, " 2>&1");
    int status = system(cmd.c_str());
    auto text = base::ReadFile(out);
    unlink(out.c_str());
    return std::make_pair(WIFEXITED(status) ? WEXITSTATUS(status) : -1, text.ok() ? *text : "");
  };
  auto [size_code, size] = in_pty(
      "", absl::StrCat(
              "run --rm -t --runtime=shoal --network=none ", kImage,
              " sh -c 'until stty size 2>/dev/null | grep -q .; do sleep 0.05; done; stty size'"));
  EXPECT_EQ(size_code, 0) << size;
  EXPECT_TRUE(absl::StrContains(size, "30 100")) << size;
  auto [echo_code, echo] =
      in_pty("hello\\n", absl::StrCat("run --rm -it --runtime=shoal --network=none ", kImage,
                                      " sh -c 'read x; echo got-\\$x; exit 4'"));
  EXPECT_EQ(echo_code, 4) << echo;
  EXPECT_TRUE(absl::StrContains(echo, "got-hello")) << echo;

  // A detached container with a terminal: its output reaches docker logs; exec -t gets a second
  // pty of the same devpts; a container without a terminal gives exec -t the first one.
  std::string id = RunDetached("-t", "sh -c 'echo ready; exec sleep 1000'");
  EXPECT_TRUE(absl::StrContains(WaitForLogs(id, "ready"), "ready\r\n"));
  auto exec = D("exec -t " + id + " sh -c 'tty; [ -t 0 ] && echo in-tty; exit 5'");
  EXPECT_EQ(exec.code, 5) << exec.err;
  EXPECT_EQ(exec.out, "/dev/pts/1\r\nin-tty\r\n");
  // Resize through the API (what a docker CLI on a terminal sends): the shim resizes the pty
  // master it received from shoal-runtime; PID 1's terminal shows it.
  auto resize = absl::StrCat("curl -sf -X POST --unix-socket ", dockerd_->dir(),
                             "/docker.sock 'http://d/containers/", id, "/resize?h=41&w=131'");
  EXPECT_EQ(system(resize.c_str()), 0) << resize;
  auto size1 = D("exec " + id + " stty -F /dev/pts/0 size");
  EXPECT_EQ(size1.out, "41 131\n") << size1.err;
  std::string plain = RunDetached("", "sleep 1000");
  exec = D("exec -t " + plain + " tty");
  EXPECT_EQ(exec.code, 0) << exec.err;
  EXPECT_EQ(exec.out, "/dev/pts/0\r\n");
  // docker exec -it with input, under a terminal.
  auto [exec_code, exec_out] =
      in_pty("abc\\n", "exec -it " + plain + " sh -c 'read x; echo exec-got-\\$x'");
  EXPECT_EQ(exec_code, 0) << exec_out;
  EXPECT_TRUE(absl::StrContains(exec_out, "exec-got-abc")) << exec_out;
}

TEST_F(DockerTest, StopHonoursTheGracePeriod) {
  // Handles SIGTERM: docker stop waits for it; the exit code is the container's own.
  std::string graceful = RunDetached(
      "",
      "sh -c 'trap \"echo got-term; sleep 1; echo cleaned-up; exit 3\" TERM; echo ready; "
      "while true; do sleep 0.1; done'");
  ASSERT_TRUE(absl::StrContains(WaitForLogs(graceful, "ready"), "ready"));
  auto stop = D("stop -t 60 " + graceful);
  EXPECT_EQ(stop.code, 0) << stop.err;
  EXPECT_EQ(Inspect(graceful, "{{.State.ExitCode}}"), "3");
  EXPECT_TRUE(absl::StrContains(WaitForLogs(graceful, "cleaned-up"), "got-term\ncleaned-up"));

  // Ignores SIGTERM: killed once the grace period is over, not before.
  std::string stubborn =
      RunDetached("", "sh -c 'trap \"\" TERM; echo ready; while true; do sleep 0.1; done'");
  ASSERT_TRUE(absl::StrContains(WaitForLogs(stubborn, "ready"), "ready"));
  absl::Time begin = absl::Now();
  stop = D("stop -t 2 " + stubborn);
  absl::Duration took = absl::Now() - begin;
  EXPECT_EQ(stop.code, 0) << stop.err;
  EXPECT_GE(took, absl::Seconds(2));
  EXPECT_EQ(Inspect(stubborn, "{{.State.ExitCode}}"), "137");
  EXPECT_EQ(Inspect(stubborn, "{{.State.Running}}"), "false");

  // docker kill: PID 1 dies of SIGKILL, reported as 128 + 9.
  std::string killed = RunDetached("", "sleep 1000");
  auto kill = D("kill " + killed);
  EXPECT_EQ(kill.code, 0) << kill.err;
  EXPECT_EQ(D("wait " + killed).out, "137\n");
}

TEST_F(DockerTest, ExecJoinsTheContainerAndLogsShowItsOutput) {
  std::string id = RunDetached("--name shdk-exec",
                               "sh -c 'echo to-stdout; echo to-stderr >&2; exec sleep 1000'");
  std::string logs = WaitForLogs(id, "to-stderr");
  EXPECT_TRUE(absl::StrContains(logs, "to-stdout")) << logs;
  EXPECT_TRUE(absl::StrContains(logs, "to-stderr")) << logs;
  auto split = D("logs " + id);
  EXPECT_EQ(split.out, "to-stdout\n");  // streams stay apart
  EXPECT_EQ(split.err, "to-stderr\n");

  auto r = D("exec shdk-exec sh -c 'echo exec-$(hostname); exit 4'");
  EXPECT_EQ(r.code, 4) << r.err;
  EXPECT_EQ(r.out, absl::StrCat("exec-", id.substr(0, 12), "\n"));
  // Same pid/net/mnt namespaces and cgroup as PID 1, same seccomp and capabilities.
  r =
      D("exec shdk-exec sh -c 'for n in pid net mnt ipc uts; do [ $(readlink /proc/1/ns/$n) = "
        "$(readlink /proc/self/ns/$n) ] || echo differs-$n; done; "
        "[ \"$(cat /proc/1/cgroup)\" = \"$(cat /proc/self/cgroup)\" ] || echo differs-cgroup; "
        "grep -E \"^(Seccomp|CapEff):\" /proc/self/status'");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "CapEff:\t00000000a80425fb\nSeccomp:\t2\n");
  auto top = D("top shdk-exec");
  EXPECT_EQ(top.code, 0) << top.err;
  EXPECT_TRUE(absl::StrContains(top.out, "sleep 1000")) << top.out;
}

TEST_F(DockerTest, MemoryLimitIsInTheContainersCgroup) {
  auto probe = Run("-m 64m --pids-limit 50", "shoal-probe");
  ASSERT_EQ(probe.code, 0) << probe.err;
  EXPECT_TRUE(absl::StrContains(probe.out, "cgroup_memory/memory.limit_in_bytes=67108864\n") ||
              absl::StrContains(probe.out, "memory.max=67108864\n"))
      << probe.out;
  EXPECT_TRUE(absl::StrContains(probe.out, "pids.max=50\n")) << probe.out;

  std::string id = RunDetached("-m 32m", "sleep 1000");
  auto limit = base::ReadFile(MemoryLimitFile(id));
  ASSERT_TRUE(limit.ok()) << limit.status();
  EXPECT_EQ(*limit, "33554432\n");
  // docker stats (containerd-shim reads the cgroup of PID 1) shows the limit.
  auto stats = D("stats --no-stream --format '{{.MemUsage}}' " + id);
  EXPECT_EQ(stats.code, 0) << stats.err;
  EXPECT_TRUE(absl::StrContains(stats.out, "/ 32MiB")) << stats.out;
  std::string pid = Inspect(id, "{{.State.Pid}}");
  auto cgroup = base::ReadFile("/proc/" + pid + "/cgroup");
  ASSERT_TRUE(cgroup.ok());
  EXPECT_TRUE(absl::StrContains(*cgroup, absl::StrCat("/", dockerd_->cgroup_parent(), "/", id)))
      << *cgroup;

  // Allocating past the limit: OOM-killed, and docker (containerd-shim) sees it as such.
  auto oom = D(absl::StrCat("run --name shdk-oom --runtime=shoal --network=none -m 16m ", kImage,
                            " sh -c 'x=$(head -c 100000000 /dev/zero | tr \"\\000\" a); echo no'"));
  EXPECT_EQ(oom.code, 137) << oom.err;
  EXPECT_EQ(Inspect("shdk-oom", "{{.State.OOMKilled}}"), "true");
}

// Common `docker run` options become config.json fields shoal-runtime honours.
TEST_F(DockerTest, RunOptionsReachTheContainer) {
  std::string vol = dockerd_->dir() + "/vol";
  std::filesystem::create_directories(vol);
  ASSERT_TRUE(base::WriteFileAtomic(vol + "/in.txt", "from-host\n").ok());
  auto r = Run(absl::StrCat("--read-only --tmpfs /scratch -v ", vol, ":/vol -u 65534:65534 ",
                            "-w /vol -e GREETING=hi --hostname shdk-host --cap-drop ALL "
                            "--init --ulimit nofile=123:456"),
               "sh -c 'cat in.txt; echo $GREETING $(hostname) $(id -u):$(id -g) $(pwd); "
               "touch /x 2>/dev/null || echo rootfs-ro; touch /scratch/y && echo tmpfs-rw; "
               "grep CapEff /proc/self/status; ulimit -n; ulimit -Hn; cat /proc/1/comm'");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out,
            "from-host\nhi shdk-host 65534:65534 /vol\nrootfs-ro\ntmpfs-rw\n"
            "CapEff:\t0000000000000000\n123\n456\ndocker-init\n")
      << r.err;

  // docker restart: delete + create again under the same id.
  std::string id = RunDetached("", "sh -c 'echo boot; exec sleep 1000'");
  ASSERT_TRUE(absl::StrContains(WaitForLogs(id, "boot"), "boot"));
  auto restart = D("restart -t 1 " + id);
  EXPECT_EQ(restart.code, 0) << restart.err;
  EXPECT_TRUE(absl::StrContains(WaitForLogs(id, "boot\nboot"), "boot\nboot"));
  EXPECT_EQ(Inspect(id, "{{.State.Running}}"), "true");
  EXPECT_EQ(D("exec " + id + " true").code, 0);
}

TEST_F(DockerTest, RmForceLeavesNoProcessCgroupMountOrState) {
  std::vector<std::string> mounts_before = dockerd_->MountsUnderDir();
  std::string id = RunDetached("", "sh -c 'sleep 1000 & exec sleep 1001'");
  pid_t pid = std::stoi(Inspect(id, "{{.State.Pid}}"));
  ASSERT_GT(pid, 0);
  auto state = base::ReadFile(dockerd_->RuntimeStateDir(id) + "/state.json");
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_TRUE(absl::StrContains(*state, "\"start_time\"")) << *state;  // shoal-runtime's
  EXPECT_FALSE(dockerd_->CgroupLeaves().empty());
  auto rm = D("rm -f " + id);
  ASSERT_EQ(rm.code, 0) << rm.err;
  absl::Time deadline = absl::Now() + absl::Seconds(30);
  while ((kill(pid, 0) == 0 || !Dockerd::ProcessesMatching(id).empty()) && absl::Now() < deadline) {
    usleep(20000);
  }
  EXPECT_NE(kill(pid, 0), 0) << "container PID 1 survived docker rm -f";
  EXPECT_TRUE(Dockerd::ProcessesMatching(id).empty());  // shim, holder
  EXPECT_TRUE(Dockerd::ProcessesMatching("sleep 1000").empty());
  EXPECT_TRUE(dockerd_->CgroupLeaves().empty());
  EXPECT_FALSE(std::filesystem::exists(dockerd_->RuntimeStateDir(id)));
  EXPECT_EQ(dockerd_->MountsUnderDir(), mounts_before);
}

}  // namespace
}  // namespace shoal::testing
