// AgentRunner: the worker agent of this node (agent/agent.h), started with the node's TLS
// identity in both roles. The settings it needs besides the identity come from shoald's flags.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "kernel/features.h"
#include "manager/ca/tls.h"

namespace shoal::daemon {

struct AgentConfig {
  std::string state_dir;      // <root>/agent
  std::string exec_root;      // <exec-root>
  std::string cgroup_parent;  // --cgroup-parent
  std::string image_root;     // <root>/images
  std::string monitor_path;   // shoal-monitor (default: next to shoald)
  std::string init_path;      // shoal-init (default: next to shoald)
  bool disabled = false;      // --no-agent: manager only (labs without container support)
  kernel::Features features;  // probed once at start (cgroup mode)
  std::string hostname;       // --hostname; empty: the host's name
  std::string engine_version;  // "shoald <version>"
  std::string vtep_addr;      // underlay address for VXLAN; empty: the session's source
  uint16_t data_path_port = 4789;  // --data-path-port: the VXLAN UDP port of task networks
  bool pull_missing_images = true;  // false (--no-image-pull): a missing image rejects the task
};

class AgentRunner {
 public:
  virtual ~AgentRunner() = default;
  virtual bool running() const = 0;
  virtual std::string status() const = 0;  // "connected to <manager>", "connecting: <why>"
  virtual std::string manager() const = 0;  // address of the session's manager, "" when none
  // A renewed certificate: connections the agent opens from now on present it (the session in
  // progress keeps its connection, as SwarmKit's agents do).
  virtual void SetTls(const manager::ca::TlsMaterial& tls) = 0;
};

// Starts the agent; it connects to `managers` with mTLS as the node in `tls`.
absl::StatusOr<std::unique_ptr<AgentRunner>> StartAgent(const AgentConfig& config,
                                                        const manager::ca::TlsMaterial& tls,
                                                        const std::vector<std::string>& managers);

}  // namespace shoal::daemon
