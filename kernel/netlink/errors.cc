#include "kernel/netlink/errors.h"

#include <netlink/errno.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace shoal::kernel {

absl::Status NlStatus(int nl_error, absl::string_view context) {
  if (nl_error >= 0) return absl::OkStatus();
  int e = std::abs(nl_error);
  absl::StatusCode code = absl::StatusCode::kInternal;
  switch (e) {
    case NLE_EXIST:
      code = absl::StatusCode::kAlreadyExists;
      break;
    case NLE_OBJ_NOTFOUND:
    case NLE_NODEV:
      code = absl::StatusCode::kNotFound;
      break;
    case NLE_INVAL:
    case NLE_RANGE:
    case NLE_MSG_TOOSHORT:
    case NLE_MISSING_ATTR:
    case NLE_NOADDR:
      code = absl::StatusCode::kInvalidArgument;
      break;
    case NLE_PERM:
    case NLE_NOACCESS:
      code = absl::StatusCode::kPermissionDenied;
      break;
    case NLE_BUSY:
    case NLE_AGAIN:
    case NLE_DUMP_INTR:
      code = absl::StatusCode::kUnavailable;
      break;
    case NLE_NOMEM:
    case NLE_MSGSIZE:
      code = absl::StatusCode::kResourceExhausted;
      break;
    case NLE_OPNOTSUPP:
    case NLE_AF_NOSUPPORT:
    case NLE_PROTO_MISMATCH:
      code = absl::StatusCode::kUnimplemented;
      break;
    default:
      break;
  }
  return absl::Status(code, absl::StrCat(context, ": ", nl_geterror(nl_error)));
}

absl::Status KernelErrnoStatus(int sys_errno, absl::string_view extack, absl::string_view context) {
  absl::StatusCode code = absl::StatusCode::kInternal;
  switch (sys_errno) {
    case EEXIST:
    case EADDRINUSE:
      code = absl::StatusCode::kAlreadyExists;
      break;
    case ENOENT:
    case ENODEV:
    case ESRCH:
    case EADDRNOTAVAIL:
      code = absl::StatusCode::kNotFound;
      break;
    case EINVAL:
    case ERANGE:
    case E2BIG:
    case ENAMETOOLONG:
    case ENETUNREACH:
    case EHOSTUNREACH:
    case EDOM:
      code = absl::StatusCode::kInvalidArgument;
      break;
    case EPERM:
    case EACCES:
      code = absl::StatusCode::kPermissionDenied;
      break;
    case EBUSY:
    case EAGAIN:
      code = absl::StatusCode::kUnavailable;
      break;
    case ENOMEM:
    case ENOBUFS:
    case ENOSPC:
      code = absl::StatusCode::kResourceExhausted;
      break;
    case EOPNOTSUPP:
    case EAFNOSUPPORT:
    case EPROTONOSUPPORT:
      code = absl::StatusCode::kUnimplemented;
      break;
    default:
      break;
  }
  std::string msg = absl::StrCat(context, ": ", std::strerror(sys_errno));
  if (!extack.empty()) absl::StrAppend(&msg, " (", extack, ")");
  return absl::Status(code, msg);
}

}  // namespace shoal::kernel
