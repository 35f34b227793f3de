// The real nftables adapter: a NETLINK_NETFILTER socket (libmnl) speaking nf_tables messages
// built with libnftnl. See nft.h for the semantics shared with FakeNft.
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "kernel/nft/nft.h"

namespace shoal::kernel::nft {

// Opens a socket in the network namespace `netns_fd` (an fd of /proc/<pid>/ns/net or of a
// bind-mounted netns; -1 = the caller's namespace). The socket stays bound to that namespace
// for its lifetime (it is opened on a short-lived thread that setns()'d there; the caller's
// threads never change namespace). The fd need not outlive the call.
// Errors: PERMISSION_DENIED without CAP_NET_ADMIN (reported on the first Apply/Get),
// INVALID_ARGUMENT if netns_fd is not a network namespace.
absl::StatusOr<std::unique_ptr<Nft>> OpenNft(int netns_fd = -1);

}  // namespace shoal::kernel::nft
