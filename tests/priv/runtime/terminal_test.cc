// Terminals (ProcessSpec::terminal): PID 1 and exec'd processes get a pty of the container's own
// devpts as controlling terminal; the master comes back to the caller; window size at start and
// by resize; the monitor logs terminal output; shoal-runtime hands the master over an OCI
// --console-socket in the format containerd-shim reads (one message, one SCM_RIGHTS fd, name as
// data), received here by a small receiver.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <tuple>

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
  ContainerSpec spec =
      Spec({"sh", "-c",
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
  ProcessSpec size;
  size.args = {"stty", "-F", "/dev/pts/0", "size"};
  auto sized = ExecOutput(**c, size);
  ASSERT_TRUE(sized.ok()) << sized.status();
  EXPECT_EQ(sized->out, "40 120\n");
  EXPECT_EQ(sized->exit.code, 0);

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

// With a user namespace: devpts is mounted by the mapped root (gid 5 mapped), the slave is
// chowned to the process's (container) uid, and exec gets a pty too.
TEST_F(TerminalTest, InAUserNamespace) {
  constexpr uint32_t kHostBase = 100000;
  std::string image = absl::StrCat("/tmp/shoaltest-rt-ttyuserns-", getpid());
  std::string cmd = absl::StrCat("cp -a ", image_, " ", image, " && chown -R ", kHostBase, ":",
                                 kHostBase, " ", image);
  struct RemoveImage {
    std::string path;
    ~RemoveImage() { std::filesystem::remove_all(path); }  // also after a failed assertion
  } remove_image{image};
  ASSERT_EQ(system(cmd.c_str()), 0) << cmd;
  ContainerSpec spec = Spec({"sh", "-c", "tty; stty size; ls -ln /dev/pts/0; exec sleep 1000"});
  spec.rootfs = image;
  spec.uid_mappings = {{0, kHostBase, 65536}};
  spec.gid_mappings = {{0, kHostBase, 65536}};
  spec.process.uid = 1000;
  spec.process.gid = 1000;
  spec.process.terminal = true;
  spec.process.terminal_rows = 12;
  spec.process.terminal_cols = 34;
  auto c = runtime_->Run(spec, Stdio{});
  ASSERT_TRUE(c.ok()) << c.status();
  base::UniqueFd master = (*c)->TakeConsole();
  std::string out = ReadMaster(master.get(), "/dev/pts/0\r\n");
  while (out.find("/dev/pts/0\r\n", out.find("crw")) == std::string::npos) {  // the ls line
    std::string more = ReadMaster(master.get(), "/dev/pts/0\r\n");
    if (more.empty()) break;
    out += more;
  }
  EXPECT_TRUE(absl::StartsWith(out, "/dev/pts/0\r\n12 34\r\ncrw--w----")) << out;
  EXPECT_TRUE(absl::StrContains(out, " 1000 ")) << out;
  ProcessSpec tty;
  tty.args = {"tty"};
  tty.uid = 1000;
  tty.gid = 1000;
  tty.terminal = true;
  auto proc = (*c)->Exec(tty, Stdio{});
  ASSERT_TRUE(proc.ok()) << proc.status();
  base::UniqueFd exec_master = (*proc)->TakeConsole();
  EXPECT_EQ(ReadMaster(exec_master.get()), "/dev/pts/1\r\n");
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
  struct Cleanup {  // also after a failed assertion: no monitor, container or directory left
    MonitorClient* client;
    std::string dir;
    ~Cleanup() {
      auto st = client->State();
      if (st.ok() && st->status != "stopped") {
        (void)client->Stop(SIGKILL, absl::ZeroDuration());
        (void)client->Wait(absl::Seconds(10));
      }
      std::filesystem::remove_all(dir);
    }
  } cleanup{client->get(), state_root};
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
}

// shoal-runtime with process.terminal: the OCI --console-socket protocol as containerd-shim's
// go-runc reads it (accept one connection; one recvmsg with a 4096-byte name buffer and room
// for exactly one fd; exactly one SCM_RIGHTS message carrying exactly one fd).
class ConsoleSocketTest : public OciCliTest {
 protected:
  void SetUp() override {
    OciCliTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    socket_path_ = dir_ + "/console.sock";
    listen_.Reset(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr = {};
    addr.sun_family = AF_UNIX;
    memcpy(addr.sun_path, socket_path_.c_str(), socket_path_.size() + 1);
    ASSERT_EQ(bind(listen_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    ASSERT_EQ(listen(listen_.get(), 4), 0);
  }
  void TearDown() override {
    listen_.Reset();
    OciCliTest::TearDown();
  }
  // Config() for `process` with hostname "tty".
  void WriteConfig(const nlohmann::json& process) {
    nlohmann::json c = Config(process);
    c["hostname"] = "tty";
    WriteBundleConfig(c);
  }
  // The receiving end, checked like go-runc's ReceiveMaster. Returns the master.
  base::UniqueFd Receive() {
    struct pollfd p = {listen_.get(), POLLIN, 0};
    if (poll(&p, 1, 30000) != 1) {
      ADD_FAILURE() << "nothing connected to the console socket";
      return base::UniqueFd();
    }
    base::UniqueFd conn(accept4(listen_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    EXPECT_TRUE(conn);
    char name[4096];
    alignas(struct cmsghdr) char oob[CMSG_SPACE(sizeof(int))];
    struct iovec iov = {name, sizeof(name)};
    struct msghdr msg = {};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = oob;
    msg.msg_controllen = sizeof(oob);
    ssize_t n = recvmsg(conn.get(), &msg, MSG_CMSG_CLOEXEC);
    EXPECT_GT(n, 0);
    EXPECT_LT(n, static_cast<ssize_t>(sizeof(name)));  // go-runc: "name too long" otherwise
    EXPECT_EQ(msg.msg_flags & (MSG_CTRUNC | MSG_TRUNC), 0);
    EXPECT_EQ(msg.msg_controllen, sizeof(oob));  // go-runc compares oobn with len(oob)
    struct cmsghdr* c = CMSG_FIRSTHDR(&msg);
    if (!c || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS ||
        c->cmsg_len != CMSG_LEN(sizeof(int))) {
      ADD_FAILURE() << "not exactly one SCM_RIGHTS fd";
      return base::UniqueFd();
    }
    EXPECT_EQ(CMSG_NXTHDR(&msg, c), nullptr);
    int fd;
    memcpy(&fd, CMSG_DATA(c), sizeof(int));
    base::UniqueFd master(fd);
    name_ = std::string(name, n > 0 ? n : 0);
    // Nothing else follows on the connection.
    char extra;
    EXPECT_EQ(read(conn.get(), &extra, 1), 0);
    return master;
  }
  std::string socket_path_, name_;
  base::UniqueFd listen_;
};

TEST_F(ConsoleSocketTest, CreateSendsTheMasterAndStartRunsOnThePty) {
  WriteConfig(
      {{"args", {"sh", "-c", "tty; [ -t 0 ] && echo in-tty; stty size; read x; echo got-$x"}},
       {"terminal", true},
       {"consoleSize", {{"height", 25}, {"width", 90}}}});
  auto [code, out] = Cli("create --console-socket " + socket_path_ + " t1");
  ASSERT_EQ(code, 0) << out;
  base::UniqueFd master = Receive();
  ASSERT_TRUE(master);
  EXPECT_EQ(name_, "/dev/ptmx");
  EXPECT_EQ(Status("t1"), "created");
  ASSERT_EQ(Cli("start t1").first, 0);
  std::string tty = ReadMaster(master.get(), "25 90\r\n");
  EXPECT_EQ(tty, "/dev/pts/0\r\nin-tty\r\n25 90\r\n");
  ASSERT_TRUE(base::WriteAll(master.get(), "typed\n", "pty").ok());
  EXPECT_TRUE(absl::StrContains(ReadMaster(master.get()), "got-typed")) << tty;
  AwaitStopped("t1");
  EXPECT_EQ(Cli("delete t1").first, 0);
}

TEST_F(ConsoleSocketTest, RunAndExecSendTheirMasters) {
  WriteConfig({{"args", {"sh", "-c", "echo from-run"}}, {"terminal", true}});
  auto [code, out] = Cli("run --console-socket " + socket_path_ + " r1");
  EXPECT_EQ(code, 0) << out;
  base::UniqueFd master = Receive();
  ASSERT_TRUE(master);
  EXPECT_EQ(ReadMaster(master.get()), "from-run\r\n");  // buffered output survives the exit

  // exec --tty into a container without a terminal: the first pty of its devpts.
  WriteConfig({{"args", {"sleep", "1000"}}});
  ASSERT_EQ(Cli("create e1").first, 0);
  ASSERT_EQ(Cli("start e1").first, 0);
  std::tie(code, out) = Cli(absl::StrCat("exec --tty --console-socket ", socket_path_,
                                         " --detach --pid-file ", dir_, "/exec.pid e1 tty"));
  ASSERT_EQ(code, 0) << out;
  master = Receive();
  ASSERT_TRUE(master);
  EXPECT_EQ(ReadMaster(master.get()), "/dev/pts/0\r\n");
  EXPECT_TRUE(base::ReadFile(dir_ + "/exec.pid").ok());
  // exec --process with process.terminal and consoleSize (what containerd-shim runs).
  nlohmann::json process = {{"args", {"stty", "size"}},
                            {"terminal", true},
                            {"consoleSize", {{"height", 7}, {"width", 8}}},
                            {"env", {"PATH=/bin"}},
                            {"cwd", "/"}};
  ASSERT_TRUE(base::WriteFileAtomic(dir_ + "/process.json", process.dump()).ok());
  std::tie(code, out) = Cli(absl::StrCat("exec --process ", dir_, "/process.json --console-socket ",
                                         socket_path_, " --detach e1"));
  ASSERT_EQ(code, 0) << out;
  master = Receive();
  ASSERT_TRUE(master);
  EXPECT_EQ(ReadMaster(master.get()), "7 8\r\n");
  Reap();
  EXPECT_EQ(Cli("delete --force e1").first, 0);
}

TEST_F(ConsoleSocketTest, ForegroundRunWithoutSocketRelaysThePty) {
  WriteConfig({{"args", {"sh", "-c", "tty; echo relayed; exit 3"}}, {"terminal", true}});
  auto [code, out] = Cli("run r2");
  EXPECT_EQ(code, 3) << out;
  EXPECT_EQ(out, "/dev/pts/0\r\nrelayed\r\n");
}

TEST_F(ConsoleSocketTest, ErrorsNameTheFlagOrFieldAndLeaveNothing) {
  WriteConfig({{"args", {"true"}}, {"terminal", true}});
  auto [code, out] = Cli("create c1");
  EXPECT_NE(code, 0);
  EXPECT_TRUE(absl::StrContains(out, "process.terminal: true needs --console-socket")) << out;
  std::tie(code, out) = Cli("create --console-socket " + dir_ + "/missing.sock c1");
  EXPECT_NE(code, 0);
  EXPECT_TRUE(absl::StrContains(out, "--console-socket: " + dir_ + "/missing.sock")) << out;
  WriteConfig({{"args", {"true"}}});
  std::tie(code, out) = Cli("create --console-socket " + socket_path_ + " c1");
  EXPECT_NE(code, 0);
  EXPECT_TRUE(absl::StrContains(out, "--console-socket: given but process.terminal is false"))
      << out;
  WriteConfig({{"args", {"true"}}, {"terminal", true}, {"consoleSize", {{"height", -1}}}});
  std::tie(code, out) = Cli("create --console-socket " + socket_path_ + " c1");
  EXPECT_NE(code, 0);
  EXPECT_TRUE(absl::StrContains(out, "process.consoleSize.height: ")) << out;
  WriteConfig({{"args", {"true"}}, {"terminal", "yes"}});
  std::tie(code, out) = Cli("create --console-socket " + socket_path_ + " c1");
  EXPECT_NE(code, 0);
  EXPECT_TRUE(absl::StrContains(out, "process.terminal: must be a boolean")) << out;
  EXPECT_NE(Cli("state c1").first, 0);  // nothing was created
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/root/c1"));

  WriteConfig({{"args", {"sleep", "1000"}}});
  ASSERT_EQ(Cli("create x1").first, 0);
  ASSERT_EQ(Cli("start x1").first, 0);
  std::tie(code, out) = Cli("exec --console-socket " + socket_path_ + " --detach x1 true");
  EXPECT_NE(code, 0);
  EXPECT_TRUE(absl::StrContains(out, "--console-socket: given but process.terminal is false"))
      << out;
  std::tie(code, out) = Cli("exec --tty --detach x1 true");
  EXPECT_NE(code, 0);
  EXPECT_TRUE(absl::StrContains(out, "process.terminal: true needs --console-socket")) << out;
  EXPECT_EQ(Cli("delete --force x1").first, 0);
}

}  // namespace
}  // namespace shoal::runtime::testing
