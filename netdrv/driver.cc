#include "netdrv/driver.h"

#include "absl/strings/str_cat.h"

namespace shoal::netdrv {

kernel::MacAddr RandomMac(uint64_t random) {
  kernel::MacAddr m;
  for (int i = 0; i < 6; ++i) m.bytes[i] = static_cast<uint8_t>(random >> (8 * i));
  m.bytes[0] = static_cast<uint8_t>((m.bytes[0] & 0xfc) | 0x02);  // local, unicast
  return m;
}

absl::Status ValidateEndpointSpec(const EndpointSpec& s, const NetworkSpec& n) {
  if (s.id.empty()) return absl::InvalidArgumentError("endpoint id: must not be empty");
  if (s.netns_fd < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("endpoint ", s.id, ": netns_fd: a container namespace is required"));
  }
  if (s.ifname.empty() || s.ifname.size() > 15) {
    return absl::InvalidArgumentError(
        absl::StrCat("endpoint ", s.id, ": ifname \"", s.ifname, "\" must be 1..15 bytes"));
  }
  if (!s.address.addr.is_set()) {
    return absl::InvalidArgumentError(absl::StrCat("endpoint ", s.id, ": address is required"));
  }
  if (n.subnet.addr.is_set() &&
      (!n.subnet.Contains(s.address.addr) || s.address.len != n.subnet.len)) {
    return absl::InvalidArgumentError(absl::StrCat("endpoint ", s.id, ": address ",
                                                   s.address.ToString(), " is not in subnet ",
                                                   n.subnet.ToString()));
  }
  if (n.gateway.is_set() && s.address.addr == n.gateway) {
    return absl::InvalidArgumentError(absl::StrCat(
        "endpoint ", s.id, ": address ", s.address.ToString(), " is the network's gateway"));
  }
  return absl::OkStatus();
}

}  // namespace shoal::netdrv
