// Internal state of FakeKernel (fake_netlink.cc, fake_rows.cc). Not a public header.
#pragma once

#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "kernel/netlink/fake_netlink.h"

namespace shoal::kernel {

struct FakeNs {
  uint64_t id = 0;
  int next_index = 1;
  std::map<int, Link> links;
  std::map<int, std::pair<uint64_t, int>> veth_peer;  // index -> (ns id, index)
  std::map<int, uint64_t> vxlan_src_ns;               // vxlan index -> creating namespace
  std::map<int, std::pair<uint64_t, int>> lower;      // macvlan/vlan index -> parent (ns, index)
  std::set<Address> addresses;
  std::set<Route> routes;
  std::set<Neighbor> neighbors;
};

struct FakeKernel::State {
  mutable std::mutex mu;
  std::map<uint64_t, FakeNs> ns;     // by id; id 0 = root
  std::map<std::string, int> named;  // netns store: name -> memfd (owned)
  std::map<uint64_t, int> anon;      // anonymous namespaces: id -> memfd (owned)

  // All below: call with mu held.
  absl::StatusOr<FakeNs*> Ns(int netns_fd);
  FakeNs* NsById(uint64_t id);
  void RemoveLink(FakeNs& ns, int index);  // with cascades
  void DestroyNs(uint64_t id);
};

std::unique_ptr<Netlink> NewFakeNetlink(FakeKernel::State* state, uint64_t ns_id);

}  // namespace shoal::kernel
