// One interface for every network driver (DESIGN.md §5): overlay (VXLAN), bridge (local egress
// bridge shoal_gwbridge), macvlan.
//
// Addresses come from the caller (the agent allocates them with ipam/ or receives them from the
// manager); drivers only program the kernel. Every mutating call either completes or leaves no
// link, namespace or row it created behind, and errors name the field and the reason.
//
// Thread safety: drivers are NOT thread-safe; the agent serializes calls per driver.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "kernel/netlink/netlink.h"
#include "kernel/netlink/types.h"

namespace shoal::netdrv {

struct NetworkSpec {
  std::string id;           // stable network id (names are derived from it)
  kernel::IpPrefix subnet;  // e.g. 10.0.1.0/24
  kernel::IpAddr gateway;   // overlay: br0's address; bridge: the bridge's address
  uint32_t vni = 0;         // overlay only: 1 .. 2^24-1
  uint32_t mtu = 0;         // 0: derive from the underlay
  std::map<std::string, std::string> options;  // macvlan: "parent", "mode"
};

struct EndpointSpec {
  std::string id;
  std::string network_id;
  int netns_fd = -1;                   // the container's network namespace
  std::string ifname = "eth0";         // name inside the container
  kernel::IpPrefix address;            // container address with the subnet's prefix length
  std::optional<kernel::MacAddr> mac;  // unset: a random locally administered MAC
  bool default_route = false;          // add "default via <network gateway>" in the container
};

struct Endpoint {
  std::string id;
  std::string ifname;
  kernel::MacAddr mac;
  kernel::IpPrefix address;
  uint32_t mtu = 0;
};

// A remote endpoint of an overlay network, as the manager's store describes it.
struct Peer {
  std::string endpoint_id;
  kernel::IpAddr ip;
  kernel::MacAddr mac;
  kernel::IpAddr vtep;  // the remote node's data-path address
  auto operator<=>(const Peer&) const = default;
};

class Driver {
 public:
  virtual ~Driver() = default;
  virtual absl::Status CreateNetwork(const NetworkSpec& spec) = 0;       // ALREADY_EXISTS if known
  virtual absl::Status DeleteNetwork(absl::string_view network_id) = 0;  // NOT_FOUND if unknown
  virtual absl::StatusOr<Endpoint> CreateEndpoint(const EndpointSpec& spec) = 0;
  virtual absl::Status DeleteEndpoint(absl::string_view network_id,
                                      absl::string_view endpoint_id) = 0;
  // The full desired set of remote peers of a network (level-triggered: rows not in the set are
  // removed). Drivers without peers accept only an empty set.
  virtual absl::Status SetPeers(absl::string_view network_id, const std::vector<Peer>& peers) = 0;
  // Observes the kernel and converges it to the desired state (missing rows/links come back,
  // stray ones go). Safe to call at any time, e.g. periodically and on link events.
  virtual absl::Status Reconcile() = 0;
};

// A random locally administered unicast MAC (02:xx:..): endpoint MACs are not derived from IPs,
// so IP reuse never reuses a MAC (dataplane.md §10.12).
kernel::MacAddr RandomMac(uint64_t random);

// Plugs a container into a bridge, as the bridge and overlay drivers both do: a veth named
// `host_ifname` enslaved to `bridge_index` in the namespace of `host`, its peer created
// directly in the container's namespace as spec.ifname with `mac` and `mtu`, the address, and
// "default via `gateway`" when spec.default_route. Refuses (before creating anything) an address
// whose subnet overlaps one the container already has (CheckNoOverlapInContainer). On failure the
// veth is deleted (its container end goes with it), so nothing half-built is left; the error names
// the endpoint.
absl::Status AttachVethToBridge(kernel::NetlinkFactory& factory, kernel::Netlink& host,
                                int bridge_index, const std::string& host_ifname,
                                const EndpointSpec& spec, const kernel::MacAddr& mac, uint32_t mtu,
                                const kernel::IpAddr& gateway);

// A container attached to two networks whose subnets overlap would route ambiguously (the kernel
// accepts both connected routes): INVALID_ARGUMENT naming the container's conflicting address or
// route. `ctr` is bound to the container's namespace; nothing is changed.
absl::Status CheckNoOverlapInContainer(kernel::Netlink& ctr, const EndpointSpec& spec);

// Validation shared by the drivers; messages name the field.
absl::Status ValidateEndpointSpec(const EndpointSpec& spec, const NetworkSpec& network);

}  // namespace shoal::netdrv
