// shoal-monitor: JSON logs with rotation, exit status and OOM recorded in the state directory,
// and a container that survives the death of its controller and is re-adopted.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/file.h"
#include "nlohmann/json.hpp"
#include "runtime/monitor/client.h"
#include "runtime/monitor/monitor.h"
#include "tests/priv/runtime/fixture.h"

namespace shoal::runtime::testing {
namespace {

class MonitorTest : public RuntimeTest {
 protected:
  void SetUp() override {
    RuntimeTest::SetUp();
    state_root_ = absl::StrCat("/tmp/shoaltest-rt-state-", getpid());
  }
  void TearDown() override {
    // Kill any monitor a failed test left running, then let the base check the cgroups.
    for (auto& client : clients_) {
      auto s = client->State();
      if (s.ok() && s->status != "stopped") {
        (void)client->Stop(SIGKILL, absl::ZeroDuration());
        (void)client->Wait(absl::Seconds(10));
      }
    }
    std::error_code ec;
    std::filesystem::remove_all(state_root_, ec);
    EXPECT_FALSE(ec) << ec.message();
    RuntimeTest::TearDown();
  }
  LaunchOptions Options(const std::string& id) {
    LaunchOptions o;
    o.monitor_path = SHOAL_MONITOR_PATH;
    o.state_dir = state_root_ + "/" + id;
    o.cgroup.mode = features_.cgroup_mode;
    o.cgroup_parent = parent_;
    return o;
  }
  absl::StatusOr<MonitorClient*> Launch(const ContainerSpec& spec, LaunchOptions o) {
    auto c = MonitorClient::Launch(o, spec);
    if (!c.ok()) return c.status();
    clients_.push_back(std::move(*c));
    return clients_.back().get();
  }
  // Parsed JSON log lines of the container.
  static std::vector<nlohmann::json> Logs(const std::string& file) {
    std::vector<nlohmann::json> out;
    auto text = base::ReadFile(file);
    if (!text.ok()) return out;
    for (absl::string_view line : absl::StrSplit(*text, '\n', absl::SkipEmpty())) {
      out.push_back(nlohmann::json::parse(line));
    }
    return out;
  }
  std::string state_root_;
  std::vector<std::unique_ptr<MonitorClient>> clients_;
};

TEST_F(MonitorTest, LogsStreamsAsJsonLinesAndRecordsExitCode) {
  ContainerSpec spec = Spec({"sh", "-c", "echo to-out; echo to-err >&2; exit 3"});
  auto c = Launch(spec, Options(spec.id));
  ASSERT_TRUE(c.ok()) << c.status();
  auto exit = (*c)->Wait(absl::Seconds(30));
  ASSERT_TRUE(exit.ok()) << exit.status();
  EXPECT_EQ(exit->code, 3);
  auto logs = Logs(LogFile((*c)->state_dir()));
  ASSERT_EQ(logs.size(), 2u);
  std::map<std::string, std::string> by_stream;
  for (const auto& l : logs) {
    by_stream[l["stream"]] = l["log"];
    EXPECT_TRUE(absl::EndsWith(std::string(l["time"]), "Z")) << l.dump();
  }
  EXPECT_EQ(by_stream["stdout"], "to-out\n");
  EXPECT_EQ(by_stream["stderr"], "to-err\n");
  auto state = (*c)->State();
  ASSERT_TRUE(state.ok());
  EXPECT_EQ(state->status, "stopped");
  auto exit_json = base::ReadFile(ExitFile((*c)->state_dir()));
  ASSERT_TRUE(exit_json.ok());
  EXPECT_EQ(nlohmann::json::parse(*exit_json)["code"], 3);
}

TEST_F(MonitorTest, RecordsOomKill) {
  ContainerSpec spec = Spec({"shoal-probe", "alloc", "64"});
  spec.resources.memory_limit = 16 << 20;
  spec.resources.memory_swap = 16 << 20;
  auto c = Launch(spec, Options(spec.id));
  ASSERT_TRUE(c.ok()) << c.status();
  auto exit = (*c)->Wait(absl::Seconds(30));
  ASSERT_TRUE(exit.ok()) << exit.status();
  EXPECT_TRUE(exit->oom_killed);
  EXPECT_EQ(exit->code, 137);
  auto exit_json = base::ReadFile(ExitFile((*c)->state_dir()));
  ASSERT_TRUE(exit_json.ok());
  EXPECT_EQ(nlohmann::json::parse(*exit_json)["oom_killed"], true);
}

TEST_F(MonitorTest, RotatesLogsBySize) {
  ContainerSpec spec =
      Spec({"sh", "-c", "i=0; while [ $i -lt 300 ]; do echo line-$i-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx;"
                        " i=$((i+1)); done"});
  LaunchOptions o = Options(spec.id);
  o.log_max_size = 4096;
  o.log_max_files = 3;
  auto c = Launch(spec, o);
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_TRUE((*c)->Wait(absl::Seconds(30)).ok());
  std::string log = LogFile((*c)->state_dir());
  for (const std::string& f : {log, log + ".1", log + ".2"}) {
    ASSERT_TRUE(std::filesystem::exists(f)) << f;
    EXPECT_LE(std::filesystem::file_size(f), 4096u) << f;
  }
  EXPECT_FALSE(std::filesystem::exists(log + ".3"));
  auto last = Logs(log);
  ASSERT_FALSE(last.empty());
  EXPECT_TRUE(absl::StartsWith(std::string(last.back()["log"]), "line-299-"));
}

TEST_F(MonitorTest, ContainerSurvivesControllerDeathAndIsReadopted) {
  ContainerSpec spec = Spec({"sh", "-c", "while true; do echo tick; sleep 0.05; done"});
  LaunchOptions o = Options(spec.id);
  // The controller is a separate process that launches the container and dies.
  pid_t controller = fork();
  if (controller == 0) {
    auto c = MonitorClient::Launch(o, spec);
    _exit(c.ok() ? 0 : 1);
  }
  int ws = 0;
  ASSERT_EQ(waitpid(controller, &ws, 0), controller);
  ASSERT_TRUE(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
  auto adopted = MonitorClient::Adopt(o.state_dir);
  ASSERT_TRUE(adopted.ok()) << adopted.status();
  clients_.push_back(std::move(*adopted));
  MonitorClient* c = clients_.back().get();
  auto state = c->State();
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->status, "running");
  EXPECT_EQ(kill(state->pid, 0), 0) << "container PID 1 is gone";
  // Logs keep flowing after the controller died: wait (with a deadline) for more lines.
  size_t before = Logs(LogFile(o.state_dir)).size();
  absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (Logs(LogFile(o.state_dir)).size() < before + 5 && absl::Now() < deadline) {
    usleep(20000);
  }
  EXPECT_GE(Logs(LogFile(o.state_dir)).size(), before + 5);
  // sh as PID 1 ignores SIGTERM: the monitor kills the cgroup after the grace period.
  ASSERT_TRUE(c->Stop(SIGTERM, absl::Milliseconds(200)).ok());
  auto exit = c->Wait(absl::Seconds(30));
  ASSERT_TRUE(exit.ok()) << exit.status();
  EXPECT_EQ(exit->signal, SIGKILL);
  EXPECT_EQ(exit->code, 137);
  EXPECT_FALSE(exit->oom_killed);
  EXPECT_NE(kill(state->pid, 0), 0);
}

TEST_F(MonitorTest, CreateThenStartAndSetupErrorsReachTheController) {
  ContainerSpec spec = Spec({"sh", "-c", "echo started"});
  LaunchOptions o = Options(spec.id);
  o.wait_for_start = true;
  auto c = Launch(spec, o);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ((*c)->State()->status, "created");
  EXPECT_TRUE(Logs(LogFile(o.state_dir)).empty());
  ASSERT_TRUE((*c)->Start().ok());
  ASSERT_TRUE((*c)->Wait(absl::Seconds(30)).ok());
  auto logs = Logs(LogFile(o.state_dir));
  ASSERT_EQ(logs.size(), 1u);
  EXPECT_EQ(logs[0]["log"], "started\n");

  ContainerSpec bad = Spec({"true"});
  bad.resources.cpuset_cpus = "999";  // valid syntax, rejected by the kernel in the monitor
  auto failed = MonitorClient::Launch(Options(bad.id), bad);
  EXPECT_FALSE(failed.ok());
  EXPECT_TRUE(absl::StrContains(failed.status().message(), "cpuset.cpus=999")) << failed.status();
}

}  // namespace
}  // namespace shoal::runtime::testing
