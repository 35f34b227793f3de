// A lab for service load balancing: N hosts (tests/lab) plus an outside host, each with an
// overlay driver, a gateway bridge driver (network "gw", 172.18.0.0/16) and an lb::Mesh; an
// application overlay "app" (10.20.1.0/24, LB sandbox .20<h>) and the "ingress" overlay
// (10.255.0.0/24, ingress-sbox .20<h>, gateway address 172.18.0.2). Containers are real runtime
// containers (tests/lab/containers.h: busybox image, hostname = container name) whose
// interfaces are endpoints made through the drivers before PID 1 runs. Peers (including the
// sandboxes' endpoints) are pushed to every host after each change. The destructor removes
// everything, also after a failed test.
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
#include "tests/lab/containers.h"
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
  int fd(const std::string& name) { return containers_->at(name).netns_fd(); }
  // Runs `sh -c cmd` inside the container (its busybox tools).
  absl::StatusOr<lab::CommandResult> Run(const std::string& name, const std::string& cmd);
  // Starts busybox httpd on :80 serving the hostname and a line server on :9000 (greets with
  // the hostname, then echoes lines) inside the container.
  absl::Status StartServers(const std::string& name);
  lab::ContainerLab& containers() { return *containers_; }
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
    std::vector<std::pair<std::string, std::string>> endpoints;  // (network, endpoint id)
    std::vector<std::unique_ptr<lab::ContainerProcess>> procs;
  };
  struct Placed {
    int host;
    netdrv::Endpoint ep;
  };
  absl::Status Attach(int host, int netns_fd, Container& c, const std::string& name,
                      const std::string& net, const std::string& ifname, const std::string& ip,
                      bool default_route);
  void DeleteEndpoints(Container& c);

  std::string dir_;
  std::unique_ptr<lab::Lab> lab_;
  kernel::LibnlNetlinkFactory netlink_;
  base::SystemRandom random_;
  std::unique_ptr<lab::ContainerLab> containers_;
  std::vector<Host> hosts_;
  std::vector<std::unique_ptr<Mesh>> meshes_;
  std::map<std::string, Container> placed_;
  std::map<std::string, std::map<std::string, Placed>> endpoints_;  // network -> id -> placed
};

}  // namespace shoal::lb::testing
