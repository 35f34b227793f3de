// macvlan driver (DESIGN.md §5, dataplane.md §2): containers get a macvlan child of a parent link
// of the node, created directly inside the container namespace.
//
// Options: "parent" (required; "eth0" or "eth0.<vid>": the 802.1q link is created when missing
// and removed with the last network that needed it), "mode" = bridge (default) | private | vepa
// | passthru. passthru takes its parent exclusively. macvlan is node-local: SetPeers accepts only
// an empty set; no published ports (dataplane.md §2).
#pragma once

#include <map>
#include <memory>
#include <string>

#include "base/random.h"
#include "base/unique_fd.h"
#include "kernel/netlink/netlink.h"
#include "netdrv/driver.h"

namespace shoal::netdrv {

struct MacvlanConfig {
  int node_netns_fd = -1;
};

class MacvlanDriver : public Driver {
 public:
  MacvlanDriver(const MacvlanConfig& config, kernel::NetlinkFactory& netlink, base::Random& random)
      : config_(config), netlink_(netlink), random_(random) {}

  absl::Status CreateNetwork(const NetworkSpec& spec) override;
  absl::Status DeleteNetwork(absl::string_view network_id) override;
  absl::StatusOr<Endpoint> CreateEndpoint(const EndpointSpec& spec) override;
  absl::Status DeleteEndpoint(absl::string_view network_id, absl::string_view endpoint_id) override;
  absl::Status SetPeers(absl::string_view network_id, const std::vector<Peer>& peers) override;
  absl::Status Reconcile() override;

 private:
  struct Ep {
    Endpoint ep;
    base::UniqueFd netns;  // dup of the container namespace, to delete the link later
  };
  struct Network {
    NetworkSpec spec;
    std::string parent;  // link name in the node namespace
    kernel::MacvlanMode mode = kernel::MacvlanMode::kBridge;
    bool created_vlan = false;  // this network created `parent` (eth0.N)
    std::map<std::string, Ep> endpoints;
  };

  MacvlanConfig config_;
  kernel::NetlinkFactory& netlink_;
  base::Random& random_;
  std::map<std::string, Network, std::less<>> networks_;
};

// Splits "eth0.10" into ("eth0", 10); "eth0" gives ("eth0", 0). INVALID_ARGUMENT for a VLAN id
// outside 1..4094 or an empty name.
absl::StatusOr<std::pair<std::string, uint16_t>> ParseParent(absl::string_view parent);

}  // namespace shoal::netdrv
