// Overlay driver (DESIGN.md §5, reference/dataplane.md §1, §10): per network a sandbox network
// namespace `ov-<id[:12]>` holding `br0` (the subnet gateway address) and `vxlan0` (VNI from the
// spec, UDP port from the config, learning off, proxy ARP on, local VTEP pinned to the node's
// data-path address, underlay link set). vxlan0 is created from the node namespace straight into
// the sandbox, so its UDP socket lives in the node namespace. Container eth0 = a veth whose
// sandbox end `v<endpoint id[:12]>` is a br0 port. Remote endpoints are permanent FDB + ARP rows.
//
// MTU = MTU of the link holding the data-path address - 50 (VXLAN over IPv4; 70 over IPv6), or the
// spec's MTU if smaller; below 1280 (the IPv6 minimum, RFC 8200) the network is refused.
//
// Level-triggered: Reconcile() re-creates a missing/wrong vxlan0 or br0 state and re-programs
// FDB/ARP rows from the desired peers. Restore() after a restart adopts sandboxes of known
// networks and purges the rest (and stray endpoint veths inside adopted ones).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/random.h"
#include "base/unique_fd.h"
#include "kernel/netlink/netlink.h"
#include "kernel/netlink/netns.h"
#include "netdrv/driver.h"

namespace shoal::netdrv {

struct OverlayConfig {
  int node_netns_fd = -1;      // the node's namespace (a lab host); -1 = the caller's
  kernel::IpAddr vtep;         // data-path address (must be on a link of the node namespace)
  uint16_t vxlan_port = 4789;  // 1024..49151 like `swarm init --data-path-port`
};

inline constexpr uint32_t kVxlanOverhead = 50;   // inner Ethernet 14 + IPv4 20 + UDP 8 + VXLAN 8
inline constexpr uint32_t kVxlanOverhead6 = 70;  // the same over an IPv6 underlay (IPv6 40)
inline constexpr uint32_t kMinOverlayMtu = 1280;

class OverlayDriver : public Driver {
 public:
  // `sandboxes` holds the sandbox namespaces (a directory per node in a lab).
  static absl::StatusOr<std::unique_ptr<OverlayDriver>> Create(const OverlayConfig& config,
                                                               kernel::NetlinkFactory& netlink,
                                                               kernel::NetnsStore& sandboxes,
                                                               base::Random& random);

  absl::Status CreateNetwork(const NetworkSpec& spec) override;
  absl::Status DeleteNetwork(absl::string_view network_id) override;
  absl::StatusOr<Endpoint> CreateEndpoint(const EndpointSpec& spec) override;
  absl::Status DeleteEndpoint(absl::string_view network_id, absl::string_view endpoint_id) override;
  absl::Status SetPeers(absl::string_view network_id, const std::vector<Peer>& peers) override;
  absl::Status Reconcile() override;

  // After a restart: adopt sandboxes of `known` networks (keeping endpoints whose ids are listed
  // in `known_endpoints[network id]`), delete every other `ov-` sandbox and stray veth.
  absl::Status Restore(const std::vector<NetworkSpec>& known,
                       const std::map<std::string, std::vector<std::string>>& known_endpoints);

  static std::string SandboxName(absl::string_view network_id);
  // Sandbox fd of a network (for tests and diagnostics); NOT_FOUND if unknown.
  absl::StatusOr<int> SandboxFd(absl::string_view network_id) const;
  absl::StatusOr<uint32_t> NetworkMtu(absl::string_view network_id) const;

 private:
  struct Network {
    NetworkSpec spec;
    uint32_t mtu = 0;
    base::UniqueFd sandbox;
    std::map<std::string, Endpoint> endpoints;
    std::vector<Peer> peers;
  };

  OverlayDriver(const OverlayConfig& config, kernel::NetlinkFactory& netlink,
                kernel::NetnsStore& sandboxes, base::Random& random)
      : config_(config), netlink_(netlink), sandboxes_(sandboxes), random_(random) {}

  absl::Status ValidateNetwork(const NetworkSpec& spec) const;
  uint32_t Overhead() const { return config_.vtep.is_v4() ? kVxlanOverhead : kVxlanOverhead6; }
  absl::StatusOr<std::pair<int, uint32_t>> Underlay() const;  // (ifindex, mtu) of the VTEP link
  absl::Status BuildSandbox(Network& net, int underlay_index);
  absl::Status ReconcileNetwork(Network& net);
  absl::Status ReconcilePeers(Network& net, kernel::Netlink& sb);
  static std::string VethName(absl::string_view endpoint_id);
  void EmptySandbox(int fd);

  OverlayConfig config_;
  kernel::NetlinkFactory& netlink_;
  kernel::NetnsStore& sandboxes_;
  base::Random& random_;
  std::map<std::string, Network, std::less<>> networks_;
};

}  // namespace shoal::netdrv
