// The cluster allocator (DESIGN.md §6): network subnets and VNIs, service VIPs and ingress
// published ports, task addresses. Runs on the leader; its in-memory state is rebuilt from the
// store (Restore) so a new leader continues exactly where the old one stopped.
//
//   networks  subnet from the default pool (10.0.0.0/8 in /24s) or as requested, gateway,
//             range, reserved addresses; overlay networks get a VNI from 4096 up
//             (driver_state.options["vni"]); the ingress network is an ordinary overlay
//             network flagged spec.ingress (at most one)
//   services  ingress-mode published ports: requested ones must be free cluster-wide (per
//             protocol), 0 means a dynamic port from 30000-32767; a VIP on every attached
//             network in VIP mode, plus one on the ingress network when ingress ports exist
//   tasks     one address per attached network (plus ingress), next-fit
// Exhaustion and conflicts are errors that name what ran out; the component writes them on
// the service (allocation_error) or task (status.err) so they are visible, never a silent
// stall. Every failed call leaves the state unchanged.
//
// Thread safety: none (the leader loop owns it).
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>

#include "absl/status/statusor.h"
#include "api/objects.pb.h"
#include "ipam/ipam.h"

namespace shoal::manager::allocator {

namespace api = ::shoal::api::v1;

struct AllocatorConfig {
  ipam::IpamConfig ipam;  // default pools when empty
  uint32_t vni_first = 4096;
  uint32_t vni_last = (1u << 24) - 1;
  uint32_t dynamic_port_first = 30000;
  uint32_t dynamic_port_last = 32767;
};

class Allocator {
 public:
  static absl::StatusOr<Allocator> Create(AllocatorConfig config = {});

  // Network: fills `ipam` (subnet, gateway, range per config) and, for overlay networks,
  // driver_state (vni). Already allocated networks are returned unchanged (and re-reserved
  // by Restore).
  absl::StatusOr<api::Network> AllocateNetwork(const api::Network& network);
  void ReleaseNetwork(const api::Network& network);
  bool IsAllocated(const api::Network& network) const;

  // Service: fills endpoint (spec copy, ports with published ports, VIPs). `networks` resolves
  // the service's attachments (by id) and must contain every network it names, allocated.
  absl::StatusOr<api::Service> AllocateService(const api::Service& service,
                                               const std::map<std::string, api::Network>& networks);
  void ReleaseService(const api::Service& service);

  // Task: one address per network of the task's attachments (and ingress when its service
  // publishes ingress ports). `networks` as above.
  absl::StatusOr<api::Task> AllocateTask(const api::Task& task, const api::Service* service,
                                         const std::map<std::string, api::Network>& networks);
  void ReleaseTask(const api::Task& task);

  // Node: its address on the ingress network (Node.attachments; the node's ingress sandbox,
  // which the routing mesh masquerades to, so every node must be able to reach it). Returns
  // the node with the attachment added when it had none and an allocated ingress network
  // exists; attachments on networks that are gone are dropped (and released).
  absl::StatusOr<api::Node> AllocateNode(const api::Node& node);
  bool NodeNeedsAllocation(const api::Node& node) const;
  void ReleaseNode(const api::Node& node);
  absl::Status RestoreNode(const api::Node& node);

  // Re-reserves what the store records as allocated. Call with every network first, then
  // services and tasks. Conflicting records (two tasks with one address) are reported.
  absl::Status RestoreNetwork(const api::Network& network);
  absl::Status RestoreService(const api::Service& service);
  absl::Status RestoreTask(const api::Task& task);

  const std::string& ingress_network_id() const { return ingress_id_; }

 private:
  explicit Allocator(AllocatorConfig c, ipam::Ipam i)
      : config_(std::move(c)), ipam_(std::move(i)) {}
  absl::StatusOr<ipam::Prefix> SubnetOf(const api::Network& network) const;
  absl::StatusOr<std::string> AllocateAddress(const api::Network& network,
                                              std::optional<ipam::IpAddr> want = std::nullopt);
  void ReleaseAddress(const std::string& network_id, const std::string& cidr);

  AllocatorConfig config_;
  ipam::Ipam ipam_;
  std::set<uint32_t> vnis_;
  uint32_t next_vni_ = 0;
  // Ingress published ports: (protocol << 16 | port) -> service id.
  std::map<uint32_t, std::string> ports_;
  uint32_t next_port_ = 0;
  std::map<std::string, ipam::Prefix> subnets_;  // network id -> subnet
  std::string ingress_id_;
};

}  // namespace shoal::manager::allocator
