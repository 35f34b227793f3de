// The nftables LB dataplane (DESIGN.md §5; kube-proxy's nft layout, reference/dataplane.md
// §7.3), in its own table so it never touches other owners' rules:
//
//   table ip <name>
//     map services  { ipv4_addr . inet_proto . inet_service : verdict }   VIP frontends
//     map published { inet_proto . inet_service : verdict }               routing-mesh ports
//     chain prerouting/output (nat, dstnat):
//         ip daddr . meta l4proto . th dport vmap @services
//         fib daddr type local meta l4proto . th dport vmap @published
//     chain svc-<s>:  numgen random mod N vmap @svc-<s>-be             (Scheduler::kRandom)
//                     jhash ip saddr . th sport mod M seed S vmap @svc-<s>-be   (kMaglev)
//                     drop                                             (no active backend)
//     map svc-<s>-be  { integer : verdict }  slot -> goto be-<s>-<ip>-<port>
//     chain be-<s>-<ip>-<port>: dnat to <ip>:<port>
//
// Random mode gives each active backend `weight` slots (N = Σ weights); Maglev mode fills
// M (prime) slots with lb::BuildMaglevTable, so with the same seed every node maps a flow to
// the same backend. A drained backend (weight 0) loses its slots but keeps its chain, so no new
// flow reaches it while established ones keep their conntrack NAT binding.
//
// Each Apply is one atomic nft batch touching only the changed services (the plan of a
// fragment holding just those services), so a change costs O(its services' backends), not
// O(all services). Resync() reconciles the whole table from the kernel's state (start-up,
// self-healing). When a backend is removed, conntrack entries of its UDP flows are deleted
// (otherwise a UDP client keeps talking to the dead backend; reference/dataplane.md §4.5).
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
  uint32_t maglev_size = 251;  // prime; small so 10k services stay cheap in the kernel
  uint32_t maglev_seed = 0x5e1f;  // cluster-wide, so every node builds the same tables
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
  static kernel::nft::Table DesiredTable(const std::vector<Service>& services,
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
