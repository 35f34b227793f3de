// kernel/ipvs: IPVS (the kernel's L4 load balancer) over generic netlink, family "IPVS"
// version 1 (reference/dataplane.md §9.4). libnl has no IPVS helpers, so the messages are
// built here with libnl-genl attribute primitives.
//
// Shoal uses fwmark services (one per LB service: nft marks the VIP/published-port traffic, the
// mark selects the service, like Docker's LB sandboxes) and masquerading destinations; drain =
// destination weight 0 (existing connections keep their destination, no new ones).
//
// Layers: messages.h (pure encode/decode, unit-tested attribute by attribute), this interface,
// OpenIpvs() (the real socket in one netns), FakeIpvs (same semantics, in memory).
// Thread safety: implementations are thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace shoal::kernel::ipvs {

inline constexpr uint32_t kFwdMasq = 0, kFwdTunnel = 2, kFwdDirectRoute = 3;

// Identifies a service: by fwmark (fwmark != 0) or by protocol/address/port.
struct ServiceKey {
  uint16_t af = 2;  // AF_INET
  uint32_t fwmark = 0;
  uint16_t protocol = 0;  // IPPROTO_TCP / UDP when fwmark == 0
  std::string addr;       // 4 or 16 bytes, network order, when fwmark == 0
  uint16_t port = 0;      // host order, when fwmark == 0
  friend bool operator==(const ServiceKey&, const ServiceKey&) = default;
};

struct ServiceSpec {
  ServiceKey key;
  std::string scheduler = "rr";  // rr, wrr, lc, wlc, sh, mh, ...
  uint32_t flags = 0;            // IP_VS_SVC_F_*
  uint32_t timeout = 0;          // persistence seconds
  uint32_t netmask = 0xffffffff;
  friend bool operator==(const ServiceSpec&, const ServiceSpec&) = default;
};

struct DestSpec {
  uint16_t af = 2;
  std::string addr;   // 4 or 16 bytes, network order
  uint16_t port = 0;  // host order
  uint32_t fwd_method = kFwdMasq;
  uint32_t weight = 1;  // 0 = drain
  uint32_t upper_threshold = 0, lower_threshold = 0;
  friend bool operator==(const DestSpec&, const DestSpec&) = default;
};

struct ServiceState {
  ServiceSpec spec;
  std::vector<DestSpec> dests;
};

class Ipvs {
 public:
  virtual ~Ipvs() = default;
  // ALREADY_EXISTS for a duplicate service/destination; NOT_FOUND for a missing one.
  virtual absl::Status AddService(const ServiceSpec& s) = 0;
  virtual absl::Status UpdateService(const ServiceSpec& s) = 0;
  virtual absl::Status DeleteService(const ServiceKey& k) = 0;
  virtual absl::Status AddDest(const ServiceKey& k, const DestSpec& d) = 0;
  virtual absl::Status UpdateDest(const ServiceKey& k, const DestSpec& d) = 0;  // weight change
  virtual absl::Status DeleteDest(const ServiceKey& k, const DestSpec& d) = 0;
  virtual absl::StatusOr<std::vector<ServiceState>> List() = 0;
  virtual absl::Status Flush() = 0;
};

// Opens a generic netlink socket in `netns_fd` (-1 = current) and resolves the IPVS family.
// UNAVAILABLE "IPVS is not available in this kernel" when the family does not resolve (module
// missing or not built, as on the development machine's 6.18 kernel).
absl::StatusOr<std::unique_ptr<Ipvs>> OpenIpvs(int netns_fd = -1);

// In-memory IPVS with the kernel's errors (for LB unit tests).
std::unique_ptr<Ipvs> NewFakeIpvs();

}  // namespace shoal::kernel::ipvs
