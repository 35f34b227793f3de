// What one node is told (DESIGN.md §6, reference/swarmkit.md §5): the assignment set, computed
// from one store version, and the diff between two sets. Pure functions over a ReadTx.
//
// The set of node N holds, each item under a stable key:
//   "t/<task>"            N's tasks with observed state >= ASSIGNED; endpoint MACs filled in
//                         (EndpointMac) where the allocator left them empty
//   "s/<secret>"          secrets referenced by N's tasks whose observed state <= RUNNING, and
//   "c/<config>"          configs likewise: nothing else, and they leave the set when the last
//                         such task finishes (least privilege, as SwarmKit)
//   "n/<network>"         networks N's active tasks are attached to (and the ingress network on
//                         every node when `ingress_everywhere`: the routing mesh answers published
//                         ports on all nodes)
//   "e/<task>/<network>"  every endpoint on those networks: tasks on any node with state in
//                         [ASSIGNED, RUNNING], desired <= RUNNING and an address there, with IP,
//                         MAC, the node's VTEP (node.vtep_addr, else the session address) —
//                         this replaces Docker's gossip; on the ingress network also one
//                         per node with an ingress address (Node.attachments), task id
//                         "ingress-sbox-<node id>": the node's ingress sandbox
//   "v/<service>"         services on those networks (a VIP there, a task endpoint there, or
//                         the network in their spec), reduced to id, name, endpoint spec,
//                         allocated endpoint (VIPs, published ports) and network aliases
// A task is "active" when its observed state is in [ASSIGNED, RUNNING].
//
// Each item carries a fingerprint (a hash of its deterministic serialization; for tasks, with
// status and meta cleared, so an agent's own status reports are not echoed back).
//
// Thread safety: functions are reentrant; NetworkCache is thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "api/dispatcher.pb.h"
#include "manager/store/read_tx.h"

namespace shoal::manager::dispatcher {

namespace api = ::shoal::api::v1;

// Endpoint records of nodes' ingress sandboxes use task id <prefix><node id>.
inline constexpr char kIngressSandboxPrefix[] = "ingress-sbox-";

struct Item {
  uint64_t fingerprint = 0;
  std::shared_ptr<const api::Assignment> assignment;
};
// Key -> item, ordered by key (so messages list tasks, secrets, ... in a stable order).
using ItemSet = std::map<std::string, Item>;
// Key -> fingerprint of what the agent holds.
using SentSet = absl::flat_hash_map<std::string, uint64_t>;

// The items of one network (its network item, endpoints, services), shared by every node
// attached to it.
struct NetworkItems {
  uint64_t version = 0;  // store version it was computed at
  ItemSet items;
};

// Computes each network's items once per store version, for all sessions.
class NetworkCache {
 public:
  std::shared_ptr<const NetworkItems> Get(const store::ReadTx& tx, const std::string& network_id);

 private:
  std::mutex mu_;
  absl::flat_hash_map<std::string, std::shared_ptr<const NetworkItems>> by_network_;
};

struct SetOptions {
  bool ingress_everywhere = true;
};

// What the set references besides its items (the dispatcher uses it to decide which store
// changes concern the node).
struct Refs {
  std::vector<std::string> networks;
  std::vector<std::string> secrets;
  std::vector<std::string> configs;
};

ItemSet ComputeSet(const store::ReadTx& tx, absl::string_view node_id, const SetOptions& options,
                   NetworkCache& cache, Refs* refs);

// Changes that turn `sent` into `want` (UPDATE for new or changed items, REMOVE with the bare
// id for items gone); updates `sent` to `want`.
std::vector<api::AssignmentChange> Diff(const ItemSet& want, SentSet& sent);

// The whole of `want` (a COMPLETE message's changes); resets `sent` to it.
std::vector<api::AssignmentChange> Complete(const ItemSet& want, SentSet& sent);

// A stable, locally administered unicast MAC (02:xx:xx:xx:xx:xx) for a task's endpoint on a
// network, derived from both ids. Task ids are never reused, so a reused IP never brings a reused
// MAC (the IP-derived MACs of Docker's overlay cause stale FDB entries, dataplane.md §10.12).
std::string EndpointMac(absl::string_view task_id, absl::string_view network_id);

// Deterministic-serialization hash of `m`.
uint64_t Fingerprint(const google::protobuf::Message& m);

}  // namespace shoal::manager::dispatcher
