// The IPVS LB dataplane (where the kernel has IPVS; reference/dataplane.md §4.2, §9.4).
//
// A VIP service becomes an IPVS address service (protocol, VIP, port; scheduler "rr", or "mh" —
// IPVS's Maglev — for Scheduler::kMaglev) with one masquerading destination per backend;
// weight 0 drains (IPVS keeps existing connections, sends no new ones). The VIP itself must be
// a local address of the namespace (the LB sandbox holds it, as Docker's does). Published
// ports need fwmark services plus an nft `meta mark set` rule that kernel/nft does not offer
// yet, so they are refused with UNIMPLEMENTED on this backend for now.
//
// IPVS has no transactions: Apply performs the operations in order and, if one fails, undoes
// the ones already done (best effort, reported if the undo fails too), so a failed Apply
// leaves the previous state.
// Thread safety: Apply/Services may be called from any thread (internally serialized).
#pragma once

#include <memory>
#include <mutex>

#include "kernel/ipvs/ipvs.h"
#include "lb/service.h"

namespace shoal::lb {

class IpvsBackend final : public Backend {
 public:
  explicit IpvsBackend(std::unique_ptr<kernel::ipvs::Ipvs> ipvs) : ipvs_(std::move(ipvs)) {}

  absl::string_view Name() const override { return "ipvs"; }
  absl::Status Apply(const Change& change) override;
  std::vector<Service> Services() const override;

 private:
  mutable std::mutex mu_;
  std::unique_ptr<kernel::ipvs::Ipvs> ipvs_;
  ServiceSet services_;
};

}  // namespace shoal::lb
