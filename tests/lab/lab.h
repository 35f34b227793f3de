// The multi-host lab (DESIGN.md §8): N "hosts" as network namespaces, each with an `eth0` on one
// underlay bridge that lives in its own lab namespace, plus an optional "outside" host on the
// same underlay (a stand-in for the world beyond the cluster). Traffic never leaves the lab.
//
//   <prefix>lab  : bridge ul0 (+ one veth port per host)
//   <prefix>h1.. : eth0 = <subnet>.<i>/24, default route via <subnet>.254 when `outside` is set
//   <prefix>out  : eth0 = <subnet>.254/24
//   with `ipv6`   : eth0 also gets <subnet6>:<i>/64 (outside <subnet6>:fe), DAD off so the
//                   address is usable at once (an IPv6 underlay for VXLAN)
//
// Namespaces are bind-mounted under options.netns_dir (default /run/netns so `ip netns exec`
// works for people). Create() first purges leftovers of the same prefix (a crashed run); the
// destructor tears everything down. Not thread-safe.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "base/unique_fd.h"
#include "kernel/netlink/netns.h"
#include "kernel/netlink/types.h"
#include "tests/lab/process.h"

namespace shoal::lab {

struct LabOptions {
  std::string prefix = "sn-";  // every namespace and link name starts with it
  int hosts = 3;
  bool outside = false;
  uint32_t underlay_mtu = 1500;
  std::string subnet = "192.168.77";  // /24, host i gets .i, outside .254
  bool ipv6 = false;
  std::string subnet6 = "fd77::";  // /64, host i gets <subnet6><i in hex>, outside <subnet6>fe
  std::string netns_dir = "/run/netns";
};

struct LabHost {
  std::string name;  // netns name
  base::UniqueFd netns;
  kernel::IpAddr ip;   // underlay address on eth0
  kernel::IpAddr ip6;  // IPv6 underlay address on eth0 (unset unless options.ipv6)
};

class Lab {
 public:
  static absl::StatusOr<std::unique_ptr<Lab>> Create(const LabOptions& options);
  ~Lab();
  Lab(const Lab&) = delete;
  Lab& operator=(const Lab&) = delete;

  int size() const { return static_cast<int>(hosts_.size()); }
  LabHost& host(int i) { return hosts_.at(i); }  // 0-based
  LabHost* outside() { return outside_.get(); }
  const LabOptions& options() const { return options_; }

  // Runs `sh -c cmd` in host i (0-based).
  absl::StatusOr<CommandResult> Run(int i, const std::string& cmd);

  // Removes every namespace named <prefix>lab, <prefix>h<N>, <prefix>out in netns_dir.
  static void Purge(const LabOptions& options);

 private:
  explicit Lab(LabOptions options);
  absl::Status Build();
  absl::StatusOr<LabHost> AddHost(const std::string& name, const std::string& port,
                                  const std::string& ip, const std::string& ip6,
                                  bool default_route);

  LabOptions options_;
  kernel::BindMountNetnsStore store_;
  base::UniqueFd lab_ns_;
  std::vector<LabHost> hosts_;
  std::unique_ptr<LabHost> outside_;
};

// Everything named with `prefix` that a lab, its containers (tests/lab/containers.h) or their
// drivers may create and must remove: namespaces in /run/netns, directories directly under /run
// and /tmp, cgroup directories under /sys/fs/cgroup (any hierarchy). Empty after a clean
// teardown; tests assert that.
std::vector<std::string> Leftovers(const std::string& prefix);

}  // namespace shoal::lab
