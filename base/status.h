// Status helpers over absl::Status.
//
// RETURN_IF_ERROR(expr)        returns the status of `expr` if it is not OK.
// ASSIGN_OR_RETURN(lhs, expr)  evaluates an absl::StatusOr<T>; on error returns it,
//                              otherwise assigns (moves) the value into `lhs`.
// ErrnoStatus(err, what...)    canonical status for an errno captured at the syscall,
//                              with context: ErrnoStatus(errno, "open ", path)
//                              -> NOT_FOUND "open /x: No such file or directory".
//
// Thread safety: all functions are pure.
#pragma once

#include <cerrno>
#include <string>
#include "absl/strings/string_view.h"

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"

namespace shoal::base {

// Maps an errno value to the canonical code (EEXIST -> ALREADY_EXISTS, ENOENT -> NOT_FOUND,
// EPERM/EACCES -> PERMISSION_DENIED, EINVAL -> INVALID_ARGUMENT, EBUSY -> UNAVAILABLE, ...).
absl::StatusCode ErrnoToCode(int err);

// Builds "<context>: <strerror(err)>" with the canonical code for `err`.
absl::Status ErrnoStatusWithContext(int err, absl::string_view context);

template <typename... Args>
absl::Status ErrnoStatus(int err, const Args&... context) {
  return ErrnoStatusWithContext(err, absl::StrCat(context...));
}

// Prefixes a non-OK status message with context, keeping the code: "create veth: <msg>".
absl::Status Annotate(const absl::Status& status, absl::string_view context);

}  // namespace shoal::base

#define SHOAL_STATUS_CONCAT_INNER_(x, y) x##y
#define SHOAL_STATUS_CONCAT_(x, y) SHOAL_STATUS_CONCAT_INNER_(x, y)

#define RETURN_IF_ERROR(expr)                                     \
  do {                                                            \
    ::absl::Status shoal_status_ = ::shoal::base::AsStatus(expr); \
    if (!shoal_status_.ok()) return shoal_status_;                \
  } while (0)

#define ASSIGN_OR_RETURN(lhs, expr) \
  SHOAL_ASSIGN_OR_RETURN_IMPL_(SHOAL_STATUS_CONCAT_(shoal_statusor_, __LINE__), lhs, expr)

#define SHOAL_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                 \
  if (!tmp.ok()) return std::move(tmp).status();     \
  lhs = std::move(tmp).value()

namespace shoal::base {
inline const absl::Status& AsStatus(const absl::Status& s) { return s; }
template <typename T>
inline const absl::Status& AsStatus(const absl::StatusOr<T>& s) {
  return s.status();
}
}  // namespace shoal::base
