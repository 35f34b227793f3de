#include "kernel/netlink/netlink.h"

#include <net/if.h>

#include "absl/strings/str_cat.h"

namespace shoal::kernel {

absl::StatusOr<MacvlanMode> ParseMacvlanMode(absl::string_view mode) {
  if (mode == "bridge" || mode.empty()) return MacvlanMode::kBridge;
  if (mode == "private") return MacvlanMode::kPrivate;
  if (mode == "vepa") return MacvlanMode::kVepa;
  if (mode == "passthru") return MacvlanMode::kPassthru;
  return absl::InvalidArgumentError(absl::StrCat(
      "macvlan mode \"", std::string(mode), "\" is not one of bridge, private, vepa, passthru"));
}

const char* MacvlanModeName(MacvlanMode mode) {
  switch (mode) {
    case MacvlanMode::kPrivate:
      return "private";
    case MacvlanMode::kVepa:
      return "vepa";
    case MacvlanMode::kBridge:
      return "bridge";
    case MacvlanMode::kPassthru:
      return "passthru";
  }
  return "unknown";
}

const char* LinkKindName(LinkKind kind) {
  switch (kind) {
    case LinkKind::kLoopback:
      return "loopback";
    case LinkKind::kVeth:
      return "veth";
    case LinkKind::kBridge:
      return "bridge";
    case LinkKind::kVxlan:
      return "vxlan";
    case LinkKind::kMacvlan:
      return "macvlan";
    case LinkKind::kVlan:
      return "vlan";
    case LinkKind::kDummy:
      return "dummy";
    case LinkKind::kUnknown:
      break;
  }
  return "unknown";
}

absl::Status ValidateLinkSpec(const LinkSpec& s) {
  if (s.name.empty() || s.name.size() >= IFNAMSIZ) {
    return absl::InvalidArgumentError(
        absl::StrCat("link name \"", s.name, "\" must be 1..", IFNAMSIZ - 1, " bytes"));
  }
  switch (s.kind) {
    case LinkKind::kVeth:
      if (s.veth.peer_name.empty() || s.veth.peer_name.size() >= IFNAMSIZ) {
        return absl::InvalidArgumentError(absl::StrCat("veth peer name \"", s.veth.peer_name,
                                                       "\" must be 1..", IFNAMSIZ - 1, " bytes"));
      }
      break;
    case LinkKind::kVxlan:
      if (s.vxlan.vni == 0 || s.vxlan.vni > 0xFFFFFF) {
        return absl::InvalidArgumentError(
            absl::StrCat("vxlan ", s.name, ": VNI ", s.vxlan.vni, " out of range 1..16777215"));
      }
      break;
    case LinkKind::kMacvlan:
    case LinkKind::kVlan:
      if (s.parent_index <= 0) {
        return absl::InvalidArgumentError(
            absl::StrCat(LinkKindName(s.kind), " ", s.name, ": a parent link is required"));
      }
      if (s.kind == LinkKind::kVlan && (s.vlan.id < 1 || s.vlan.id > 4094)) {
        return absl::InvalidArgumentError(
            absl::StrCat("vlan ", s.name, ": id ", s.vlan.id, " out of range 1..4094"));
      }
      break;
    case LinkKind::kBridge:
    case LinkKind::kDummy:
      break;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("link ", s.name, ": cannot create kind ", LinkKindName(s.kind)));
  }
  return absl::OkStatus();
}

}  // namespace shoal::kernel
