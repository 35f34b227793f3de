// Pure planning of an overlay's FDB + neighbour rows (DESIGN.md §3 "plan"): desired remote peers
// + the rows observed on the vxlan device -> the operations that make the kernel match.
//
// Rules: only peers whose VTEP differs from the local VTEP are programmed; a permanent
// AF_BRIDGE/NTF_SELF FDB row (MAC -> VTEP) and a permanent ARP row (IP -> MAC) per peer; when the
// desired set holds several peers with the same MAC or IP (a task moving between nodes), the one
// with the smallest endpoint id wins, deterministically (dataplane.md §10.8); rows on the vxlan
// device that no peer wants are deleted, together with the bridge's learned (NTF_MASTER) row for
// that MAC on the vxlan port (§10.10).
#pragma once

#include <vector>

#include "kernel/netlink/netlink.h"
#include "netdrv/driver.h"

namespace shoal::netdrv {

struct PeerOps {
  std::vector<kernel::Neighbor> set;     // create or replace
  std::vector<kernel::Neighbor> remove;  // delete
  bool empty() const { return set.empty() && remove.empty(); }
};

// `observed` = every FDB row and ARP row of the sandbox (any link); rows are matched to the
// vxlan device by vxlan_index.
PeerOps PlanPeers(const std::vector<Peer>& desired, const kernel::IpAddr& local_vtep,
                  int vxlan_index, const std::vector<kernel::Neighbor>& observed_fdb,
                  const std::vector<kernel::Neighbor>& observed_arp);

// Checks a peer list: ip, mac and vtep set, mac unicast, ip inside `subnet`.
absl::Status ValidatePeers(const std::vector<Peer>& peers, const kernel::IpPrefix& subnet);

}  // namespace shoal::netdrv
