#include "base/status.h"

#include <cstring>

namespace shoal::base {

absl::StatusCode ErrnoToCode(int err) {
  switch (err) {
    case 0:
      return absl::StatusCode::kOk;
    case EEXIST:
    case EADDRINUSE:
    case ENOTEMPTY:
      return absl::StatusCode::kAlreadyExists;
    case ENOENT:
    case ESRCH:
    case ENODEV:
    case ENXIO:
    case ECHILD:
      return absl::StatusCode::kNotFound;
    case EPERM:
    case EACCES:
    case EROFS:
      return absl::StatusCode::kPermissionDenied;
    case EINVAL:
    case ENAMETOOLONG:
    case E2BIG:
    case ENOTDIR:
    case EISDIR:
    case ELOOP:
    case EBADF:
    case EXDEV:
    case EFAULT:
    case EDOM:
    case EADDRNOTAVAIL:
      return absl::StatusCode::kInvalidArgument;
    case ERANGE:
    case EOVERFLOW:
      return absl::StatusCode::kOutOfRange;
    case ENOSPC:
    case ENOMEM:
    case EMFILE:
    case ENFILE:
    case EDQUOT:
    case ENOBUFS:
    case EMLINK:
      return absl::StatusCode::kResourceExhausted;
    case EAGAIN:
    case EBUSY:
    case EINTR:
    case ECONNREFUSED:
    case ECONNRESET:
    case ECONNABORTED:
    case EHOSTUNREACH:
    case ENETUNREACH:
    case ENETDOWN:
    case EPIPE:
      return absl::StatusCode::kUnavailable;
    case ETIMEDOUT:
      return absl::StatusCode::kDeadlineExceeded;
    case ENOSYS:
    case EOPNOTSUPP:
    case EAFNOSUPPORT:
    case EPROTONOSUPPORT:
      return absl::StatusCode::kUnimplemented;
    case ECANCELED:
      return absl::StatusCode::kCancelled;
    case EIO:
    case ENOEXEC:
      return absl::StatusCode::kDataLoss;
    default:
      return absl::StatusCode::kUnknown;
  }
}

absl::Status ErrnoStatusWithContext(int err, absl::string_view context) {
  char buf[128];
  // GNU strerror_r returns a pointer that may or may not be `buf`.
  const char* text = strerror_r(err, buf, sizeof(buf));
  std::string message = context.empty() ? std::string(text) : absl::StrCat(context, ": ", text);
  if (err == 0) return absl::UnknownError(absl::StrCat(context, ": errno not set"));
  return absl::Status(ErrnoToCode(err), message);
}

absl::Status Annotate(const absl::Status& status, absl::string_view context) {
  if (status.ok() || context.empty()) return status;
  return absl::Status(status.code(), absl::StrCat(context, ": ", status.message()));
}

}  // namespace shoal::base
