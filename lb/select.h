// Picks the LB dataplane from the kernel probe (DESIGN.md §3, §5): IPVS where the kernel has
// it, nftables otherwise. Both program the network namespace `netns_fd` (-1 = current).
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "kernel/features.h"
#include "lb/nft_backend.h"

namespace shoal::lb {

struct SelectOptions {
  bool prefer_nft = false;  // use nft even where IPVS exists
  NftBackendOptions nft;
};

absl::StatusOr<std::unique_ptr<Backend>> NewBackend(const kernel::Features& features, int netns_fd,
                                                    SelectOptions options = {});

}  // namespace shoal::lb
