// The nft rule that lets a container reach the node resolver at 127.0.0.11:53 while keeping
// port 53 for itself (DESIGN.md §5): in the container's namespace, locally generated packets
// to 127.0.0.11:53 (UDP and TCP) are DNATed to 127.0.0.11:<resolver port>; conntrack rewrites
// the replies back to :53. DNAT, not `redirect`: in the output hook the kernel redirects to
// 127.0.0.1 (nf_nat_redirect_ipv4), where the resolver does not listen.
//
// Thread safety: pure function / stateless call.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "kernel/nft/nft.h"

namespace shoal::dns {

inline constexpr char kRedirectTable[] = "shoal-dns";

// The table (ip family, one nat output chain, two rules) for `listen_ip`:`port`.
absl::StatusOr<kernel::nft::Table> RedirectTable(const std::string& listen_ip, uint16_t port);

// Converges the namespace behind `nft` to exactly that table (idempotent, atomic).
absl::Status InstallRedirect(kernel::nft::Nft& nft, const std::string& listen_ip, uint16_t port);
absl::Status RemoveRedirect(kernel::nft::Nft& nft);

}  // namespace shoal::dns
