// The nftables LB dataplane (DESIGN.md §5), in its own table so it never touches other
// owners' rules. Chain-free layout: a service is only map elements, so adding or changing one
// never makes the kernel re-validate the table (every added rule or goto element does:
// nf_tables_api.c NFT_VALIDATE_NEED -> nft_table_validate walks all chains, O(services); see
// docs/benchmarks.md, kernel/nft section):
//
//   table ip <name>
//     chain output / prerouting (nat, dstnat):
//       dnat to ip daddr . meta l4proto . th dport . numgen random mod S map @vip-random
//       dnat to ip daddr . meta l4proto . th dport . jhash ip saddr . th sport mod S seed K
//           map @vip-maglev
//       fib daddr type local  dnat to meta l4proto . th dport . numgen ... map @pub-random
//       fib daddr type local  dnat to meta l4proto . th dport . jhash ...  map @pub-maglev
//     chain postrouting (nat, srcnat), only with masquerade_oif:
//       ct status dnat oifname <masquerade_oif> masquerade
//     maps: key (frontend . slot) -> data (backend address . port)
//
// Every service owns S slots (S prime, default 61), filled by lb::BuildMaglevTable, so a
// backend's share is proportional to its weight and, with the same seed, every node maps a
// flow to the same backend (Scheduler::kMaglev hashes the client address and port; kRandom
// draws a random slot per new flow). A drained backend (weight 0) owns no slot: no new flow
// reaches it while established ones keep their conntrack NAT binding. A service whose backends
// are all drained has no elements (its traffic is not translated and gets no answer).
//
// Each Apply is one atomic nft batch touching only the changed services (the plan of a
// fragment holding just those services): O(S) elements per service, not O(all services).
// Resync() reconciles the whole table from the kernel's state (start-up, self-healing). When a
// backend is removed, conntrack entries of its UDP flows are deleted (otherwise a UDP client
// keeps talking to the dead backend; reference/dataplane.md §4.5). IPv4 only for now.
//
// Thread safety: Apply/Resync/Services may be called from any thread (internally serialized).
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "kernel/nft/nft.h"
#include "lb/conntrack.h"
#include "lb/service.h"

namespace shoal::lb {

struct NftBackendOptions {
  std::string table = "shoal-lb";
  uint32_t slots = 61;            // per service, prime; at most this many active backends
  uint32_t maglev_seed = 0x5e1f;  // cluster-wide, so every node builds the same tables
  // When set, translated flows leaving through this interface are masqueraded to its address
  // (`ct status dnat oifname <x> masquerade` in a srcnat chain), so replies from backends on the
  // same L2 network come back through this namespace (LB and ingress sandboxes, NAT mode).
  std::string masquerade_oif;
};

class NftBackend final : public Backend {
 public:
  // `nft` is the adapter of the namespace to program (LB sandbox, ingress sandbox, or host);
  // `conntrack` (may be null) deletes stale UDP flows in the same namespace.
  static absl::StatusOr<std::unique_ptr<NftBackend>> Create(
      std::unique_ptr<kernel::nft::Nft> nft, std::unique_ptr<ConntrackCleaner> conntrack,
      NftBackendOptions options = {});

  absl::string_view Name() const override { return "nft"; }
  absl::Status Apply(const Change& change) override;
  std::vector<Service> Services() const override;
  // Makes the kernel table equal to the recorded services (level-triggered repair).
  absl::Status Resync();
  // Deletes the table (shutdown / tests).
  absl::Status Destroy();

  // The nft table holding exactly `services` (pure; exposed for tests and Resync).
  static absl::StatusOr<kernel::nft::Table> DesiredTable(const std::vector<Service>& services,
                                                         const NftBackendOptions& options);

 private:
  NftBackend(std::unique_ptr<kernel::nft::Nft> nft, std::unique_ptr<ConntrackCleaner> ct,
             NftBackendOptions options)
      : nft_(std::move(nft)), conntrack_(std::move(ct)), options_(std::move(options)) {}

  mutable std::mutex mu_;
  std::unique_ptr<kernel::nft::Nft> nft_;
  std::unique_ptr<ConntrackCleaner> conntrack_;
  NftBackendOptions options_;
  ServiceSet services_;
};

}  // namespace shoal::lb
