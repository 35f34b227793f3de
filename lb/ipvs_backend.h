// The IPVS LB dataplane (where the kernel has IPVS; reference/dataplane.md §4.2, §9.4).
//
// A VIP service becomes an IPVS address service (protocol, VIP, port; scheduler "rr", or "mh" —
// IPVS's Maglev — for Scheduler::kMaglev) with one masquerading destination per backend;
// weight 0 drains (IPVS keeps existing connections, sends no new ones). The VIP itself must be
// a local address of the namespace (the LB sandbox holds it, as Docker's does).
//
// A published port becomes an IPVS fwmark service (reference/dataplane.md §4.2: Docker marks
// in iptables mangle PREROUTING): the backend's own nft table marks local-destined traffic
//
//   table ip <marks_table>
//     chain prerouting (filter, prerouting, mangle -150) / output (route, output, mangle):
//       fib daddr type local meta mark set meta l4proto . th dport map @pub-marks
//
// with one element (proto . port -> mark) per published service; marks are allocated per
// service from first_mark (Docker starts at 256) and reused after removal. Without an nft
// adapter, published ports are refused with FAILED_PRECONDITION. IPVS changes come first and the
// marks table is synced after them (SyncTable: one atomic batch); if that batch fails the IPVS
// changes are undone. A new service therefore exists before its traffic is marked; a removed
// one's marked packets find no service for a moment and reach the local stack (refused).
//
// IPVS has no transactions: Apply performs the operations in order and, if one fails, undoes
// the ones already done (best effort, reported if the undo fails too), so a failed Apply
// leaves the previous state.
// Thread safety: Apply/Services may be called from any thread (internally serialized).
#pragma once

#include <map>
#include <memory>
#include <mutex>

#include "kernel/ipvs/ipvs.h"
#include "kernel/nft/nft.h"
#include "lb/service.h"

namespace shoal::lb {

struct IpvsBackendOptions {
  std::string marks_table = "shoal-ipvs";
  uint32_t first_mark = 256;
};

class IpvsBackend final : public Backend {
 public:
  // `nft` (may be null: no published ports) is bound to the same namespace as `ipvs`.
  explicit IpvsBackend(std::unique_ptr<kernel::ipvs::Ipvs> ipvs,
                       std::unique_ptr<kernel::nft::Nft> nft = nullptr,
                       IpvsBackendOptions options = {})
      : ipvs_(std::move(ipvs)), nft_(std::move(nft)), options_(std::move(options)) {}

  absl::string_view Name() const override { return "ipvs"; }
  absl::Status Apply(const Change& change) override;
  std::vector<Service> Services() const override;
  // The fwmark of a published service (0 if none), for tests and diagnostics.
  uint32_t MarkOf(const std::string& service) const;
  // The marks table for `marks` (service name -> mark) over `services` (pure).
  static kernel::nft::Table MarksTable(const std::vector<Service>& services,
                                       const std::map<std::string, uint32_t>& marks,
                                       const IpvsBackendOptions& options);

 private:
  mutable std::mutex mu_;
  std::unique_ptr<kernel::ipvs::Ipvs> ipvs_;
  std::unique_ptr<kernel::nft::Nft> nft_;
  IpvsBackendOptions options_;
  ServiceSet services_;
  std::map<std::string, uint32_t> marks_;  // published service -> fwmark
};

}  // namespace shoal::lb
