// StoreCluster: an in-process cluster of managers, each one MemoryStore on its own RaftNode
// (real WAL + snapshots on disk, real gRPC transport on 127.0.0.1), for tests of anything that
// runs on the replicated store with several managers (control plane, leader components).
//
//   StoreClusterOptions o;                      // 3 managers, 20 ms ticks
//   ASSIGN_OR_RETURN(auto c, StoreCluster::Start(o));
//   ASSIGN_OR_RETURN(uint64_t leader, c->WaitLeader(absl::Seconds(20)));
//   c->store(leader)->Update([&](Tx& tx) { return tx.Create(service); });
//   c->WaitConverged(absl::Seconds(10));       // every running manager at the same version
//
// Managers are numbered by raft id 1..N. Each has a gRPC server on its own loopback port
// (chosen by the kernel at first start, reused on restart); more services can be registered
// on it through `add_services` (e.g. the control API). Faults:
//   Stop(id)         the manager goes away (server shut down, raft node stopped). Everything it
//                    acknowledged is on its disk (fdatasync before ack), so this is equivalent
//                    to a crash for the cluster.
//   Restart(id)      a new RaftNode + fresh MemoryStore from the same directory and port (the
//                    store is rebuilt from the local snapshot and log, like a process restart).
//   Disconnect(id)   only the server goes away: the manager keeps running but hears nothing
//                    (it falls behind; PreVote keeps it from disrupting the others);
//                    Reconnect(id) brings the server back on the same port.
//   AddManager()     a new member joins through the leader (learner, promoted once caught up;
//                    a snapshot if the leader's log was compacted past it).
//   RemoveManager()  removes a member through the leader and stops it.
//
// Writes: MemoryStore::Update on a follower fails with FailedPrecondition "store update: this
// manager is not the raft leader" (no forwarding at this layer; SwarmKit forwards at the API
// layer). A just-elected leader's store may not yet show everything committed by the previous
// leader: WaitLeader() returns only once the leader has applied an entry of its own term
// (ReadBarrier), so reads on it are then up to date.
//
// Thread safety: the accessors and fault methods are for the test's main thread; the returned
// stores and nodes are thread-safe. A pointer from store(id)/node(id) is valid until the next
// Stop/Restart/RemoveManager of that id or the cluster's destruction.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "base/clock.h"
#include "base/random.h"
#include "grpcpp/grpcpp.h"
#include "manager/raft/node.h"
#include "manager/store/store.h"

namespace shoal::manager::store::testing {

struct StoreClusterOptions {
  int managers = 3;
  // Root directory for the members' raft state. Empty: a fresh /tmp/shoal-store-cluster-XXXXXX
  // that the cluster removes when destroyed.
  std::string dir;
  absl::Duration tick = absl::Milliseconds(20);
  int election_tick = 10;
  uint64_t snapshot_interval = 10000;
  uint64_t snapshot_keep = 500;
  StoreOptions store;
  // Adjusts a member's raft options before its node is created (every start; e.g. a storage
  // fault hook in options.storage.before_sync).
  std::function<void(uint64_t raft_id, raft::NodeOptions& options)> node_options;
  // Registers extra services on a manager's gRPC server before it starts. Called again for
  // the new server of every Restart/Reconnect; a service must outlive the server it is
  // registered on (gRPC lets an async or callback service join one server only: hand out a
  // fresh one per call).
  std::function<void(uint64_t raft_id, grpc::ServerBuilder& builder)> add_services;
};

class StoreCluster {
 public:
  // Starts `managers` members of a new cluster (no leader wait).
  static absl::StatusOr<std::unique_ptr<StoreCluster>> Start(StoreClusterOptions options);
  ~StoreCluster();  // stops every member; removes the directory if the cluster created it
  StoreCluster(const StoreCluster&) = delete;
  StoreCluster& operator=(const StoreCluster&) = delete;

  // Every member id ever started and not removed, running or not.
  std::vector<uint64_t> ids() const;
  std::vector<uint64_t> running() const;
  bool is_running(uint64_t id) const;
  // Null when the member is stopped (or unknown).
  MemoryStore* store(uint64_t id) const;
  raft::RaftNode* node(uint64_t id) const;
  std::string addr(uint64_t id) const;  // host:port, stable across restarts
  std::string dir(uint64_t id) const;   // the member's raft directory

  // The leader among running members, once it has applied an entry of its own term (so its
  // store reflects everything committed before). DeadlineExceeded otherwise.
  absl::StatusOr<uint64_t> WaitLeader(absl::Duration timeout);
  // Running followers of the current leader (as last reported by their nodes).
  std::vector<uint64_t> Followers(uint64_t leader) const;
  // Waits until every running member's store is at `version` or later.
  absl::Status WaitVersion(uint64_t version, absl::Duration timeout);
  // Waits until every running member's store has the same version as the leader's (after all
  // writes stopped).
  absl::Status WaitConverged(absl::Duration timeout);

  absl::Status Stop(uint64_t id);
  absl::Status Restart(uint64_t id);
  absl::Status Disconnect(uint64_t id);
  absl::Status Reconnect(uint64_t id);
  // Returns the new member's id once it is a voter whose store caught up with the leader.
  absl::StatusOr<uint64_t> AddManager(absl::Duration timeout);
  absl::Status RemoveManager(uint64_t id, absl::Duration timeout);

 private:
  struct Member;
  class Forwarder;
  explicit StoreCluster(StoreClusterOptions options);
  absl::Status StartMember(Member& m, const std::vector<api::RaftMember>& bootstrap,
                           const std::vector<api::RaftMember>& peers);
  absl::Status StartServer(Member& m);
  void StopMember(Member& m);
  std::vector<api::RaftMember> Members() const;
  Member* Find(uint64_t id) const;

  StoreClusterOptions opts_;
  bool own_dir_ = false;
  base::RealClock clock_;
  base::SystemRandom random_;
  std::map<uint64_t, std::unique_ptr<Member>> members_;
  std::vector<std::unique_ptr<Member>> retired_members_;  // removed; stopped
};

}  // namespace shoal::manager::store::testing
