// The embedded DNS in the three-host lab, with real containers (DESIGN.md §5, issue 6 item 3).
//
//   shdn-h1..h3 : one "node" each: an overlay driver (network "front", 10.10.1.0/24, VNI 4242),
//                 an egress gwbridge (172.18.0.0/16, masquerade) and its own dns::Resolver with
//                 its own RecordTable — the agent's view of the node, fed by the test.
//   shdn-out    : the world outside the cluster: dnsmasq on 192.168.77.254:53, authoritative
//                 for *.test (external.test = 192.0.2.10 and 2001:db8::10, other *.test
//                 names NXDOMAIN).
//
// Every container is a real runtime container (tests/lab/containers.h) with
// /etc/resolv.conf = "nameserver 127.0.0.11" bind-mounted read-only, like Docker. Before its
// PID 1 runs, the node's resolver gets an endpoint in the container's namespace (random port on
// 127.0.0.11, upstream = the outside host) and its 127.0.0.11:53 is DNATed to it
// (dns::ServeContainer, what the agent calls), so the container keeps :53 for itself. The resolver
// forwards from inside the container's namespace: the test process (the "daemon") itself has no
// route into the lab at all.
//
// Teardown (destructor, also after a failed assertion): resolvers, dnsmasq, containers, then
// drivers, sandboxes and the lab namespaces.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/random.h"
#include "dns/records.h"
#include "dns/resolver.h"
#include "kernel/netlink/libnl_netlink.h"
#include "kernel/netlink/netns.h"
#include "kernel/nft/nft.h"
#include "netdrv/bridge.h"
#include "netdrv/overlay.h"
#include "tests/lab/containers.h"
#include "tests/lab/lab.h"

namespace shoal::dns::e2e {

inline constexpr char kNetwork[] = "front";
inline constexpr char kUpstream[] = "192.168.77.254";

class DnsLab {
 public:
  static absl::StatusOr<std::unique_ptr<DnsLab>> Create();
  ~DnsLab();

  // A container on `host` (0-based) attached to the overlay at `ip` (10.10.1.x), with DNS.
  // `egress` also gives it a gwbridge interface with the default route (so the resolver can
  // reach the outside upstream from its namespace). Peers are re-synced on every host.
  absl::StatusOr<lab::LabContainer*> AddContainer(int host, const std::string& name,
                                                  const std::string& ip, bool egress);

  // The same records on every node, as each node's agent would receive them.
  absl::Status SetService(const ServiceRecord& service);
  absl::Status SetTask(const TaskRecord& task);
  absl::Status RemoveTask(const std::string& id);

  // `sh -c cmd` with the HOST's tools (dig, conntrack) in the container's network namespace.
  absl::StatusOr<lab::CommandResult> InNetns(const std::string& container, const std::string& cmd);
  lab::LabContainer& container(const std::string& name) { return containers_->at(name); }
  lab::Lab& lab() { return *lab_; }
  std::string dnsmasq_log() const;

 private:
  DnsLab() = default;
  absl::Status Build();
  absl::Status SyncPeers();

  struct Node {
    std::unique_ptr<kernel::BindMountNetnsStore> sandboxes;
    std::unique_ptr<netdrv::OverlayDriver> overlay;
    std::unique_ptr<kernel::nft::Nft> nft;
    std::unique_ptr<netdrv::BridgeDriver> gw;
    std::unique_ptr<RecordTable> table;
    std::unique_ptr<Resolver> resolver;
  };
  struct Placed {
    int host;
    netdrv::Endpoint ep;
  };

  std::string dir_;  // /run/shdn-<pid>: sandbox netns mounts, resolv.conf, dnsmasq log
  std::unique_ptr<lab::Lab> lab_;
  kernel::LibnlNetlinkFactory netlink_;
  base::SystemRandom random_;
  std::vector<Node> nodes_;
  std::unique_ptr<lab::Process> dnsmasq_;
  std::unique_ptr<lab::ContainerLab> containers_;
  std::map<std::string, Placed> endpoints_;  // overlay endpoint id -> where it lives
};

}  // namespace shoal::dns::e2e
