// The ONE place where nftables netlink errno values become canonical status codes
// (DESIGN.md §7). Used by the netlink adapter; FakeNft produces the same codes directly.
#pragma once

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace shoal::kernel::nft {

// EEXIST -> ALREADY_EXISTS, ENOENT -> NOT_FOUND, EBUSY/ENOTEMPTY -> FAILED_PRECONDITION (object
// in use or not empty), EINVAL/ERANGE/ELOOP/E2BIG/ENAMETOOLONG -> INVALID_ARGUMENT,
// EOPNOTSUPP/EAFNOSUPPORT/EPROTONOSUPPORT -> UNIMPLEMENTED (kernel lacks the feature or module),
// EPERM/EACCES -> PERMISSION_DENIED, ENOSPC/ENOMEM/ENOBUFS/EMSGSIZE -> RESOURCE_EXHAUSTED
// (set full, socket buffer), ENFILE/EMFILE -> RESOURCE_EXHAUSTED, anything else -> INTERNAL.
absl::StatusCode NftErrnoToCode(int err);

// "<context>: <strerror(err)>" with NftErrnoToCode(err).
absl::Status NftError(int err, absl::string_view context);

}  // namespace shoal::kernel::nft
