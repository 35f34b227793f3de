// An in-memory kernel with the semantics the adapters rely on, for unit tests of netdrv and
// friends (DESIGN.md §3). Namespaces are identified like real ones: by the inode behind an fd
// (a memfd per fake namespace), so dup()ed fds name the same namespace.
//
// Modelled semantics: duplicate link name -> ALREADY_EXISTS (nothing created, also for a veth
// whose peer name is taken); missing parent/master -> NOT_FOUND; deleting a veth end deletes the
// peer; deleting a parent deletes its macvlan/vlan children; deleting a bridge releases ports;
// deleting a link drops its addresses, routes and neighbour rows; a vxlan VNI+port is unique per
// creating namespace; vxlan MTU is clamped to the underlay's (underlay MTU - 50); passthru macvlan
// is exclusive on its parent; duplicate address -> ALREADY_EXISTS; a gateway route needs a
// connected prefix; bridges and lo cannot move namespaces; deleting a namespace destroys its links
// (and their veth peers elsewhere).
//
// Thread-safe: one mutex guards the whole fake kernel.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "kernel/netlink/netlink.h"
#include "kernel/netlink/netns.h"

namespace shoal::kernel {

class FakeKernel {
 public:
  FakeKernel();
  ~FakeKernel();
  FakeKernel(const FakeKernel&) = delete;
  FakeKernel& operator=(const FakeKernel&) = delete;

  // Open(-1) is the "root" (host) namespace, which starts with `lo` and nothing else.
  NetlinkFactory& factory();
  // Named namespaces, like BindMountNetnsStore.
  NetnsStore& netns_store();
  // An anonymous namespace (a "container"): alive while the kernel lives or until DestroyNetns.
  base::UniqueFd NewNetns();
  void DestroyNetns(int fd);
  // Number of live namespaces other than the root one (to assert nothing leaked).
  int NetnsCount() const;

  struct State;

 private:
  std::unique_ptr<State> state_;
  std::unique_ptr<NetlinkFactory> factory_;
  std::unique_ptr<NetnsStore> store_;
};

}  // namespace shoal::kernel
