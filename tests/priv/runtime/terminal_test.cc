// Terminals (ProcessSpec::terminal): PID 1 and exec'd processes get a pty of the container's own
// devpts as controlling terminal; the master comes back to the caller; window size at start and
// by resize; the monitor logs terminal output; shoal-runtime hands the master over an OCI
// --console-socket in the format containerd-shim reads (one message, one SCM_RIGHTS fd, name as
// data), received here by a small receiver.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/file.h"
#include "nlohmann/json.hpp"
#include "runtime/monitor/client.h"
#include "runtime/terminal.h"
#include "tests/priv/runtime/fixture.h"

namespace shoal::runtime::testing {
namespace {

// Reads a pty master until `until` appears (empty: until EIO/EOF, i.e. every slave closed) or
// 30 s pass.
std::string ReadMaster(int master, const std::string& until = "") {
  std::string out;
  absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (absl::Now() < deadline) {
    if (!until.empty() && absl::StrContains(out, until)) break;
    struct pollfd p = {master, POLLIN, 0};
    int rc = poll(&p, 1, 1000);
    if (rc < 0 && errno == EINTR) continue;
    if (rc <= 0) continue;
    char buf[4096];
    ssize_t n = read(master, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // EIO: the slave side is gone
    out.append(buf, n);
  }
  return out;
}

class TerminalTest : public RuntimeTest {};

TEST_F(TerminalTest, Pid1GetsAPtyOfItsOwnDevptsAsControllingTerminal) {
  ContainerSpec spec = Spec({"sh", "-c",
                             "tty; [ -t 0 ] && echo in-tty; [ -t 1 ] && echo out-tty; "
                             "[ -t 2 ] && echo err-tty; stty size; readlink /proc/self/fd/0; "
                             "grep -c . /proc/self/stat >/dev/null && cut -d' ' -f7 /proc/self/stat; "
                             "[ /dev/console -ef /dev/pts/0 ] && echo console-is-pty; "
                             "ls -ln /dev/pts/0"});
  spec.process.terminal = true;
  spec.process.terminal_rows = 33;
  spec.process.terminal_cols = 101;
  spec.process.uid = 1000;
  auto c = runtime_->Create(spec, Stdio{});
  ASSERT_TRUE(c.ok()) << c.status();
  base::UniqueFd master = (*c)->TakeConsole();
  ASSERT_TRUE(master);
  EXPECT_EQ((*c)->console(), -1);
  ASSERT_TRUE((*c)->Start().ok());
  std::string out = ReadMaster(master.get());
  auto exit = (*c)->Wait();
  ASSERT_TRUE(exit.ok());
  EXPECT_EQ(exit->code, 0) << out;
  // Output through the pty: "\n" became "\r\n" (ONLCR), as on any terminal.
  EXPECT_TRUE(absl::StartsWith(out, "/dev/pts/0\r\n")) << out;
  EXPECT_TRUE(absl::StrContains(out, "in-tty\r\nout-tty\r\nerr-tty\r\n")) << out;
  EXPECT_TRUE(absl::StrContains(out, "33 101\r\n")) << out;
  // tty_nr (field 7) of the shell: major 136 (pts), minor 0 = /dev/pts/0 is its controlling
  // terminal: (136 << 8) | 0 = 34816.
  EXPECT_TRUE(absl::StrContains(out, "\r\n34816\r\n")) << out;
  EXPECT_TRUE(absl::StrContains(out, "console-is-pty")) << out;
  // The slave belongs to the process's user, group tty (5).
  EXPECT_TRUE(absl::StrContains(out, " 1000 ")) << out;
  EXPECT_TRUE(absl::StrContains(out, " 5 ")) << out;
  EXPECT_TRUE((*c)->Delete().ok());
}

TEST_F(TerminalTest, InputThroughTheMasterAndRunOneRoundTrip) {
  ContainerSpec spec = Spec({"sh", "-c", "echo ready; read line; echo got:$line"});
  spec.process.terminal = true;
  auto c = runtime_->Run(spec, Stdio{});
  ASSERT_TRUE(c.ok()) << c.status();
  base::UniqueFd master = (*c)->TakeConsole();
  ASSERT_TRUE(master);
  std::string out = ReadMaster(master.get(), "ready");
  ASSERT_TRUE(absl::StrContains(out, "ready")) << out;
  ASSERT_TRUE(base::WriteAll(master.get(), "hello\n", "pty").ok());
  out += ReadMaster(master.get());
  EXPECT_TRUE(absl::StrContains(out, "got:hello")) << out;
  auto exit = (*c)->Wait();
  ASSERT_TRUE(exit.ok());
  EXPECT_EQ(exit->code, 0);
  EXPECT_TRUE((*c)->Delete().ok());
}

TEST_F(TerminalTest, ResizeIsSeenInsideAndExecGetsItsOwnPty) {
  ContainerSpec spec = Spec({"sh", "-c", "echo ready; exec sleep 1000"});
  spec.process.terminal = true;
  spec.process.terminal_rows = 10;
  spec.process.terminal_cols = 20;
  auto c = runtime_->Run(spec, Stdio{});
  ASSERT_TRUE(c.ok()) << c.status();
  base::UniqueFd master = (*c)->TakeConsole();
  ASSERT_TRUE(absl::StrContains(ReadMaster(master.get(), "ready"), "ready"));
  ASSERT_TRUE(ResizeTerminal(master.get(), 40, 120).ok());

  // A plain exec reads PID 1's terminal size.
  int p[2];
  ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
  base::UniqueFd r(p[0]), w(p[1]);
  ProcessSpec size;
  size.args = {"stty", "-F", "/dev/pts/0", "size"};
  auto proc = (*c)->Exec(size, Stdio{-1, w.get(), w.get()});
  ASSERT_TRUE(proc.ok()) << proc.status();
  w.Reset();
  EXPECT_EQ(ReadAll(r.get()), "40 120\n");
  EXPECT_EQ((*proc)->Wait()->code, 0);

  // An exec with its own terminal: a second pty of the same devpts.
  ProcessSpec tty;
  tty.args = {"sh", "-c", "tty; [ -t 0 ] && echo in-tty; stty size; exit 3"};
  tty.terminal = true;
  tty.terminal_rows = 21;
  tty.terminal_cols = 77;
  auto tproc = (*c)->Exec(tty, Stdio{});
  ASSERT_TRUE(tproc.ok()) << tproc.status();
  base::UniqueFd tmaster = (*tproc)->TakeConsole();
  ASSERT_TRUE(tmaster);
  std::string out = ReadMaster(tmaster.get());
  EXPECT_EQ(out, "/dev/pts/1\r\nin-tty\r\n21 77\r\n");
  EXPECT_EQ((*tproc)->Wait()->code, 3);
  EXPECT_TRUE((*c)->Delete().ok());
}

TEST_F(TerminalTest, ExecTerminalInAContainerWithoutOne) {
  auto c = runtime_->Run(Spec({"sleep", "1000"}), Stdio{});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ((*c)->console(), -1);
  ProcessSpec tty;
  tty.args = {"tty"};
  tty.terminal = true;
  auto proc = (*c)->Exec(tty, Stdio{});
  ASSERT_TRUE(proc.ok()) << proc.status();
  base::UniqueFd master = (*proc)->TakeConsole();
  EXPECT_EQ(ReadMaster(master.get()), "/dev/pts/0\r\n");
  EXPECT_EQ((*proc)->Wait()->code, 0);
  EXPECT_TRUE((*c)->Delete().ok());
}

// The monitor (the agent's path) holds the master and logs the output as "stdout"; resize
// goes through its socket.
TEST_F(TerminalTest, MonitorLogsTerminalOutputAndResizes) {
  std::string state_root = absl::StrCat("/tmp/shoaltest-rt-ttystate-", getpid());
  ContainerSpec spec = Spec({"sh", "-c", "tty; stty size"});
  spec.process.terminal = true;
  spec.process.terminal_rows = 5;
  spec.process.terminal_cols = 6;
  LaunchOptions o;
  o.monitor_path = SHOAL_MONITOR_PATH;
  o.state_dir = state_root + "/" + spec.id;
  o.cgroup.mode = features_.cgroup_mode;
  o.cgroup_parent = parent_;
  o.wait_for_start = true;
  auto client = MonitorClient::Launch(o, spec);
  ASSERT_TRUE(client.ok()) << client.status();
  EXPECT_TRUE((*client)->Resize(44, 132).ok());
  ASSERT_TRUE((*client)->Start().ok());
  auto exit = (*client)->Wait(absl::Seconds(30));
  ASSERT_TRUE(exit.ok()) << exit.status();
  EXPECT_EQ(exit->code, 0);
  auto log = base::ReadFile(o.state_dir + "/container.log");
  ASSERT_TRUE(log.ok());
  std::string text;
  for (absl::string_view line : absl::StrSplit(*log, '\n', absl::SkipEmpty())) {
    auto j = nlohmann::json::parse(line);
    EXPECT_EQ(j["stream"], "stdout") << line;
    text += j["log"].get<std::string>();
  }
  EXPECT_TRUE(absl::StrContains(text, "/dev/pts/0")) << *log;
  EXPECT_TRUE(absl::StrContains(text, "44 132")) << *log;
  std::filesystem::remove_all(state_root);
}

}  // namespace
}  // namespace shoal::runtime::testing
