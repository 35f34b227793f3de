// The node's service load balancing (DESIGN.md §5, reference/dataplane.md §4): per network an
// LB sandbox holding the service VIPs, the routing mesh (published ports on every node), and
// host-mode published ports.
//
//   client container ──VIP:port──> lb-<net> sandbox (DNAT + masquerade) ──overlay──> task
//   anyone ──<node addr>:P──> node nft table `ip shoal-ingress` (fib daddr type local,
//        proto . port in @ingress-ports: DNAT to the ingress sandbox's gateway address;
//        flows from 127.0.0.0/8 are masqueraded onto the bridge)
//     ──gateway bridge──> ingress-sbox (DNAT to <task ingress ip>:<target port> + masquerade)
//     ──ingress overlay──> task on any node
//   anyone ──<node addr>:P (host mode)──> the bridge driver's DNAT ──> the local task only
//
// Level-triggered: SetServices() takes the full desired set of services this node serves and
// converges every sandbox, the node table and the host-mode mappings to it. Validation happens
// first and for everything (nothing is touched when any service is invalid); then each sandbox
// applies its change in one atomic nft batch. If a kernel step fails the error is returned and
// the next SetServices() converges from what is there.
//
// Graceful drain: a task with draining=true keeps its place but weight 0, so it gets no new
// flows while established ones (conntrack NAT bindings) finish; a task that disappears is
// removed the same way, and its UDP conntrack entries are deleted (lb/nft_backend.h). A service
// whose tasks are all draining rejects new connections (the VIP / published port is local to
// the sandbox and nothing listens there: TCP RST, ICMP port unreachable) instead of hanging.
//
// The ingress sandbox on the node's egress bridge needs the bridge driver's network to exist
// (its masquerade and forwarding). Published ports also answer on the node's 127.0.0.1 (as
// Docker's do): route_localnet=1 on the gateway bridge lets a loopback-sourced flow be DNATed
// onto it, and the node table masquerades such flows to the bridge's address.
// Thread safety: not thread-safe (the agent serializes calls).
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "kernel/nft/nft.h"
#include "lb/sandbox.h"
#include "lb/service.h"
#include "netdrv/bridge.h"

namespace shoal::lb {

enum class PublishMode : uint8_t { kIngress, kHost };
enum class EndpointMode : uint8_t { kVip, kDnsrr };

struct PortConfig {
  Protocol protocol = Protocol::kTcp;
  uint16_t target_port = 0;     // the tasks' port; also the VIP's port
  uint16_t published_port = 0;  // 0: not published
  PublishMode mode = PublishMode::kIngress;
};

struct TaskEndpoint {
  std::string id;
  std::string ip;              // address on the service's network
  std::string ingress_ip;      // address on the ingress network (ingress-published services)
  bool local = false;          // runs on this node
  std::string gw_endpoint_id;  // host mode, local tasks: its endpoint on the gateway bridge
  bool draining = false;       // no new flows; established ones finish
};

struct ServiceConfig {
  std::string name;  // [a-z0-9_-], 1..48
  std::string network_id;
  EndpointMode endpoint_mode = EndpointMode::kVip;
  std::string vip;  // kVip: inside the network's subnet; kDnsrr: empty
  std::vector<PortConfig> ports;
  std::vector<TaskEndpoint> tasks;
  Scheduler scheduler = Scheduler::kRandom;
  // false: only the published ports are served here; the VIP is balanced elsewhere (e.g. in
  // each client's own namespace), so no LB sandbox on `network_id` is needed.
  bool balance_vip = true;
};

struct LbNetworkSpec {
  std::string network_id;
  kernel::IpPrefix address;  // the LB sandbox's address on the network (subnet prefix length)
};

struct IngressSpec {
  std::string network_id;    // the `ingress` overlay network
  kernel::IpPrefix address;  // ingress-sbox's address on it
  // ingress-sbox's address on MeshConfig::gateway_network_id, e.g. 172.18.0.2/16
  kernel::IpPrefix gw_address;
  // eth0's MAC, when other nodes are told one (their peer rows); unset: random.
  std::optional<kernel::MacAddr> mac;
};

struct MeshConfig {
  int node_netns_fd = -1;
  SandboxDeps deps;
  netdrv::Driver* overlay = nullptr;        // service networks and the ingress network
  netdrv::BridgeDriver* gateway = nullptr;  // ingress sandbox leg + host-mode ports (optional)
  std::string gateway_network_id;           // the gateway bridge network of that driver
  std::string gateway_bridge = "shoal_gwbridge";  // its bridge device in the node namespace
  kernel::nft::Nft* node_nft = nullptr;           // the node namespace (routing-mesh DNAT)
  std::string node_table = "shoal-ingress";
  std::string sandbox_prefix = "lb-";  // LB sandbox namespaces: <prefix><network id>
  std::string ingress_sandbox = "ingress-sbox";
  NftBackendOptions nft;  // per sandbox (table name, slots, Maglev seed)
};

class Mesh {
 public:
  static absl::StatusOr<std::unique_ptr<Mesh>> Create(MeshConfig config);
  ~Mesh();  // Destroy(), errors ignored

