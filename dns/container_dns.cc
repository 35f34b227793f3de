#include "dns/container_dns.h"

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "base/status.h"
#include "dns/redirect.h"

namespace shoal::dns {

absl::StatusOr<BoundEndpoint> ServeContainer(Resolver& resolver, kernel::nft::Nft& container_nft,
                                             const EndpointSpec& spec) {
  absl::StatusOr<BoundEndpoint> bound = resolver.AddEndpoint(spec);
  if (!bound.ok()) {
    // EADDRNOTAVAIL: 127.0.0.11 is not local (yet) in that namespace.
    if (bound.status().message().find(std::strerror(EADDRNOTAVAIL)) != absl::string_view::npos) {
      return base::Annotate(bound.status(),
                            absl::StrCat("dns endpoint ", spec.id, " on ", spec.listen_ip,
                                         " (is lo up in the container's "
                                         "namespace?)"));
    }
    return bound.status();
  }
  absl::Status st = InstallRedirect(container_nft, spec.listen_ip, bound->port);
  if (!st.ok()) {
    (void)resolver.RemoveEndpoint(spec.id);
    return base::Annotate(st, absl::StrCat("dns redirect for ", spec.id));
  }
  return bound;
}

absl::Status StopServing(Resolver& resolver, kernel::nft::Nft* container_nft,
                         const std::string& id) {
  absl::Status first;
  if (container_nft != nullptr) first = RemoveRedirect(*container_nft);
  absl::Status st = resolver.RemoveEndpoint(id);
  if (!st.ok() && !absl::IsNotFound(st) && first.ok()) first = st;
  return first;
}

}  // namespace shoal::dns
