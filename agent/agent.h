// The worker agent (DESIGN.md §1, reference/swarmkit.md §5): one per shoald, always running.
//
//   session     connects to a manager (any of `managers`, then the list the dispatcher pushes),
//               opens Session, heartbeats at the period the dispatcher returns, and on any
//               failure (manager gone, leader change, session superseded) reconnects to the next
//               manager with backoff min(100 ms + 2 x backoff, 8 s, the last heartbeat period)
//               and a random delay below it.
//   assignments the Assignments stream: COMPLETE (the whole set: anything not listed is shut
//               down and removed), then INCREMENTAL diffs; a gap in applies_to/results_in reopens
//               the stream. Multi-part messages (`more`) are applied together.
//   tasks       one task manager per assigned task drives it ASSIGNED -> ACCEPTED -> PREPARING ->
//               READY -> STARTING -> RUNNING -> COMPLETE | FAILED (exit code recorded) |
//               SHUTDOWN (desired >= SHUTDOWN, stop signal then SIGKILL after the grace period),
//               REJECTED on errors before STARTING. Restarts are the manager's job. A task that
//               leaves the assignment set has its container stopped and deleted (cgroup, rootfs
//               dirs, secret files, image lease).
//   containers  real containers through shoal-monitor (runtime/monitor/client.h): one monitor
//               per container keeps its logs and exit status, so containers survive the agent.
//               Rootfs = overlayfs over the image's layers from the image store.
//   status      a coalescing reporter: the newest state per task, never a lower one than already
//               reported, sent in batches with UpdateTaskStatus, resent after a reconnect.
//   restore     Start() re-adopts the containers a previous agent left in
//               <exec_root>/containers (live restore) and reports their state once the manager
//               sends the assignment set; Stop() leaves containers running.
//
// Thread safety: Start/Stop from one thread; status() from any thread.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "api/objects.pb.h"
#include "base/clock.h"
#include "base/random.h"
#include "kernel/cgroup/cgroup.h"

namespace shoal::agent {

namespace api = ::shoal::api::v1;

// Opens a channel to the manager at "host:port" (mTLS with the node certificate in shoald:
// manager::ca::DialManager(addr, ChannelCredentials(tls))). The dispatcher identifies the node
// by the certificate the channel presents.
using DialFunction = std::function<std::shared_ptr<grpc::Channel>(const std::string& address)>;

struct AgentOptions {
  // Agent state (persisted task records): <state_dir>/tasks. Required, created if missing.
  std::string state_dir;
  // Per-container monitor state, rootfs mountpoints, upper/work dirs, secret files:
  // <exec_root>/containers/<task id>. Required, created if missing. Must persist across agent
  // restarts for live restore (it does under /run while the host is up).
  std::string exec_root;
  std::string cgroup_parent = "shoal";  // containers live in <cgroup_parent>/<task id>
  kernel::CgroupConfig cgroup;          // root and v1/hybrid/v2 mode (kernel::ProbeFeatures)
  std::string monitor_path;             // shoal-monitor binary; required
  std::string init_path;                // shoal-init binary, for ContainerSpec.init; optional
  std::string image_root;               // image store root (runtime/images/store.h); required
  // Images missing from the store are pulled (registry from the reference; these registry
  // hosts are spoken to over plain HTTP). false: a missing image rejects the task.
  bool pull_missing_images = true;
  std::vector<std::string> insecure_registries;

  // Managers to try first ("host:port"); replaced by the list the dispatcher pushes.
  std::vector<std::string> managers;
  DialFunction dial;  // required

  // What the node registers with. Empty hostname/platform/resources are filled from the host
  // (uname, sysconf) by Start; labels go in engine_labels.
  api::NodeDescription description;
  // Underlay address VXLAN traffic to this node goes to (SessionRequest.vtep_addr); empty: the
  // address the session comes from.
  std::string vtep_addr;

  // Task networking (agent/network.h): overlay networks, embedded DNS, VIP load balancing.
  // false: containers get only `lo` and tasks attached to networks run without them.
  bool networking = true;
  // The node's network namespace (borrowed fd; -1: the agent's own): the data-path address
  // must be on one of its links and VXLAN sockets live there. A lab host in tests.
  int node_netns_fd = -1;
  uint16_t data_path_port = 4789;  // VXLAN UDP port (`swarm init --data-path-port`)
  // Upstreams of the embedded resolver for names it does not know, unless the task's
  // dns_config names nameservers. Unset: the host's /etc/resolv.conf; empty: none (internal).
  std::optional<std::vector<std::string>> dns_upstreams;

  absl::Duration rpc_timeout = absl::Seconds(5);  // session open and each heartbeat
  absl::Duration backoff_initial = absl::Milliseconds(100);
  absl::Duration backoff_max = absl::Seconds(8);
  absl::Duration status_batch_wait = absl::Milliseconds(50);  // coalescing window
  absl::Duration task_retry = absl::Seconds(1);               // temporary errors retried after
  // Default log rotation of containers' stdout/stderr (<exec_root>/containers/<id>/container.log).
  uint64_t log_max_size = 10 << 20;
  int log_max_files = 3;

  base::Clock* clock = nullptr;    // default: a RealClock owned by the agent
  base::Random* random = nullptr;  // default: a SystemRandom owned by the agent
};

// A snapshot for `shoal node inspect`-style output and tests.
struct AgentStatus {
  bool connected = false;  // a session is open
  std::string manager;     // address of the manager the session is with
  std::string node_id;     // from the dispatcher's SessionMessage
  std::string session_id;
  absl::Duration heartbeat_period;
  int sessions_opened = 0;  // successful registrations since Start
  std::string last_error;   // last session failure, empty when none
  // Task id -> last observed state this agent knows (reported or pending).
  std::map<std::string, api::TaskState> tasks;
  std::vector<std::string> adopted;  // container (task) ids re-adopted at Start
};

class Agent {
 public:
  // Validates the options (INVALID_ARGUMENT naming the field), opens the image store, adopts
  // containers left running by a previous agent, and starts the session loop in the
  // background: it returns without waiting for a manager.
  static absl::StatusOr<std::unique_ptr<Agent>> Start(AgentOptions options);
  ~Agent();  // Stop()
  Agent(const Agent&) = delete;
  Agent& operator=(const Agent&) = delete;

  // Closes the session and stops every task manager. Containers keep running (live restore);
  // statuses not yet sent are reported again by the next agent. Idempotent.
  void Stop();

  AgentStatus status() const;

  class Impl;

 private:
  explicit Agent(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Hostname, platform (os "linux", architecture in Go/OCI naming) and resources (online CPUs in
// nano CPUs, physical memory) of this host.
api::NodeDescription DescribeHost();

}  // namespace shoal::agent
