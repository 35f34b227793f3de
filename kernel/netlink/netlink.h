// The netlink adapter interface (DESIGN.md §3, reference/dataplane.md §9): links, addresses,
// routes, neighbour and FDB entries of ONE network namespace.
//
// A Netlink object is bound to the namespace it was opened in (the kernel binds a netlink socket
// to the netns of the thread that created it, dataplane.md §9.2); open one per namespace through
// a NetlinkFactory. Cross-namespace operations name the other namespace by an open netns fd
// (e.g. /proc/<pid>/ns/net or a bind-mounted netns file): a veth's peer, or a link created
// directly in another namespace (vxlan: created from the host namespace so its UDP socket stays
// there, but placed into the overlay sandbox).
//
// Errors (one mapping, errors.cc): duplicate name -> ALREADY_EXISTS, missing link/row ->
// NOT_FOUND, bad attribute -> INVALID_ARGUMENT, no permission -> PERMISSION_DENIED, device busy ->
// UNAVAILABLE, kernel lacks the feature -> UNIMPLEMENTED; messages name the object.
//
// Thread safety: a Netlink object is NOT thread-safe; use one per thread or lock around it.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "kernel/netlink/types.h"

namespace shoal::kernel {

enum class MacvlanMode { kPrivate = 1, kVepa = 2, kBridge = 4, kPassthru = 8 };
absl::StatusOr<MacvlanMode> ParseMacvlanMode(absl::string_view mode);
const char* MacvlanModeName(MacvlanMode mode);

struct VethAttrs {
  std::string peer_name;
  int peer_netns_fd = -1;           // -1: peer in the same namespace as the link
  std::optional<MacAddr> peer_mac;  // unset: kernel picks a random one
};
struct VxlanAttrs {
  uint32_t vni = 0;        // 1 .. 2^24-1
  uint16_t port = 4789;    // UDP destination port
  bool learning = false;   // off: only programmed FDB rows forward (dataplane.md §11.3)
  bool proxy = true;       // answer ARP from the neighbour table (ARP suppression)
  IpAddr local;            // pinned source VTEP; unset: kernel chooses
  int underlay_index = 0;  // IFLA_VXLAN_LINK, 0: none
};
struct MacvlanAttrs {
  MacvlanMode mode = MacvlanMode::kBridge;
};
struct VlanAttrs {
  uint16_t id = 0;  // 1 .. 4094
};

enum class LinkKind { kUnknown, kLoopback, kVeth, kBridge, kVxlan, kMacvlan, kVlan, kDummy };
const char* LinkKindName(LinkKind kind);

// What to create. `kind` selects which attribute block is read.
struct LinkSpec {
  LinkKind kind = LinkKind::kUnknown;
  std::string name;  // <= 15 bytes
  uint32_t mtu = 0;  // 0: kernel default
  std::optional<MacAddr> mac;
  int parent_index = 0;  // macvlan, vlan: IFLA_LINK (in the socket's namespace)
  int netns_fd = -1;     // create the link directly in this namespace (-1: this one)
  bool up = false;       // bring it up once created (only when created here)
  VethAttrs veth;
  VxlanAttrs vxlan;
  MacvlanAttrs macvlan;
  VlanAttrs vlan;
};

// Checks what the kernel would reject with a terse EINVAL, with a message naming the field:
// name length, VNI range, VLAN id range, missing parent, veth peer name.
absl::Status ValidateLinkSpec(const LinkSpec& spec);

// What a dump reports.
struct Link {
  int index = 0;
  std::string name;
  LinkKind kind = LinkKind::kUnknown;
  uint32_t mtu = 0;
  bool up = false;       // IFF_UP (administrative)
  int master_index = 0;  // bridge this link is enslaved to
  int parent_index = 0;  // IFLA_LINK
  MacAddr mac;
  // Kind-specific (only filled for that kind).
  VxlanAttrs vxlan;
  MacvlanAttrs macvlan;
  VlanAttrs vlan;
};

struct Address {
  int link_index = 0;
  IpPrefix prefix;
  auto operator<=>(const Address&) const = default;
};

struct Route {
  IpPrefix dst;    // 0.0.0.0/0 for a default route
  IpAddr gateway;  // unset: directly connected
  int out_index = 0;
  auto operator<=>(const Route&) const = default;
};

// One neighbour table row. kFdb rows are bridge forwarding entries (AF_BRIDGE): `mac` is the key,
// `dst` the remote VTEP (vxlan) or unset; `self` = NTF_SELF (the device's own table, e.g. vxlan),
// `master` = the bridge's table (NTF_MASTER on requests; NDA_MASTER present in dumps). kArp/kNdp
// rows map `dst` -> `mac`.
enum class NeighFamily { kArp, kNdp, kFdb };
struct Neighbor {
  NeighFamily family = NeighFamily::kArp;
  int link_index = 0;
  IpAddr dst;
  MacAddr mac;
  bool permanent = true;  // NUD_PERMANENT
  bool self = false;      // NTF_SELF
  bool master = false;    // NTF_MASTER
  auto operator<=>(const Neighbor&) const = default;
};

class Netlink {
 public:
  virtual ~Netlink() = default;

