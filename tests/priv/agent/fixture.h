// Fixture for agent priv tests: an in-process single Manager (manager/node, mTLS listener on
// loopback, control socket), the test image (scripts/mkimage) imported into a fresh image store
// as "shoaltest/agent:latest", a worker identity joined with the worker token, and a real Agent
// on this host whose containers live under the cgroup parent "ag-test-<pid>". TearDown stops
// the agent, kills and deletes whatever containers remain, and checks nothing is left.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "agent/agent.h"
#include "api/control.grpc.pb.h"
#include "base/clock.h"
#include "base/random.h"
#include "gtest/gtest.h"
#include "kernel/features.h"
#include "manager/ca/join.h"
#include "manager/node/manager.h"

namespace shoal::agent::testing {

namespace api = ::shoal::api::v1;

inline constexpr char kImage[] = "shoaltest/agent:latest";

bool WaitFor(const std::function<bool()>& cond, absl::Duration timeout = absl::Seconds(30));

class AgentTest : public ::testing::Test {
 public:
  static void SetUpTestSuite();
  static void TearDownTestSuite();

 protected:
  void SetUp() override;
  void TearDown() override;

  AgentOptions Options();
  void StartAgent();
  void StopAgent();

  // Control API helpers (local socket of the manager).
  api::Service CreateService(const std::string& name, uint64_t replicas,
                             std::vector<std::string> args,
                             const std::function<void(api::ServiceSpec&)>& edit = nullptr);
  void Scale(const std::string& service_id, uint64_t replicas);
  std::vector<api::Task> Tasks(const std::string& service_id);
  std::vector<api::Task> RunningTasks(const std::string& service_id);

  // Host-side observations (not agent bookkeeping).
  // Container (task) cgroups under the agent's cgroup parent, from the pids hierarchy (v1) or
  // the unified one (v2).
  std::vector<std::string> ContainerCgroups() const;
  std::vector<pid_t> CgroupProcs(const std::string& task_id) const;
  static bool ProcessAlive(pid_t pid);
  static std::string Cmdline(pid_t pid);
  std::vector<std::string> MountsUnderDir() const;
  // Kills (SIGKILL, through their monitors) the containers still running under
  // <exec_root>/containers: what a failed test left behind.
  static void KillContainers(const std::string& exec_root);

  static std::string image_dir_;  // the test image rootfs (mkimage)
  std::string dir_;
  std::string cgroup_parent_;
  kernel::Features features_;
  base::RealClock clock_;
  base::SystemRandom random_;
  std::unique_ptr<manager::node::Manager> manager_;
  manager::ca::JoinResult worker_;
  std::unique_ptr<api::Control::Stub> control_;
  std::unique_ptr<Agent> agent_;
};

}  // namespace shoal::agent::testing
