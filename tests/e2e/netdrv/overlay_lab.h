// A three-host lab with one OverlayDriver per host and "containers" (network namespaces with an
// eth0), shared by the overlay e2e tests and bench/net. Everything it creates is removed by the
// destructor (also when a test fails half-way).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/random.h"
#include "kernel/netlink/libnl_netlink.h"
#include "kernel/netlink/netns.h"
#include "netdrv/overlay.h"
#include "tests/lab/lab.h"

namespace shoal::netdrv::testing {

class OverlayLab {
 public:
  // `prefix` names everything (e.g. "sn-ov-"); underlay_mtu lets tests check MTU derivation.
  static absl::StatusOr<std::unique_ptr<OverlayLab>> Create(const std::string& prefix, int hosts,
                                                            uint32_t underlay_mtu);
  ~OverlayLab();

  lab::Lab& lab() { return *lab_; }
  OverlayDriver& driver(int host) { return *drivers_.at(host); }
  kernel::NetnsStore& sandboxes(int host) { return *sandbox_stores_.at(host); }

  // A container on `host`: a fresh namespace "<name>" plus an endpoint in `network`.
  absl::StatusOr<Endpoint> AddContainer(int host, const std::string& name,
                                        const std::string& network, const std::string& address);
  int ContainerFd(const std::string& name) { return containers_.at(name).get(); }
  absl::StatusOr<lab::CommandResult> RunIn(const std::string& container, const std::string& cmd);
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
  kernel::LibnlNetlinkFactory netlink_;
  base::SystemRandom random_;
  std::unique_ptr<kernel::BindMountNetnsStore> container_store_;
  std::vector<std::unique_ptr<kernel::BindMountNetnsStore>> sandbox_stores_;
  std::vector<std::unique_ptr<OverlayDriver>> drivers_;
  std::map<std::string, base::UniqueFd> containers_;
  std::map<std::string, std::map<std::string, Placed>> endpoints_;  // network -> id -> placed
};

}  // namespace shoal::netdrv::testing
