// Task networking on this node (DESIGN.md §5, reference/dataplane.md §1, §4, §5), level-triggered
// from the assignment state the dispatcher sends with the node's tasks (api/dispatcher.proto:
// `network` items carry the allocated network, `endpoint` items every task endpoint on it with
// IP, MAC and the VTEP of its node, `service` items the services with their VIPs and ports).
//
//   overlay   a network is created on this node (netdrv::OverlayDriver: sandbox namespace
//             `ov-<id>` under <exec_root>/netns with br0 = the gateway and vxlan0 = the
//             network's VNI on the data-path port, underlay = the link holding the VTEP address)
//             when the first local task needs it, and deleted when the last one goes. Peers =
//             every endpoint of the network whose VTEP is not ours, re-pushed on every change.
//   endpoint  each attachment of a task is a veth (`v<task id[:12]>` in the sandbox, eth0,
//             eth1, ... in the container, ingress last) with the allocated address and MAC;
//             the first non-ingress network carries the default route via its gateway.
//   DNS       one embedded resolver per agent (dns::Resolver) serving every attached container
//             at 127.0.0.11 (an nft DNAT in the container keeps its port 53 free); names per
//             network: <service> -> VIP (dnsrr: task IPs), tasks.<service> -> task IPs, task
//             names and aliases -> task IP, all also as <name>.<network>. resolv.conf of such a
//             container points at it (ResolvConfFor).
//   VIP LB    per attached container an nft table `shoal-lb` in its own namespace
//             (lb::NftBackend's table layout, output hook): a new flow to <VIP>:<port> of a
//             service on one of its networks is DNATed to a running task of that service, so
//             the reply comes straight back without SNAT. This is Docker's pre-18.06 per-sandbox
//             load balancing; the per-network LB sandbox (lb::LbSandbox) needs a per-node
//             address on each network, which the allocator does not hand out yet. Only ports the
//             service declares (endpoint spec) are balanced.
//   failures  Attach either completes or removes what it built (endpoints, DNS, table), and the
//             error names the network and the reason (the task is then REJECTED).
//   restore   after an agent restart the first network use adopts the sandboxes of networks in
//             the assignment set with the endpoints of this node's tasks (OverlayDriver::Restore)
//             and purges every other sandbox; Attach of an adopted container keeps its existing
//             interfaces (observed in its namespace) and only re-serves DNS and the LB table.
//
//   ingress   when the ingress network is assigned and the dispatcher reports this node's
//             ingress sandbox ("ingress-sbox-<node id>": its Node.attachments address and MAC),
//             lb::Mesh builds the ingress sandbox (eth0 on the ingress overlay, eth1 on the
//             gateway bridge `shoal_gwbridge` 172.18.0.0/16) and the node's `shoal-ingress`
//             table: ingress-mode published ports answer on every node's addresses and reach
//             the service's running tasks on any node. Rebuilt from scratch when the agent
//             starts (published ports pause while the agent is down; task endpoints do not).
//
// Thread safety: every method may be called from any thread (one mutex serializes the kernel
// work; the drivers are not thread-safe).
#pragma once

#include <sys/types.h>

#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "agent/agent.h"
#include "api/dispatcher.pb.h"
#include "base/random.h"
#include "dns/records.h"
#include "dns/resolver.h"
#include "kernel/netlink/libnl_netlink.h"
#include "kernel/netlink/netns.h"
#include "kernel/nft/nft.h"
#include "lb/mesh.h"
#include "netdrv/bridge.h"
#include "netdrv/overlay.h"
#include "netdrv/reconcile_loop.h"

namespace shoal::agent {

// The container's /etc/resolv.conf when it uses the embedded resolver: nameserver 127.0.0.11,
// the spec's search domains and options, and ndots:0 (as Docker writes it).
std::string EmbeddedResolvConf(const api::ContainerSpec& c);

class Networking {
 public:
  explicit Networking(const AgentOptions& options);
  ~Networking();  // stops the resolver and the reconcile loop; kernel state stays (live restore)
  Networking(const Networking&) = delete;
  Networking& operator=(const Networking&) = delete;

  // The network/endpoint/service items of one assignments message (all its parts); `complete`
  // replaces the whole state. Reconverges peers, DNS records and every container's LB table.
  void Apply(bool complete, const std::vector<api::AssignmentChange>& changes);

  // UNAVAILABLE while the state of one of the task's networks has not arrived yet.
  absl::Status Ready(const api::Task& task) const;
  // Plugs the container (PID `pid`, its namespace /proc/<pid>/ns/net) into the task's networks,
  // serves its DNS and installs its LB table. Idempotent (an adopted container keeps its
  // interfaces). On error nothing of it is left.
  absl::Status Attach(const api::Task& task, pid_t pid);
  // Removes the task's endpoints, DNS and (when it was the last user) its networks. Idempotent.
  absl::Status Detach(const std::string& task_id);

  // The node's id (from the session): its ingress sandbox's record is
  // "ingress-sbox-<node id>" on the ingress network.
  void SetNodeId(const std::string& node_id);

  // For tests and diagnostics: networks created on this node.
  std::vector<std::string> NetworksCreated() const;

 private:
  struct Attached {
    pid_t pid = 0;
    std::vector<std::string> networks;  // ids, interface order
    bool dns = false;
  };

  absl::Status EnsureDriver(const std::string& vtep);                  // requires mu_
  absl::Status EnsureNetwork(const std::string& id);                   // requires mu_
  void ReleaseUnused();                                                // requires mu_
  void SyncPeers();                                                    // requires mu_
  void SyncDns();                                                      // requires mu_
  absl::Status SyncLb(const std::string& task_id, const Attached& a);  // requires mu_
  void PurgeSandboxes();                                               // requires mu_
  void SyncIngress();                                                  // requires mu_
  absl::Status EnableIngress(const api::Network& ingress, const api::EndpointRecord& own);
  void DisableIngress(bool release = true);               // requires mu_
  absl::Status DetachLocked(const std::string& task_id);  // requires mu_
  std::vector<std::string> Upstreams(const api::Task& task) const;

  const AgentOptions& opts_;
  mutable std::mutex mu_;
  // Desired state from the assignments.
  std::map<std::string, api::Network> networks_;
  std::map<std::string, api::EndpointRecord> endpoints_;  // "<task id>/<network id>"
  std::map<std::string, api::Service> services_;
  bool seen_complete_ = false;
  // Kernel state.
  kernel::LibnlNetlinkFactory netlink_;
  kernel::BindMountNetnsStore sandboxes_;
  base::SystemRandom random_;
  std::string vtep_;
  std::unique_ptr<netdrv::OverlayDriver> overlay_;
  std::mutex driver_mu_;  // the reconcile loop's lock (always taken after mu_)
  std::unique_ptr<netdrv::ReconcileLoop> loop_;
  std::set<std::string> created_;  // networks created in the driver
  std::map<std::string, Attached> attached_;
  // Routing mesh: the gateway bridge, the node's nft table, lb::Mesh with the ingress sandbox.
  std::string node_id_;
  std::unique_ptr<kernel::nft::Nft> node_nft_;
  std::unique_ptr<netdrv::BridgeDriver> gw_;
  std::unique_ptr<lb::Mesh> mesh_;  // destroyed before the drivers it uses
  std::string ingress_;             // ingress network id while the mesh is enabled
  // DNS.
  dns::RecordTable table_;
  std::unique_ptr<dns::Resolver> resolver_;
  std::map<std::string, std::set<std::string>> dns_services_;  // network name -> service names
  std::map<std::string, std::set<std::string>> dns_tasks_;     // network name -> task ids
};

}  // namespace shoal::agent
