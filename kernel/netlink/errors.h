// The ONE place libnl error codes become canonical absl codes (DESIGN.md §7).
#pragma once

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace shoal::kernel {

// `nl_error` is a libnl return value (negative NLE_*). Returns "<context>: <libnl text>" with
// the canonical code: NLE_EXIST -> ALREADY_EXISTS, NLE_OBJ_NOTFOUND/NLE_NODEV -> NOT_FOUND,
// NLE_INVAL/NLE_RANGE/NLE_MSG_TOOSHORT/NLE_MISSING_ATTR -> INVALID_ARGUMENT,
// NLE_PERM/NLE_NOACCESS -> PERMISSION_DENIED, NLE_BUSY/NLE_AGAIN -> UNAVAILABLE,
// NLE_NOMEM/NLE_MSGSIZE -> RESOURCE_EXHAUSTED, NLE_OPNOTSUPP/NLE_AF_NOSUPPORT/
// NLE_PROTO_MISMATCH -> UNIMPLEMENTED, anything else -> INTERNAL. OK for nl_error >= 0.
absl::Status NlStatus(int nl_error, absl::string_view context);

}  // namespace shoal::kernel

namespace shoal::kernel {

// Same mapping for a raw errno the kernel returned in an NLMSG_ERROR (captured before libnl
// folds it into an NLE_* code), with the kernel's extended-ack text when it sent one:
// "<context>: <strerror> (<extack>)". ENODEV/ENOENT/ESRCH/EADDRNOTAVAIL -> NOT_FOUND,
// EINVAL/ERANGE/ENETUNREACH/EHOSTUNREACH -> INVALID_ARGUMENT, EOPNOTSUPP -> UNIMPLEMENTED, ...
absl::Status KernelErrnoStatus(int sys_errno, absl::string_view extack, absl::string_view context);

}  // namespace shoal::kernel
