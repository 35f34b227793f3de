// Manager: the manager role of a node, assembled — raft member + replicated store + the
// manager's gRPC listener (mTLS) + the local admin socket + the leader-only components.
//
// One TCP listener (mTLS, manager/ca/tls.h, access policy manager/ca/authz.h) serves Raft,
// RaftMembership, CA, NodeCA, Dispatcher and Control. The local unix socket serves Control
// only (no TLS; guard it with filesystem permissions). While this member is the raft leader
// the dispatcher is started and a LeaderLoop runs the allocator, scheduler, orchestrator and
// role manager; both stop when leadership is lost (a monitor thread polls the raft role). The
// leader also records each manager's raft id, address, leader flag and reachability (as the
// leader's raft sees it: RaftNode::Peers) in Node.manager_status, writing only on change, and
// clears it on nodes that left the raft membership. Demotions through Control are judged on
// the live raft view (controlapi::CheckDemotion).
//
// Start modes (ManagerOptions):
//   init          a new cluster: single-member raft, then the cluster object, root CA, join
//                 tokens and this node's manager certificate (manager/ca/ca_service.h)
//   join          ca::Join with a manager token against `join_addr`, then RaftMembership.Join
//                 on the leader (which adds this member as a learner, promoted once caught up)
//   restart       state_dir already holds certificates and raft state (raft-id): resume
// The dispatcher's SessionMessage.managers lists the managers recorded in Node.manager_status
// (leader first), so agents learn every manager, not only the ones they were started with.
// TLS material is kept in <state_dir>/certificates (key 0600); raft in <state_dir>/raft.
//
// Control calls on a follower (TCP or the local socket) are forwarded to the leader
// (forwarding_control.h), and so are joins (forwarding_ca.h).
//
// Thread safety: Start/Stop from one thread; accessors are thread-safe.
#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "base/clock.h"
#include "base/random.h"
#include "manager/ca/join.h"
#include "manager/raft/deferred_proposer.h"
#include "manager/raft/node.h"
#include "manager/store/store.h"

namespace shoal::manager::ca {
class NodeCAService;
}
namespace shoal::manager::controlapi {
class ControlService;
}
namespace shoal::manager::dispatcher {
class Dispatcher;
}
namespace shoal::manager::leader {
class LeaderLoop;
class Component;
class RaftNodeMembership;
}  // namespace shoal::manager::leader

namespace shoal::manager::node {

namespace api = ::shoal::api::v1;

struct ManagerOptions {
  std::string state_dir;       // required, created if missing
  std::string listen_addr;     // host:port; port 0 picks one (see address())
  std::string advertise_addr;  // host:port peers reach this manager at; empty: listen_addr
  std::string control_socket;  // unix socket path for the local Control API; empty: none
  bool init = false;           // create a new cluster
  std::string join_addr;       // join an existing cluster through this manager
  std::string join_token;      // a manager join token
  // join: the certificate already obtained with ca::Join(join_addr, join_token) (a caller that
  // learns the role from the issued certificate); the manager skips its own ca::Join.
  // With `joined` set (a worker promoted to manager: it renewed its certificate, which is now a
  // manager one) join_token may be empty: RaftMembership.Join is authorized by that certificate.
  std::optional<ca::JoinResult> joined;
  // init: spec.ca_config.node_cert_expiry of the new cluster (zero: 90 days); may be as short
  // as ca::kMinTestNodeCertValidity, for labs and tests that watch renewals.
  absl::Duration node_cert_expiry = absl::ZeroDuration();
  absl::Duration tick = absl::Milliseconds(100);
  absl::Duration heartbeat_period = absl::Seconds(5);
  base::Clock* clock = nullptr;    // required
  base::Random* random = nullptr;  // required
};

class Manager {
 public:
  static absl::StatusOr<std::unique_ptr<Manager>> Start(ManagerOptions options);
  ~Manager();
  Manager(const Manager&) = delete;
  Manager& operator=(const Manager&) = delete;

  void Stop();

  const ca::NodeIdentity& identity() const { return tls_.identity; }
  const ca::TlsMaterial& tls() const { return tls_.tls; }
  std::string address() const { return address_; }              // the bound host:port
  std::string advertise_address() const { return advertise_; }  // as known to the peers
  uint64_t raft_id() const { return raft_id_; }
  bool IsLeader() const { return raft_ && raft_->IsLeader(); }
  std::string leader_address() const;
  raft::NodeStatus RaftStatus() const { return raft_->Status(); }
  store::MemoryStore& store() { return *store_; }
  // While leading with other voters: hands leadership to one of them, so that stopping this
  // manager (say, to restart it on a renewed certificate) costs no election timeout. OK with
  // nothing done otherwise.
  absl::Status HandOverLeadership();
  // The join tokens (read from the replicated cluster object).
  absl::StatusOr<std::pair<std::string, std::string>> JoinTokens() const;

 private:
  explicit Manager(ManagerOptions options);
  absl::Status Init();
  absl::Status StartRaft(uint64_t raft_id, std::vector<api::RaftMember> bootstrap,
                         std::vector<api::RaftMember> peers);
  absl::Status StartServers();
  void MonitorLoop();
  void BecomeLeader();
  void StopLeading();
  void PublishManagerStatus();  // leader: Node.manager_status from the raft membership

  ManagerOptions opts_;
  ca::JoinResult tls_;
  uint64_t raft_id_ = 0;
  std::string address_;
  std::string advertise_;
  int port_ = 0;

  std::unique_ptr<raft::DeferredProposer> proposer_;
  std::unique_ptr<store::MemoryStore> store_;
  std::unique_ptr<raft::RaftNode> raft_;
  std::unique_ptr<dispatcher::Dispatcher> dispatcher_;
  std::unique_ptr<ca::NodeCAService> node_ca_;
  std::unique_ptr<controlapi::ControlService> control_;
  std::vector<std::unique_ptr<grpc::Service>> services_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<grpc::Server> local_server_;
  std::vector<std::unique_ptr<leader::Component>> components_;
  std::unique_ptr<leader::RaftNodeMembership> membership_;
  std::unique_ptr<leader::LeaderLoop> loop_;

  std::atomic<bool> stop_{false};
  bool leading_ = false;  // monitor thread only
  std::thread monitor_;
};

}  // namespace shoal::manager::node