  // Links. CreateLink returns the new link as seen in the namespace it lives in (index is
  // that namespace's index). A veth's peer is created in veth.peer_netns_fd (or here).
  virtual absl::StatusOr<Link> CreateLink(const LinkSpec& spec) = 0;
  // Deleting one end of a veth deletes the other; deleting a bridge releases its ports.
  virtual absl::Status DeleteLink(int index) = 0;
  virtual absl::StatusOr<Link> GetLink(absl::string_view name) = 0;
  virtual absl::StatusOr<Link> GetLinkByIndex(int index) = 0;
  virtual absl::StatusOr<std::vector<Link>> ListLinks() = 0;
  virtual absl::Status SetLinkUp(int index, bool up) = 0;
  virtual absl::Status SetLinkMtu(int index, uint32_t mtu) = 0;
  // master_index 0 releases the link from its bridge.
  virtual absl::Status SetLinkMaster(int index, int master_index) = 0;
  // Moves the link to another namespace, optionally renaming it ("" keeps the name).
  virtual absl::Status MoveLink(int index, int netns_fd, absl::string_view new_name) = 0;

  // Addresses (ALREADY_EXISTS on a duplicate, NOT_FOUND on a missing one).
  virtual absl::Status AddAddress(const Address& address) = 0;
  virtual absl::Status DeleteAddress(const Address& address) = 0;
  virtual absl::StatusOr<std::vector<Address>> ListAddresses() = 0;

  // Routes in the main table.
  virtual absl::Status AddRoute(const Route& route) = 0;
  virtual absl::Status DeleteRoute(const Route& route) = 0;
  virtual absl::StatusOr<std::vector<Route>> ListRoutes(int family) = 0;

  // Neighbour/FDB rows: SetNeighbor creates or replaces (NLM_F_CREATE|NLM_F_REPLACE).
  virtual absl::Status SetNeighbor(const Neighbor& neighbor) = 0;
  virtual absl::Status DeleteNeighbor(const Neighbor& neighbor) = 0;
  // All rows of `family`; link_index 0 = every link.
  virtual absl::StatusOr<std::vector<Neighbor>> ListNeighbors(NeighFamily family,
                                                              int link_index) = 0;
};

// Opens a Netlink bound to a namespace. netns_fd -1 = the caller's current namespace.
class NetlinkFactory {
 public:
  virtual ~NetlinkFactory() = default;
  virtual absl::StatusOr<std::unique_ptr<Netlink>> Open(int netns_fd) = 0;
};

// Link events (RTM_NEWLINK/RTM_DELLINK) of one namespace.
struct LinkEvent {
  enum class Type { kNew, kDel } type = Type::kNew;
  Link link;
};

}  // namespace shoal::kernel
