// A lab for service load balancing: N hosts (tests/lab) plus an outside host, each with an
// overlay driver, a gateway bridge driver (network "gw", 172.18.0.0/16) and an lb::Mesh; an
// application overlay "app" (10.20.1.0/24, LB sandbox .20<h>) and the "ingress" overlay
// (10.255.0.0/24, ingress-sbox .20<h>, gateway address 172.18.0.2). "Containers" are network
// namespaces with endpoints made through the drivers; processes started in them get their own
// UTS namespace (their hostname is the container name). Peers (including the sandboxes'
// endpoints) are pushed to every host after each change. The destructor removes everything,
// also after a failed test.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/random.h"
#include "kernel/netlink/libnl_netlink.h"
#include "kernel/netlink/netns.h"
#include "kernel/nft/nft.h"
#include "lb/mesh.h"
#include "netdrv/bridge.h"
#include "netdrv/overlay.h"
#include "tests/lab/lab.h"
#include "tests/lab/process.h"

namespace shoal::lb::testing {

inline constexpr char kApp[] = "app";
inline constexpr char kIngress[] = "ingress";
inline constexpr char kGw[] = "gw";

class MeshLab {
 public:
  static absl::StatusOr<std::unique_ptr<MeshLab>> Create(const std::string& prefix, int hosts);
  ~MeshLab();

  lab::Lab& lab() { return *lab_; }
  Mesh& mesh(int host) { return *meshes_.at(host); }
  int hosts() const { return static_cast<int>(meshes_.size()); }

  // A container on `host` named `name` (also its hostname) with eth0 on "app" at `app_ip`,
  // and optionally eth1 on "ingress" and eth2 on the gateway bridge (default route there).
  absl::Status AddContainer(int host, const std::string& name, const std::string& app_ip,
                            const std::string& ingress_ip = "", const std::string& gw_ip = "");
  absl::Status RemoveContainer(const std::string& name);
  int fd(const std::string& name) { return containers_.at(name).fd.get(); }
  // Runs `sh -c cmd` inside the container (host binaries, container network).
  absl::StatusOr<lab::CommandResult> Run(const std::string& name, const std::string& cmd);
  // Starts busybox httpd on :80 serving the hostname and a line server on :9000 (greets with
  // the hostname, then echoes lines), in a UTS namespace named after the container.
  absl::Status StartServers(const std::string& name);
  // Pushes every endpoint of every network as peers to every host.
  absl::Status SyncPeers();

  std::string dir() const { return dir_; }

 private:
  MeshLab() = default;
  struct Host {
    std::unique_ptr<kernel::BindMountNetnsStore> store;
    std::unique_ptr<netdrv::OverlayDriver> overlay;
    std::unique_ptr<kernel::nft::Nft> nft;
    std::unique_ptr<netdrv::BridgeDriver> bridge;
  };
  struct Container {
    int host = 0;
    base::UniqueFd fd;
    std::vector<std::pair<std::string, std::string>> endpoints;  // (network, endpoint id)
    std::vector<std::unique_ptr<lab::Process>> procs;
  };
  struct Placed {
    int host;
    netdrv::Endpoint ep;
  };
  absl::Status Attach(int host, Container& c, const std::string& name, const std::string& net,
                      const std::string& ifname, const std::string& ip, bool default_route);

  std::string dir_;
  std::unique_ptr<lab::Lab> lab_;
  kernel::LibnlNetlinkFactory netlink_;
  base::SystemRandom random_;
  std::unique_ptr<kernel::BindMountNetnsStore> container_store_;
  std::vector<Host> hosts_;
  std::vector<std::unique_ptr<Mesh>> meshes_;
  std::map<std::string, Container> containers_;
  std::map<std::string, std::map<std::string, Placed>> endpoints_;  // network -> id -> placed
};

}  // namespace shoal::lb::testing
