#include "netdrv/peer_plan.h"

#include <algorithm>
#include <map>

#include "absl/strings/str_cat.h"

namespace shoal::netdrv {

using kernel::IpAddr;
using kernel::MacAddr;
using kernel::Neighbor;
using kernel::NeighFamily;

PeerOps PlanPeers(const std::vector<Peer>& desired, const IpAddr& local_vtep, int vxlan_index,
                  const std::vector<Neighbor>& observed_fdb,
                  const std::vector<Neighbor>& observed_arp) {
  std::vector<Peer> sorted;
  for (const Peer& p : desired) {
    if (p.vtep != local_vtep) sorted.push_back(p);
  }
  std::sort(sorted.begin(), sorted.end(),
            [](const Peer& a, const Peer& b) { return a.endpoint_id < b.endpoint_id; });
  std::map<MacAddr, IpAddr> want_fdb;  // mac -> vtep
  std::map<IpAddr, MacAddr> want_arp;  // ip -> mac
  for (const Peer& p : sorted) {
    want_fdb.emplace(p.mac, p.vtep);  // first (smallest endpoint id) wins
    want_arp.emplace(p.ip, p.mac);
  }
  PeerOps ops;
  std::map<MacAddr, IpAddr> have_fdb;
  for (const Neighbor& n : observed_fdb) {
    if (n.link_index != vxlan_index || !n.self || n.mac.is_zero()) continue;
    auto it = want_fdb.find(n.mac);
    if (it == want_fdb.end() || !n.permanent || n.dst != it->second) {
      if (it == want_fdb.end()) ops.remove.push_back(n);
      continue;  // a wrong row is replaced by the set below
    }
    have_fdb[n.mac] = n.dst;
  }
  // The bridge's learned rows on the vxlan port for MACs no peer owns any more: stale
  // (moby#35401 sent packets to the wrong node this way).
  for (const Neighbor& n : observed_fdb) {
    if (n.link_index == vxlan_index && n.master && !n.self && !n.permanent &&
        !want_fdb.count(n.mac)) {
      ops.remove.push_back(n);
    }
  }
  for (const auto& [mac, vtep] : want_fdb) {
    if (have_fdb.count(mac)) continue;
    ops.set.push_back({NeighFamily::kFdb, vxlan_index, vtep, mac, true, true, false});
  }
  std::map<IpAddr, MacAddr> have_arp;
  for (const Neighbor& n : observed_arp) {
    if (n.link_index != vxlan_index) continue;
    auto it = want_arp.find(n.dst);
    if (it == want_arp.end()) {
      if (n.permanent) ops.remove.push_back(n);
      continue;
    }
    if (n.permanent && n.mac == it->second) have_arp[n.dst] = n.mac;
  }
  for (const auto& [ip, mac] : want_arp) {
    if (have_arp.count(ip)) continue;
    ops.set.push_back({NeighFamily::kArp, vxlan_index, ip, mac, true, false, false});
  }
  return ops;
}

absl::Status ValidatePeers(const std::vector<Peer>& peers, const kernel::IpPrefix& subnet) {
  for (const Peer& p : peers) {
    std::string who = absl::StrCat("peer ", p.endpoint_id, ": ");
    if (!p.ip.is_set() || !p.vtep.is_set()) {
      return absl::InvalidArgumentError(who + "ip and vtep are required");
    }
    if (p.mac.is_zero() || (p.mac.bytes[0] & 1)) {
      return absl::InvalidArgumentError(who + "mac " + p.mac.ToString() + " is not unicast");
    }
    if (subnet.addr.is_set() && !subnet.Contains(p.ip)) {
      return absl::InvalidArgumentError(
          absl::StrCat(who, "ip ", p.ip.ToString(), " is not in subnet ", subnet.ToString()));
    }
  }
  return absl::OkStatus();
}

}  // namespace shoal::netdrv
