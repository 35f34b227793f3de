// LB sandboxes (DESIGN.md §5, reference/dataplane.md §1.9, §4.1–4.3): a network namespace that
// load-balances for one network on one node.
//
//   * LB sandbox "lb-<network>": one leg (eth0) on an overlay network. Every service VIP of that
//     network is a /32 address on eth0, so the sandbox answers ARP for it on the local br0 (the
//     VIP is never programmed as a peer, so remote nodes never see the ARP: each node's clients
//     reach their own node's LB sandbox). A new flow to VIP:port is DNATed to a backend task and
//     masqueraded to the sandbox's own address, so the reply comes back through it (NAT mode).
//   * Ingress sandbox "ingress-sbox": eth0 on the `ingress` overlay, eth1 on the local gateway
//     bridge with a default route. The node's published ports are DNATed to it (lb/mesh.h); here
//     a flow to <any local address>:<published port> is DNATed to a task's ingress address and
//     target port and masqueraded to the sandbox's ingress address.
//
// Why NAT and not DSR: the nft dataplane translates at L3 (DNAT + conntrack), which works for
// any backend namespace without touching it; DSR needs the VIP on every task's loopback, an L2
// rewrite to the backend's MAC, and breaks when the client and backend are on different nodes'
// sandboxes behind proxy ARP. docs/architecture.md has the full reasoning.
//
// The sandbox is built in one go (namespace, sysctls, endpoints through the netdrv drivers'
// public API, nft table) and anything built is removed if a later step fails. Destroy() removes
// the endpoints (veths) and the namespace; its nft table and conntrack entries die with it.
// Thread safety: not thread-safe (the mesh serializes calls).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "base/unique_fd.h"
#include "kernel/netlink/netlink.h"
#include "kernel/netlink/netns.h"
#include "kernel/nft/nft.h"
#include "lb/conntrack.h"
#include "lb/nft_backend.h"
#include "lb/service.h"
#include "netdrv/driver.h"

namespace shoal::lb {

using NftOpener = std::function<absl::StatusOr<std::unique_ptr<kernel::nft::Nft>>(int netns_fd)>;
using ConntrackOpener =
    std::function<absl::StatusOr<std::unique_ptr<ConntrackCleaner>>(int netns_fd)>;
using SysctlFn =
    std::function<absl::Status(int netns_fd, absl::string_view key, absl::string_view value)>;

// Kernel access for sandboxes; the real ones by default (see RealSandboxDeps()).
struct SandboxDeps {
  kernel::NetnsStore* store = nullptr;  // where sandbox namespaces live
  kernel::NetlinkFactory* netlink = nullptr;
  NftOpener open_nft;
  ConntrackOpener open_conntrack;  // empty: no conntrack cleanup
  SysctlFn sysctl;
};
SandboxDeps RealSandboxDeps(kernel::NetnsStore* store, kernel::NetlinkFactory* netlink);

// One leg of a sandbox: an endpoint created through a netdrv driver.
struct SandboxLeg {
  netdrv::Driver* driver = nullptr;
  std::string network_id;
  std::string endpoint_id;
  std::string ifname = "eth0";
  kernel::IpPrefix address;  // the sandbox's address, with the subnet's prefix length
  bool default_route = false;
  std::optional<kernel::MacAddr> mac;  // unset: the driver picks a random one
};

struct SandboxSpec {
  std::string name;              // namespace name in the store
  std::vector<SandboxLeg> legs;  // legs[0] is the LB network: VIPs must lie in its subnet
  NftBackendOptions nft;         // masquerade_oif is set to legs[0].ifname
};

class LbSandbox {
 public:
  static absl::StatusOr<std::unique_ptr<LbSandbox>> Create(const SandboxDeps& deps,
                                                           SandboxSpec spec);
  ~LbSandbox();  // Destroy(), errors ignored
  LbSandbox(const LbSandbox&) = delete;
  LbSandbox& operator=(const LbSandbox&) = delete;

  // Applies a change atomically (see lb::Backend). VIP frontends must lie inside legs[0]'s
  // subnet and differ from the sandbox's own addresses (InvalidArgument naming service and
  // field). VIP addresses are added before and removed after the nft batch; a failed batch
  // removes the ones it added.
  absl::Status Apply(const Change& change);
  std::vector<Service> Services() const { return backend_->Services(); }
  // Level-triggered repair: re-applies the nft table from the recorded services (a table or
  // element removed by hand comes back) and re-adds missing VIP addresses.
  absl::Status Reconcile();
  // Removes the endpoints and the namespace. Idempotent.
  absl::Status Destroy();

  // InvalidArgument (naming service and field) unless a VIP frontend lies inside legs[0]'s
  // subnet and is not one of the sandbox's own addresses. Published frontends pass.
  absl::Status CheckVip(const Service& s) const;

  int fd() const { return fd_.get(); }
  const SandboxSpec& spec() const { return spec_; }
  // The endpoints created for the legs (peers of other nodes need their IP and MAC).
  const std::vector<netdrv::Endpoint>& endpoints() const { return endpoints_; }

 private:
  LbSandbox(const SandboxDeps& deps, SandboxSpec spec) : deps_(deps), spec_(std::move(spec)) {}
  absl::Status Build();
  absl::Status SetVips(const std::map<std::string, int>& want, std::vector<std::string>* added);

  SandboxDeps deps_;
  SandboxSpec spec_;
  base::UniqueFd fd_;
  bool created_ns_ = false;
  std::vector<const SandboxLeg*> legs_built_;
  std::vector<netdrv::Endpoint> endpoints_;
  std::unique_ptr<kernel::Netlink> nl_;
  int vip_link_ = 0;
  std::map<std::string, int> vips_;  // VIP -> number of services using it
  std::unique_ptr<NftBackend> backend_;
};

}  // namespace shoal::lb
