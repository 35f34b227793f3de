#include "lb/select.h"

#include "base/status.h"
#include "kernel/ipvs/ipvs.h"
#include "kernel/nft/netlink_nft.h"
#include "lb/ipvs_backend.h"

namespace shoal::lb {

absl::StatusOr<std::unique_ptr<Backend>> NewBackend(const kernel::Features& features, int netns_fd,
                                                    SelectOptions options) {
  if (features.ipvs && !options.prefer_nft) {
    ASSIGN_OR_RETURN(auto ipvs, kernel::ipvs::OpenIpvs(netns_fd));
    ASSIGN_OR_RETURN(auto marks, kernel::nft::OpenNft(netns_fd));  // fwmarks of published ports
    return std::unique_ptr<Backend>(new IpvsBackend(std::move(ipvs), std::move(marks)));
  }
  if (!features.nftables) {
    return absl::FailedPreconditionError(
        "no load-balancing dataplane: the kernel has neither IPVS nor nf_tables");
  }
  ASSIGN_OR_RETURN(auto nft, kernel::nft::OpenNft(netns_fd));
  ASSIGN_OR_RETURN(auto ct, OpenConntrack(netns_fd));
  ASSIGN_OR_RETURN(auto b, NftBackend::Create(std::move(nft), std::move(ct), options.nft));
  return std::unique_ptr<Backend>(std::move(b));
}

}  // namespace shoal::lb
