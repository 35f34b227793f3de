// Controller: one task's container on this host (reference/swarmkit.md §5 executor contract,
// reduced to what the task manager needs). The container runs under its own shoal-monitor
// (runtime/monitor/client.h) so it outlives the agent; its files:
//   <exec_root>/containers/<task id>/   monitor state (spec/state/exit.json, socket, logs),
//                                       hosts, hostname, resolv.conf, files/ (tmpfs: secrets
//                                       and configs, mounted only while the task exists)
//   <state_dir>/containers/<task id>/   rootfs (overlay mountpoint), upper, work
// The image's layers are leased in the image store (lease = task id) until Remove().
// Not thread-safe: used by its task manager's thread only.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "agent/agent.h"
#include "agent/network.h"
#include "api/objects.pb.h"
#include "runtime/images/store.h"
#include "runtime/monitor/client.h"

namespace shoal::agent {

// What the controllers of one agent share.
struct ExecEnv {
  const AgentOptions* options = nullptr;
  runtime::images::Store* images = nullptr;
  // Secret/config objects the dispatcher sent (nullopt: not (yet) known).
  std::function<std::optional<api::Secret>(const std::string& id)> secret;
  std::function<std::optional<api::Config>(const std::string& id)> config;
  Networking* net = nullptr;  // null: networking disabled (containers get only `lo`)
};

std::string ExecDir(const AgentOptions& o, const std::string& task_id);
std::string DataDir(const AgentOptions& o, const std::string& task_id);

class Controller {
 public:
  Controller(const ExecEnv& env, std::string task_id) : env_(env), id_(std::move(task_id)) {}

  bool exists() const { return client_ != nullptr; }
  // Takes over a container a previous agent launched (live restore).
  void Adopt(std::unique_ptr<runtime::MonitorClient> client) { client_ = std::move(client); }

  // Image (pulled if missing and allowed), rootfs dirs, secret/config files, then the
  // container is created (not started). Idempotent once the container exists. UNAVAILABLE:
  // temporary (e.g. a referenced secret has not arrived yet), retry later.
  absl::Status Prepare(const api::Task& task);
  // Starts the created container; OK if it already runs.
  absl::Status Start();

  struct Observation {
    std::string status;  // created | running | stopped
    pid_t pid = 0;
    bool exited = false;  // the monitor recorded an exit status
    runtime::ExitStatus exit;
  };
  absl::StatusOr<Observation> Observe() const;

  // Stop signal (spec, else image, else SIGTERM), SIGKILL after the grace period (spec, else
  // 10 s); returns the exit status.
  absl::StatusOr<runtime::ExitStatus> Shutdown(const api::Task& task);
  // Kills what still runs and deletes everything of the container (cgroup, files, mounts,
  // lease, network endpoints). Idempotent.
  absl::Status Remove();

  // Networks of an adopted container (agent restart): re-attaches it (keeping its interfaces).
  // True once the container's networks are in place (Prepare does it for new containers).
  bool networked() const { return networked_; }
  absl::Status EnsureNetworks(const api::Task& task);
  // The task ended: its endpoints, DNS and LB table go (the container stays for inspection).
  void DetachNetworks();

 private:
  absl::Status LoopbackUp();
  bool UsesNetworks(const api::Task& task) const;
  absl::Status WriteFiles(const api::Task& task, std::vector<runtime::MountSpec>* mounts);

  const ExecEnv& env_;
  std::string id_;
  std::unique_ptr<runtime::MonitorClient> client_;
  int image_stop_signal_ = 0;
  bool networked_ = false;
};

}  // namespace shoal::agent
