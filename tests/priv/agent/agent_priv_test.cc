// The worker agent against a real in-process manager, with real containers on this host.
// Every assertion about containers looks at the host (/proc, cgroup files, mountinfo), not at
// the agent's bookkeeping; task states are read from the manager's store.
#include <signal.h>
#include <sys/stat.h>

#include <filesystem>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/file.h"
#include "tests/priv/agent/fixture.h"

namespace shoal::agent::testing {
namespace {

class AgentPrivTest : public AgentTest {
 protected:
  // The container PID 1 of a running task, checked against the host: alive, in the task's own
  // cgroup, running `command`.
  pid_t CheckRunning(const api::Task& task, const std::string& command) {
    pid_t pid = task.status().container().pid();
    EXPECT_GT(pid, 0) << task.id();
    EXPECT_TRUE(ProcessAlive(pid)) << task.id();
    std::vector<pid_t> procs = CgroupProcs(task.id());
    EXPECT_NE(std::find(procs.begin(), procs.end(), pid), procs.end())
        << "pid " << pid << " not in the cgroup of task " << task.id();
    EXPECT_TRUE(absl::StrContains(Cmdline(pid), command)) << Cmdline(pid);
    return pid;
  }
};

TEST_F(AgentPrivTest, TwoReplicasRunAsRealContainersAndScaleToZeroLeavesNothing) {
  StartAgent();
  api::Service svc = CreateService("web", 2, {"sleep", "1000"});
  ASSERT_TRUE(WaitFor([&] { return RunningTasks(svc.id()).size() == 2; }))
      << "tasks never reached RUNNING; agent error: " << agent_->status().last_error;
  std::vector<api::Task> tasks = RunningTasks(svc.id());
  std::set<pid_t> pids;
  for (const auto& t : tasks) {
    pids.insert(CheckRunning(t, "sleep 1000"));
    EXPECT_EQ(t.status().container().container_id(), t.id());
  }
  EXPECT_EQ(pids.size(), 2u);
  std::vector<std::string> cgroups = ContainerCgroups();
  EXPECT_EQ(cgroups.size(), 2u);
  // The task's hostname and /etc files are the container's own.
  pid_t one = *pids.begin();
  auto hostname = base::ReadFile(absl::StrCat("/proc/", one, "/root/etc/hostname"));
  ASSERT_TRUE(hostname.ok());
  EXPECT_EQ(hostname->size(), 13u);  // 12 characters of the task id + newline
  // `lo` is up in the container's own network namespace (its sysfs shows that namespace).
  auto lo_flags = base::ReadFile(absl::StrCat("/proc/", one, "/root/sys/class/net/lo/flags"));
  ASSERT_TRUE(lo_flags.ok()) << lo_flags.status();
  EXPECT_EQ(*lo_flags, "0x9\n");  // IFF_UP | IFF_LOOPBACK

  Scale(svc.id(), 0);
  ASSERT_TRUE(WaitFor([&] { return ContainerCgroups().empty() && Tasks(svc.id()).empty(); }))
      << "containers or tasks left after scaling to 0: " << ContainerCgroups().size()
      << " cgroups, " << Tasks(svc.id()).size() << " tasks";
  for (pid_t pid : pids) EXPECT_FALSE(ProcessAlive(pid)) << pid;
  EXPECT_TRUE(MountsUnderDir().empty()) << MountsUnderDir().front();
  ASSERT_TRUE(WaitFor([&] {
    std::error_code ec;
    return std::filesystem::is_empty(dir_ + "/exec/containers", ec) &&
           std::filesystem::is_empty(dir_ + "/agent/containers", ec);
  })) << "container directories left behind";
}

TEST_F(AgentPrivTest, NonZeroExitFailsTheTaskWithItsCodeAndTheReplacementRuns) {
  // The first run leaves a mark on a bind-mounted host directory and exits 3; the
  // replacement finds the mark and keeps running.
  std::string shared = dir_ + "/shared";
  std::filesystem::create_directories(shared);
  StartAgent();
  api::Service svc = CreateService(
      "flaky", 1,
      {"sh", "-c", "if [ -e /m/mark ]; then exec sleep 1000; fi; touch /m/mark; exit 3"},
      [&](api::ServiceSpec& spec) {
        auto* m = spec.mutable_task()->mutable_container()->add_mounts();
        m->set_type(api::Mount::TYPE_BIND);
        m->set_source(shared);
        m->set_target("/m");
      });
  ASSERT_TRUE(WaitFor([&] {
    bool failed = false;
    for (const auto& t : Tasks(svc.id())) {
      if (t.status().state() == api::TASK_STATE_FAILED) failed = true;
    }
    return failed && RunningTasks(svc.id()).size() == 1;
  })) << "no FAILED task and running replacement; agent error: "
      << agent_->status().last_error;
  for (const auto& t : Tasks(svc.id())) {
    if (t.status().state() != api::TASK_STATE_FAILED) continue;
    EXPECT_EQ(t.status().container().exit_code(), 3);
    EXPECT_TRUE(absl::StrContains(t.status().err(), "non-zero exit (3)")) << t.status().err();
  }
  api::Task running = RunningTasks(svc.id()).front();
  CheckRunning(running, "sleep 1000");
  EXPECT_TRUE(std::filesystem::exists(shared + "/mark"));
  // Exactly one container runs (the failed one exited; its cgroup is gone).
  EXPECT_EQ(ContainerCgroups().size(), 1u);
}

TEST_F(AgentPrivTest, RestartedAgentAdoptsRunningContainersWithoutDuplicates) {
  StartAgent();
  api::Service svc = CreateService("keep", 2, {"sleep", "1000"});
  ASSERT_TRUE(WaitFor([&] { return RunningTasks(svc.id()).size() == 2; }))
      << agent_->status().last_error;
  std::map<std::string, pid_t> before;
  for (const auto& t : RunningTasks(svc.id())) before[t.id()] = CheckRunning(t, "sleep 1000");
  int sessions_before = agent_->status().sessions_opened;
  EXPECT_GE(sessions_before, 1);

  StopAgent();
  // Live restore: the containers outlive the agent.
  for (const auto& [id, pid] : before) EXPECT_TRUE(ProcessAlive(pid)) << id;

  StartAgent();
  EXPECT_EQ(agent_->status().adopted.size(), 2u);
  ASSERT_TRUE(WaitFor([&] {
    AgentStatus st = agent_->status();
    return st.connected && st.tasks.size() == 2;
  })) << agent_->status().last_error;
  // Same containers, still running, no new task or container.
  for (const auto& [id, pid] : before) EXPECT_TRUE(ProcessAlive(pid)) << id;
  EXPECT_EQ(ContainerCgroups().size(), 2u);
  std::vector<api::Task> tasks = Tasks(svc.id());
  EXPECT_EQ(tasks.size(), 2u);
  for (const auto& t : tasks) {
    EXPECT_TRUE(before.count(t.id())) << "new task " << t.id();
    EXPECT_EQ(t.status().state(), api::TASK_STATE_RUNNING);
  }
  // The adopted containers are watched: killing one fails its task with 128+9.
  const auto& [victim, victim_pid] = *before.begin();
  ASSERT_EQ(kill(victim_pid, SIGKILL), 0);
  ASSERT_TRUE(WaitFor([&] {
    for (const auto& t : Tasks(svc.id())) {
      if (t.id() == victim && t.status().state() == api::TASK_STATE_FAILED) return true;
    }
    return false;
  })) << "the killed adopted container's task did not fail";
  for (const auto& t : Tasks(svc.id())) {
    if (t.id() == victim) {
      EXPECT_EQ(t.status().container().exit_code(), 137);
    }
  }
  ASSERT_TRUE(WaitFor([&] { return RunningTasks(svc.id()).size() == 2; }));
}

TEST_F(AgentPrivTest, SecretsAndConfigsAreFilesOnATmpfs) {
  StartAgent();
  api::CreateSecretRequest sreq;
  sreq.mutable_spec()->mutable_annotations()->set_name("token");
  sreq.mutable_spec()->set_data("s3cret");
  api::CreateSecretResponse sresp;
  {
    grpc::ClientContext ctx;
    ASSERT_TRUE(control_->CreateSecret(&ctx, sreq, &sresp).ok());
  }
  api::CreateConfigRequest creq;
  creq.mutable_spec()->mutable_annotations()->set_name("conf");
  creq.mutable_spec()->set_data("key=value\n");
  api::CreateConfigResponse cresp;
  {
    grpc::ClientContext ctx;
    ASSERT_TRUE(control_->CreateConfig(&ctx, creq, &cresp).ok());
  }
  api::Service svc = CreateService("sec", 1, {"sleep", "1000"}, [&](api::ServiceSpec& spec) {
    auto* c = spec.mutable_task()->mutable_container();
    auto* s = c->add_secrets();
    s->set_secret_id(sresp.secret().id());
    s->set_secret_name("token");
    s->set_file_name("token");
    s->set_mode(0400);
    auto* cf = c->add_configs();
    cf->set_config_id(cresp.config().id());
    cf->set_config_name("conf");
    cf->set_file_name("/etc/app.conf");
    c->add_env("GREETING=hello");
  });
  ASSERT_TRUE(WaitFor([&] { return RunningTasks(svc.id()).size() == 1; }))
      << agent_->status().last_error;
  api::Task t = RunningTasks(svc.id()).front();
  pid_t pid = CheckRunning(t, "sleep 1000");
  std::string root = absl::StrCat("/proc/", pid, "/root");
  auto secret = base::ReadFile(root + "/run/secrets/token");
  ASSERT_TRUE(secret.ok()) << secret.status();
  EXPECT_EQ(*secret, "s3cret");
  struct stat st;
  ASSERT_EQ(stat((root + "/run/secrets/token").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0400u);
  auto conf = base::ReadFile(root + "/etc/app.conf");
  ASSERT_TRUE(conf.ok()) << conf.status();
  EXPECT_EQ(*conf, "key=value\n");
  auto environ = base::ReadFile(absl::StrCat("/proc/", pid, "/environ"));
  ASSERT_TRUE(environ.ok());
  EXPECT_TRUE(absl::StrContains(*environ, std::string("GREETING=hello\0", 15)));
  // The secret never touches the disk: the host side is a tmpfs.
  bool tmpfs = false;
  for (const std::string& m : MountsUnderDir()) {
    if (absl::StrContains(m, t.id()) && absl::EndsWith(m, "/files")) tmpfs = true;
  }
  EXPECT_TRUE(tmpfs);
  Scale(svc.id(), 0);
  ASSERT_TRUE(WaitFor([&] { return ContainerCgroups().empty() && MountsUnderDir().empty(); }));
}

}  // namespace
}  // namespace shoal::agent::testing

namespace shoal::agent::testing {
namespace {

// The manager goes away and comes back (restart from its state dir on the same address): the
// agent reconnects with backoff, a container exit that happened meanwhile is reported once the
// new session is up, and the running container is neither restarted nor duplicated.
TEST_F(AgentPrivTest, ReconnectsAfterTheManagerRestartsAndReportsWhatHappenedMeanwhile) {
  StartAgent();
  api::Service svc = CreateService("mgr", 2, {"sleep", "1000"});
  ASSERT_TRUE(WaitFor([&] { return RunningTasks(svc.id()).size() == 2; }))
      << agent_->status().last_error;
  std::vector<api::Task> tasks = RunningTasks(svc.id());
  pid_t keep = CheckRunning(tasks[0], "sleep 1000");
  pid_t victim = CheckRunning(tasks[1], "sleep 1000");
  std::string address = manager_->address();

  manager_->Stop();
  manager_.reset();
  ASSERT_TRUE(WaitFor([&] { return !agent_->status().connected; }));
  ASSERT_EQ(kill(victim, SIGKILL), 0);  // exits while no manager listens
  ASSERT_TRUE(WaitFor([&] {
    auto st = agent_->status().tasks;
    return st[tasks[1].id()] == api::TASK_STATE_FAILED;
  }));

  manager::node::ManagerOptions mo;
  mo.state_dir = dir_ + "/manager";
  mo.listen_addr = address;
  mo.control_socket = dir_ + "/control.sock";
  mo.clock = &clock_;
  mo.random = &random_;
  mo.heartbeat_period = absl::Seconds(1);
  auto m = manager::node::Manager::Start(mo);
  ASSERT_TRUE(m.ok()) << m.status();
  manager_ = *std::move(m);
  ASSERT_TRUE(WaitFor([&] { return agent_->status().connected; })) << agent_->status().last_error;
  EXPECT_GE(agent_->status().sessions_opened, 2);
  ASSERT_TRUE(WaitFor([&] {
    for (const auto& t : Tasks(svc.id())) {
      if (t.id() == tasks[1].id()) return t.status().state() == api::TASK_STATE_FAILED;
    }
    return false;
  })) << "the exit during the outage was never reported";
  // The surviving container was adopted by nobody else: same process, same task, RUNNING.
  EXPECT_TRUE(ProcessAlive(keep));
  ASSERT_TRUE(WaitFor([&] { return RunningTasks(svc.id()).size() == 2; }));
  bool kept = false;
  for (const auto& t : RunningTasks(svc.id())) {
    if (t.id() == tasks[0].id()) kept = t.status().container().pid() == keep;
  }
  EXPECT_TRUE(kept);
  EXPECT_EQ(ContainerCgroups().size(), 2u);  // the survivor + the replacement
}

}  // namespace
}  // namespace shoal::agent::testing

namespace shoal::agent::testing {
namespace {

// An image that is not in the store (pulling disabled) rejects the task with the reason; the
// failed preparation leaves no container, cgroup, mount or directory behind.
TEST_F(AgentPrivTest, MissingImageRejectsTheTaskAndLeavesNothing) {
  StartAgent();
  api::Service svc = CreateService("nope", 1, {"true"}, [](api::ServiceSpec& spec) {
    spec.mutable_task()->mutable_container()->set_image("shoaltest/missing:1");
  });
  ASSERT_TRUE(WaitFor([&] {
    for (const auto& t : Tasks(svc.id())) {
      if (t.status().state() == api::TASK_STATE_REJECTED) return true;
    }
    return false;
  })) << agent_->status().last_error;
  for (const auto& t : Tasks(svc.id())) {
    if (t.status().state() != api::TASK_STATE_REJECTED) continue;
    EXPECT_TRUE(absl::StrContains(t.status().err(), "shoaltest/missing")) << t.status().err();
  }
  // Rejected tasks stay in the service's history (like `docker service ps`); nothing of
  // them stays on the host.
  Scale(svc.id(), 0);
  ASSERT_TRUE(WaitFor([&] {
    for (const auto& t : Tasks(svc.id())) {
      if (t.status().state() < api::TASK_STATE_COMPLETE) return false;
    }
    std::error_code ec;
    return std::filesystem::is_empty(dir_ + "/exec/containers", ec) &&
           std::filesystem::is_empty(dir_ + "/agent/containers", ec);
  })) << Tasks(svc.id()).size()
      << " tasks";
  EXPECT_TRUE(ContainerCgroups().empty());
  EXPECT_TRUE(MountsUnderDir().empty());
}

}  // namespace
}  // namespace shoal::agent::testing

namespace shoal::agent::testing {
namespace {

// Three managers; the leader stops: the agent (given all three addresses) moves its session
// to the new leader, the tasks keep their containers, and a later exit is reported there.
TEST_F(AgentPrivTest, FollowsTheLeaderWhenTheLeaderManagerStops) {
  auto tokens = manager_->JoinTokens();
  ASSERT_TRUE(tokens.ok());
  std::vector<std::unique_ptr<manager::node::Manager>> others;
  struct StopAll {
    std::vector<std::unique_ptr<manager::node::Manager>>* v;
    ~StopAll() {
      for (auto& m : *v) {
        if (m) m->Stop();
      }
    }
  } stop_all{&others};
  for (int i = 1; i <= 2; ++i) {
    manager::node::ManagerOptions mo;
    mo.state_dir = absl::StrCat(dir_, "/manager", i);
    mo.listen_addr = "127.0.0.1:0";
    mo.join_addr = manager_->address();
    mo.join_token = tokens->second;
    mo.clock = &clock_;
    mo.random = &random_;
    mo.heartbeat_period = absl::Seconds(1);
    auto m = manager::node::Manager::Start(mo);
    ASSERT_TRUE(m.ok()) << m.status();
    others.push_back(*std::move(m));
  }
  ASSERT_TRUE(WaitFor([&] {
    auto st = manager_->RaftStatus();
    return st.members.size() == 3 && st.learners.empty();
  })) << "the joiners never became voters";
  ASSERT_TRUE(manager_->IsLeader());

  AgentOptions o = Options();
  o.managers = {manager_->address(), others[0]->address(), others[1]->address()};
  auto a = Agent::Start(o);
  ASSERT_TRUE(a.ok()) << a.status();
  agent_ = *std::move(a);
  api::Service svc = CreateService("ha", 2, {"sleep", "1000"});
  ASSERT_TRUE(WaitFor([&] { return RunningTasks(svc.id()).size() == 2; }))
      << agent_->status().last_error;
  std::map<std::string, pid_t> pids;
  for (const auto& t : RunningTasks(svc.id())) pids[t.id()] = CheckRunning(t, "sleep 1000");

  // The leader goes away; one of the others takes over.
  std::string old_leader = manager_->address();
  manager_->Stop();
  manager_.reset();
  manager::node::Manager* leader = nullptr;
  ASSERT_TRUE(WaitFor(
      [&] {
        for (auto& m : others) {
          if (m->IsLeader()) leader = m.get();
        }
        return leader != nullptr;
      },
      absl::Seconds(60)));
  for (auto& m : others) {
    if (m.get() == leader) manager_ = std::move(m);  // Tasks() now reads the new leader
  }
  ASSERT_TRUE(WaitFor(
      [&] {
        AgentStatus st = agent_->status();
        return st.connected && st.manager == manager_->address();
      },
      absl::Seconds(60)))
      << "agent never reached the new leader: " << agent_->status().last_error;

  // The new leader keeps both tasks: the agent's reconnect backoff stays under the heartbeat
  // period, so it reaches the new dispatcher well within the leader-change grace (6 periods)
  // and its node never goes DOWN. The host holds exactly the store's running tasks, each with
  // the process it had before the failover.
  ASSERT_TRUE(WaitFor([&] {
    return RunningTasks(svc.id()).size() == 2 && ContainerCgroups().size() == 2;
  })) << ContainerCgroups().size()
      << " containers";
  std::map<std::string, pid_t> now;
  for (const auto& t : RunningTasks(svc.id())) {
    now[t.id()] = CheckRunning(t, "sleep 1000");
    EXPECT_EQ(pids.count(t.id()), 1u) << "task " << t.id() << " replaced after the failover";
    if (pids.count(t.id())) {
      EXPECT_EQ(now[t.id()], pids[t.id()]) << "kept task restarted";
    }
  }
  pids = now;
  // An exit now is reported to the new leader.
  const auto& [victim, victim_pid] = *pids.begin();
  ASSERT_EQ(kill(victim_pid, SIGKILL), 0);
  ASSERT_TRUE(WaitFor([&] {
    for (const auto& t : Tasks(svc.id())) {
      if (t.id() == victim) return t.status().state() == api::TASK_STATE_FAILED;
    }
    return false;
  }));
  StopAgent();  // before the managers go (TearDown stops manager_, StopAll the rest)
}

}  // namespace
}  // namespace shoal::agent::testing
