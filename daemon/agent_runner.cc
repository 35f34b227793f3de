#include "daemon/agent_runner.h"

#include "base/log.h"

namespace shoal::daemon {
namespace {

// TODO(agent): agent/agent.h is not committed yet. Replace this with agent::Agent::Start
// (AgentOptions: state_dir, exec_root, cgroup_parent, monitor_path, image_root, managers,
// dial = manager::ca::DialManager(addr, ChannelCredentials(tls))).
class NoAgent final : public AgentRunner {
 public:
  bool running() const override { return false; }
};

}  // namespace

absl::StatusOr<std::unique_ptr<AgentRunner>> StartAgent(const AgentConfig& config,
                                                        const manager::ca::TlsMaterial& tls,
                                                        const std::vector<std::string>& managers) {
  base::Logger("daemon")->warn(
      "the worker agent is not integrated yet: this node runs no tasks");
  return std::make_unique<NoAgent>();
}

}  // namespace shoal::daemon
