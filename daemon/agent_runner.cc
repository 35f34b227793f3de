#include "daemon/agent_runner.h"

#include <mutex>

#include "absl/strings/str_cat.h"
#include "agent/agent.h"
#include "base/log.h"
#include "base/status.h"
#include "manager/ca/tls.h"

namespace shoal::daemon {
namespace {

// The TLS material the agent dials with; replaced on renewal.
class TlsHolder {
 public:
  explicit TlsHolder(manager::ca::TlsMaterial tls) : tls_(std::move(tls)) {}
  manager::ca::TlsMaterial Get() const {
    std::lock_guard<std::mutex> lock(mu_);
    return tls_;
  }
  void Set(const manager::ca::TlsMaterial& tls) {
    std::lock_guard<std::mutex> lock(mu_);
    tls_ = tls;
  }

 private:
  mutable std::mutex mu_;
  manager::ca::TlsMaterial tls_;
};

class RealAgent final : public AgentRunner {
 public:
  RealAgent(std::unique_ptr<agent::Agent> a, std::shared_ptr<TlsHolder> tls)
      : agent_(std::move(a)), tls_(std::move(tls)) {}
  ~RealAgent() override { agent_->Stop(); }
  bool running() const override { return true; }
  std::string status() const override {
    agent::AgentStatus s = agent_->status();
    if (s.connected) return absl::StrCat("connected to ", s.manager);
    return s.last_error.empty() ? "connecting" : absl::StrCat("connecting: ", s.last_error);
  }
  std::string manager() const override {
    agent::AgentStatus s = agent_->status();
    return s.connected ? s.manager : "";
  }
  void SetTls(const manager::ca::TlsMaterial& tls) override { tls_->Set(tls); }

 private:
  std::unique_ptr<agent::Agent> agent_;
  std::shared_ptr<TlsHolder> tls_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<AgentRunner>> StartAgent(const AgentConfig& config,
                                                        const manager::ca::TlsMaterial& tls,
                                                        const std::vector<std::string>& managers) {
  agent::AgentOptions o;
  o.state_dir = config.state_dir;
  o.exec_root = config.exec_root;
  o.cgroup_parent = config.cgroup_parent;
  o.cgroup.mode = config.features.cgroup_mode;
  o.monitor_path = config.monitor_path;
  o.init_path = config.init_path;
  o.image_root = config.image_root;
  o.pull_missing_images = config.pull_missing_images;
  o.managers = managers;
  // The dispatcher identifies the node by the certificate this channel presents.
  auto holder = std::make_shared<TlsHolder>(tls);
  o.dial = [holder](const std::string& address) {
    return manager::ca::DialManager(address, manager::ca::ChannelCredentials(holder->Get()));
  };
  o.description.set_hostname(config.hostname);  // empty: the host's name
  o.description.set_engine_version(config.engine_version);
  o.vtep_addr = config.vtep_addr;
  o.data_path_port = config.data_path_port;
  ASSIGN_OR_RETURN(std::unique_ptr<agent::Agent> a, agent::Agent::Start(std::move(o)));
  base::Logger("daemon")->info("worker agent started (managers: {})", managers.size());
  return std::make_unique<RealAgent>(std::move(a), std::move(holder));
}

}  // namespace shoal::daemon
