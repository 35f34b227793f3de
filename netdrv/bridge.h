// Bridge driver (DESIGN.md §5): the local egress bridge `shoal_gwbridge` giving containers a
// north-south interface with nftables masquerade, and host-mode published ports (DNAT from any
// local address of the node to the container).
//
// nftables state lives in one table (`ip shoal-gw` by default) owned by this driver and is
// reconciled level-triggered: the desired table is rebuilt from the driver's state and applied
// with kernel/nft's PlanTable (one atomic batch; a table deleted by hand comes back on
// Reconcile()). ip_forward is switched on in the node namespace.
//
//   chain postrouting (nat, srcnat):  ip saddr <subnet> oifname != <bridge> masquerade
//   chain prerouting  (nat, dstnat):  fib daddr type local <proto> dport <P> dnat to <ip>:<port>
//   chain output      (nat, dstnat):  same, for clients on the node itself
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/random.h"
#include "base/unique_fd.h"
#include "kernel/netlink/netlink.h"
#include "kernel/nft/nft.h"
#include "netdrv/driver.h"

namespace shoal::netdrv {

using SysctlWriter =
    std::function<absl::Status(int netns_fd, absl::string_view key, absl::string_view value)>;

struct BridgeConfig {
  int node_netns_fd = -1;
  std::string bridge_name = "shoal_gwbridge";  // overridable per network: option "bridge"
  std::string table = "shoal-gw";
  SysctlWriter sysctl;  // unset: kernel::WriteSysctl
};

struct PortMapping {
  std::string endpoint_id;
  std::string network_id;
  uint8_t protocol = 6;  // 6 tcp, 17 udp
  uint16_t host_port = 0;
  uint16_t container_port = 0;
  auto operator<=>(const PortMapping&) const = default;
};

class BridgeDriver : public Driver {
 public:
  // `nft` is bound to the node namespace (kernel::nft::OpenNft(node fd) or a FakeNft).
  static absl::StatusOr<std::unique_ptr<BridgeDriver>> Create(const BridgeConfig& config,
                                                              kernel::NetlinkFactory& netlink,
                                                              kernel::nft::Nft& nft,
                                                              base::Random& random);

  absl::Status CreateNetwork(const NetworkSpec& spec) override;
  absl::Status DeleteNetwork(absl::string_view network_id) override;
  absl::StatusOr<Endpoint> CreateEndpoint(const EndpointSpec& spec) override;
  absl::Status DeleteEndpoint(absl::string_view network_id, absl::string_view endpoint_id) override;
  absl::Status SetPeers(absl::string_view network_id, const std::vector<Peer>& peers) override;
  absl::Status Reconcile() override;

  // Host-mode published port. ALREADY_EXISTS if the (protocol, host port) is taken.
  absl::Status PublishPort(const PortMapping& mapping);
  absl::Status UnpublishPort(const PortMapping& mapping);

  // The nftables table this driver wants (for tests and diagnostics).
  kernel::nft::Table DesiredTable() const;

 private:
  struct Network {
    NetworkSpec spec;
    std::string bridge;
    uint32_t mtu = 1500;
    std::map<std::string, Endpoint> endpoints;
  };
  BridgeDriver(const BridgeConfig& config, kernel::NetlinkFactory& netlink, kernel::nft::Nft& nft,
               base::Random& random);
  absl::Status SyncNft();
  absl::Status EnsureBridge(const Network& net);
  static std::string VethName(absl::string_view endpoint_id);

  BridgeConfig config_;
  kernel::NetlinkFactory& netlink_;
  kernel::nft::Nft& nft_;
  base::Random& random_;
  std::map<std::string, Network, std::less<>> networks_;
  std::vector<PortMapping> ports_;
};

}  // namespace shoal::netdrv
