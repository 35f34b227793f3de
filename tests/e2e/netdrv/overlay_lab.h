// A lab of N hosts with one OverlayDriver per host and REAL containers (tests/lab/containers.h:
// runtime containers, each with its own network namespace) as endpoints, for the overlay e2e
// tests. The destructor removes every container, sandbox and lab namespace (also when a test
// fails half-way).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/random.h"
#include "kernel/netlink/libnl_netlink.h"
#include "kernel/netlink/netns.h"
#include "netdrv/overlay.h"
#include "tests/lab/containers.h"
#include "tests/lab/lab.h"

namespace shoal::netdrv::testing {

struct OverlayLabOptions {
  std::string prefix = "shnt-ov-";  // names namespaces, links, containers, cgroups
  int hosts = 3;
  uint32_t underlay_mtu = 1500;
  bool ipv6_underlay = false;  // VTEPs are the hosts' IPv6 underlay addresses
  uint16_t vxlan_port = 4789;  // the data-path UDP port of every host's driver
};

class OverlayLab {
 public:
  static absl::StatusOr<std::unique_ptr<OverlayLab>> Create(const OverlayLabOptions& options);
  ~OverlayLab();

  lab::Lab& lab() { return *lab_; }
  OverlayDriver& driver(int host) { return *drivers_.at(host); }
  kernel::NetnsStore& sandboxes(int host) { return *sandbox_stores_.at(host); }
  // The data-path address of host i (IPv4 or IPv6 per the options).
  kernel::IpAddr vtep(int host) const { return vteps_.at(host); }

  // A real container `name` on lab host `host` (0-based) whose eth0 is an endpoint of
  // `network` with `address`, attached before the container's PID 1 runs.
  absl::StatusOr<Endpoint> AddContainer(int host, const std::string& name,
                                        const std::string& network, const std::string& address);
  lab::LabContainer& container(const std::string& name) { return containers_->at(name); }
  // Runs `sh -c cmd` INSIDE the container (busybox tools, the container's capabilities).
  absl::StatusOr<lab::CommandResult> Exec(const std::string& container, const std::string& cmd);
  // Runs host tools (iproute2) in a network's sandbox namespace on `host`.
  absl::StatusOr<lab::CommandResult> RunInSandbox(int host, const std::string& network,
                                                  const std::string& cmd);

  // Every endpoint of `network` as peers (with the VTEP of the host it lives on); pushes the
  // full list to every host's driver.
  absl::Status SyncPeers(const std::string& network);
  std::vector<Peer> PeersOf(const std::string& network) const;
  void ForgetPeer(const std::string& network, const std::string& endpoint_id);

  std::string dir() const { return dir_; }

 private:
  OverlayLab() = default;
  struct Placed {
    int host;
    Endpoint ep;
  };
  std::string dir_;
  std::unique_ptr<lab::Lab> lab_;
  std::unique_ptr<lab::ContainerLab> containers_;
  kernel::LibnlNetlinkFactory netlink_;
  base::SystemRandom random_;
  std::vector<kernel::IpAddr> vteps_;
  std::vector<std::unique_ptr<kernel::BindMountNetnsStore>> sandbox_stores_;
  std::vector<std::unique_ptr<OverlayDriver>> drivers_;
  std::map<std::string, std::map<std::string, Placed>> endpoints_;  // network -> id -> placed
};

}  // namespace shoal::netdrv::testing
