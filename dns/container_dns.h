// Serving one container's DNS, as the agent does it for each container it starts: bind the
// resolver's endpoint in the container's namespace, then DNAT the container's 127.0.0.11:53 to
// it (redirect.h) — both, or neither. Call before the container's process starts, so its first
// lookup already finds the resolver (Docker races here, moby#34596).
//
// The container's loopback must be up (127.0.0.11 is a local address only then); otherwise the
// error says so. `container_nft` is bound to the container's namespace
// (kernel::nft::OpenNft(netns_fd), or a FakeNft in tests).
//
// Thread safety: as Resolver and Nft.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "dns/resolver.h"
#include "kernel/nft/nft.h"

namespace shoal::dns {

// Returns the endpoint's port. On error nothing is left: no endpoint, no redirect table.
absl::StatusOr<BoundEndpoint> ServeContainer(Resolver& resolver, kernel::nft::Nft& container_nft,
                                             const EndpointSpec& spec);

// Removes the redirect and the endpoint (each only if present); the first error is returned
// after both were tried. When the container's namespace is already gone, pass the resolver
// alone (StopServing(resolver, nullptr, id)): its nft table went with it.
absl::Status StopServing(Resolver& resolver, kernel::nft::Nft* container_nft,
                         const std::string& id);

}  // namespace shoal::dns
