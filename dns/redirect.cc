#include "dns/redirect.h"

#include "base/status.h"
#include "kernel/nft/plan.h"

namespace shoal::dns {
namespace nft = kernel::nft;

absl::StatusOr<nft::Table> RedirectTable(const std::string& listen_ip, uint16_t port) {
  ASSIGN_OR_RETURN(nft::Prefix dst, nft::ParsePrefix(listen_ip));
  ASSIGN_OR_RETURN(nft::Addr to, nft::ParseAddr(listen_ip));
  if (to.v6) return absl::InvalidArgumentError("dns redirect: IPv4 listen address expected");
  if (port == 0) return absl::InvalidArgumentError("dns redirect: port must be 1-65535");
  nft::Table t;
  t.family = nft::Family::kIp;
  t.name = kRedirectTable;
  t.chains.push_back(
      {"output", nft::BaseChain{nft::ChainType::kNat, nft::Hook::kOutput, nft::kPriorityDstNat}});
  for (uint8_t proto : {uint8_t{17}, uint8_t{6}}) {
    t.rules.push_back(
        nft::RuleBuilder(t.family, "output").Daddr(dst).L4Proto(proto).Dport(53).Dnat(to, port));
  }
  return t;
}

absl::Status InstallRedirect(nft::Nft& nft, const std::string& listen_ip, uint16_t port) {
  ASSIGN_OR_RETURN(nft::Table t, RedirectTable(listen_ip, port));
  ASSIGN_OR_RETURN(size_t ops, nft::SyncTable(nft, t));
  (void)ops;
  return absl::OkStatus();
}

absl::Status RemoveRedirect(nft::Nft& nft) {
  return nft::DeleteTableIfExists(nft, nft::TableRef{nft::Family::kIp, kRedirectTable});
}

}  // namespace shoal::dns
