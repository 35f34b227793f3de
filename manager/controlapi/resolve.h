// Helpers shared by the Control service's implementation files (not a public API).
#pragma once

#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "manager/store/read_tx.h"

namespace shoal::manager::controlapi {

inline grpc::Status ToGrpc(const absl::Status& s) {
  if (s.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), std::string(s.message()));
}

// Finds by full id, then by unique name, then by unique id prefix (as the docker CLI resolves).
template <typename T>
absl::StatusOr<std::shared_ptr<const T>> Resolve(const store::ReadTx& view, const std::string& ref,
                                                 absl::string_view kind) {
  if (ref.empty()) return absl::InvalidArgumentError(absl::StrCat(kind, " id or name is required"));
  if (auto o = view.Get<T>(ref)) return o;
  auto by_name = view.Find<T>(store::ByName(ref));
  if (by_name.size() == 1) return by_name[0];
  auto by_prefix = view.Find<T>(store::ByIdPrefix(ref));
  if (by_prefix.size() == 1) return by_prefix[0];
  if (by_prefix.size() > 1) {
    return absl::FailedPreconditionError(absl::StrCat(kind, " '", ref, "' is ambiguous (",
                                                      by_prefix.size(), " matches)"));
  }
  return absl::NotFoundError(absl::StrCat(kind, " '", ref, "' not found"));
}

}  // namespace shoal::manager::controlapi
