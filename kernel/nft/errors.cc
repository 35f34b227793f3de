#include "kernel/nft/errors.h"

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace shoal::kernel::nft {

absl::StatusCode NftErrnoToCode(int err) {
  switch (err) {
    case EEXIST: return absl::StatusCode::kAlreadyExists;
    case ENOENT: return absl::StatusCode::kNotFound;
    case EBUSY:
    case ENOTEMPTY: return absl::StatusCode::kFailedPrecondition;
    case EINVAL:
    case ERANGE:
    case ELOOP:
    case E2BIG:
    case ENAMETOOLONG: return absl::StatusCode::kInvalidArgument;
    case EOPNOTSUPP:
    case EAFNOSUPPORT:
    case EPROTONOSUPPORT: return absl::StatusCode::kUnimplemented;
    case EPERM:
    case EACCES: return absl::StatusCode::kPermissionDenied;
    case ENOSPC:
    case ENOMEM:
    case ENOBUFS:
    case EMSGSIZE:
    case ENFILE:
    case EMFILE: return absl::StatusCode::kResourceExhausted;
    default: return absl::StatusCode::kInternal;
  }
}

absl::Status NftError(int err, absl::string_view context) {
  return absl::Status(NftErrnoToCode(err), absl::StrCat(context, ": ", strerror(err)));
}

}  // namespace shoal::kernel::nft