  // The LB sandbox of a network on this node. ALREADY_EXISTS if present.
  absl::Status AddNetwork(const LbNetworkSpec& spec);
  // FAILED_PRECONDITION while services of the network are applied; NOT_FOUND if absent.
  absl::Status RemoveNetwork(const std::string& network_id);
  // The ingress sandbox and the node's routing-mesh table. ALREADY_EXISTS if enabled.
  absl::Status EnableIngress(const IngressSpec& spec);

  // Pure check of a desired service set against this node's networks (errors name the service
  // and field): VIP outside the subnet, port conflicts, empty task set, dnsrr with an
  // ingress-published port, unknown network, ...
  absl::Status Validate(const std::vector<ServiceConfig>& services) const;
  absl::Status SetServices(const std::vector<ServiceConfig>& services);
  // Level-triggered repair of what the last SetServices programmed (sandbox tables and VIPs,
  // the node table); safe to call periodically. Host-mode DNAT is the bridge driver's
  // (BridgeDriver::Reconcile).
  absl::Status Reconcile();

  // Tears everything down (sandboxes, node table, host-mode mappings). Idempotent.
  absl::Status Destroy();

  // For tests and diagnostics.
  LbSandbox* sandbox(const std::string& network_id);
  LbSandbox* ingress_sandbox() { return ingress_.get(); }

 private:
  struct Desired {
    std::map<std::string, std::vector<Service>> by_network;  // VIP services per LB sandbox
    std::vector<Service> ingress;                            // published ports (ingress sbox)
    std::set<std::pair<uint8_t, uint16_t>> ingress_ports;    // node table elements
    std::vector<netdrv::PortMapping> host_ports;
  };
  explicit Mesh(MeshConfig config) : config_(std::move(config)) {}
  absl::StatusOr<Desired> Plan(const std::vector<ServiceConfig>& services) const;
  absl::Status SyncNodeTable(const std::set<std::pair<uint8_t, uint16_t>>& ports);
  std::string NetworkOfIngress() const { return ingress_spec_ ? ingress_spec_->network_id : ""; }

  MeshConfig config_;
  std::map<std::string, std::unique_ptr<LbSandbox>> sandboxes_;
  std::unique_ptr<LbSandbox> ingress_;
  std::optional<IngressSpec> ingress_spec_;
  std::vector<netdrv::PortMapping> host_ports_;
  std::set<std::pair<uint8_t, uint16_t>> ingress_ports_;
  bool node_table_ = false;
};

// The filter a task's namespace gets on its ingress leg (reference/dataplane.md §4.3 step 4:
// Docker drops everything to the ingress address but the published target ports):
//
//   table ip shoal-task-ingress
//     chain input (filter, input, 0):
//       iifname <ifname> ct state established,related accept
//       iifname <ifname> meta l4proto . th dport @published accept
//       iifname <ifname> drop
//
// `targets` = (protocol, target port) of the task's ingress-published ports. Apply it with
// kernel::nft::SyncTable on the task's namespace (level-triggered).
kernel::nft::Table TaskIngressFilter(const std::string& ifname,
                                     const std::set<std::pair<uint8_t, uint16_t>>& targets);

// Applies `want` to `sandbox` as one change (upsert what differs, remove what is gone).
absl::Status Converge(LbSandbox& sandbox, const std::vector<Service>& want);

}  // namespace shoal::lb
