// Daemon: shoald's object graph. It serves the local socket (<exec-root>/shoald.sock, 0600)
// with the Swarm service (api/swarm.proto: init/join/leave/info) and the Control API (relayed to
// the manager, control_proxy.h), and owns this node's cluster roles:
//   - manager: manager::node::Manager (raft, store, mTLS listener, leader components);
//   - agent (both roles): the worker agent with the node's certificate (agent_runner.h);
//   - certificate renewal (cert_renewer.h): a renewed certificate is persisted atomically and
//     swapped in (the agent dials with it; a manager is restarted in place on it, since its
//     listener's credentials are fixed when built); a certificate with another role switches
//     the node: worker -> manager joins raft through a known manager and starts the manager
//     (the agent keeps running); manager -> worker (the leader already removed it from raft)
//     stops the manager, deletes its raft state and keeps the agent.
// On Start, a node identity in <root>/swarm (node_state.h) is resumed; otherwise the daemon waits
// for `shoal swarm init` or `shoal swarm join`.
//
// Failure atomicity: a failed init or join removes what it wrote under <root>/swarm, so the
// node is left "not part of a swarm" and the command can be retried.
//
// Thread safety: the Swarm operations and Info are serialized by one mutex; ControlTarget() is
// safe from any thread.
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"
#include "api/control.grpc.pb.h"
#include "api/swarm.pb.h"
#include "base/clock.h"
#include "base/random.h"
#include "daemon/agent_runner.h"
#include "daemon/cert_renewer.h"
#include "daemon/control_proxy.h"
#include "daemon/node_state.h"
#include "manager/node/manager.h"

namespace shoal::daemon {

struct DaemonOptions {
  std::string root;       // --root: state (certificates, raft, agent state)
  std::string exec_root;  // --exec-root: sockets, per-container runtime state
  std::string cgroup_parent;
  std::string listen_addr = "0.0.0.0:2377";  // default for init/join
  std::string advertise_addr;                // default for init/join; empty: derived
  uint32_t data_path_port = 4789;
  AgentConfig agent;  // what the agent needs besides the identity
  absl::Duration raft_tick = absl::Milliseconds(100);
  // swarm init: the cluster's node certificate lifetime (zero: 90 days); labs and tests may go
  // down to manager::ca::kMinTestNodeCertValidity to watch renewals.
  absl::Duration node_cert_expiry = absl::ZeroDuration();
  RenewalOptions renewal;
  base::Clock* clock = nullptr;    // required
  base::Random* random = nullptr;  // required
};

class Daemon {
 public:
  static absl::StatusOr<std::unique_ptr<Daemon>> Start(DaemonOptions options);
  ~Daemon();
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  void Stop();  // idempotent: closes the socket, stops the agent and the manager

  absl::StatusOr<api::SwarmInitResponse> Init(const api::SwarmInitRequest& req);
  absl::StatusOr<api::SwarmJoinResponse> Join(const api::SwarmJoinRequest& req);
  absl::Status Leave(const api::SwarmLeaveRequest& req);
  api::SwarmInfoResponse Info();

  ControlProxy::Target ControlTarget();
  std::string socket_path() const { return opts_.exec_root + "/shoald.sock"; }

 private:
  explicit Daemon(DaemonOptions options) : opts_(std::move(options)) {}
  absl::Status Resume();  // restart from <root>/swarm
  absl::Status ServeSocket();
  absl::Status StartManager(manager::node::ManagerOptions o);  // mu_ held
  absl::Status StartAgent(const manager::ca::TlsMaterial& tls,
                          const std::vector<std::string>& managers);  // mu_ held
  manager::node::ManagerOptions ManagerBase(const NodeState& st);
  absl::StatusOr<NodeState> Addresses(const std::string& listen, const std::string& advertise);
  absl::Status NotInSwarm();  // mu_ held: FailedPrecondition when already in a swarm
  void SetControlTarget(std::shared_ptr<api::Control::Stub> stub, std::string why_not);
  void StopComponents();                                      // mu_ held
  void StartRenewer(const manager::ca::JoinResult& current);  // mu_ held
  std::unique_ptr<CertRenewer> TakeRenewer();  // stopped by the caller, not under mu_
  // The renewer's callbacks (its thread; they take mu_).
  absl::Status ApplyCertificate(const manager::ca::JoinResult& renewed);
  std::vector<std::string> RenewalManagers();
  void RememberManagers();  // adds the agent's manager and raft members to node.json's list
  absl::Status Promote(const manager::ca::JoinResult& renewed);  // mu_ held
  absl::Status Demote(const manager::ca::JoinResult& renewed);   // mu_ held
  std::string internal_control_socket() const { return opts_.exec_root + "/manager.sock"; }

  DaemonOptions opts_;
  std::mutex mu_;  // the fields below
  bool active_ = false;
  NodeState state_;
  std::string node_id_, cluster_id_;
  std::unique_ptr<manager::node::Manager> manager_;
  std::unique_ptr<AgentRunner> agent_;
  std::unique_ptr<CertRenewer> renewer_;

  std::mutex target_mu_;  // what the Control relay talks to (never held for long)
  std::shared_ptr<api::Control::Stub> control_stub_;
  std::string why_not_;

  std::vector<std::unique_ptr<grpc::Service>> services_;
  std::unique_ptr<grpc::Server> server_;
  bool stopped_ = false;
};

}  // namespace shoal::daemon
