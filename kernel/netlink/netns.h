// Named network namespaces kept alive by a bind mount of the namespace file at <dir>/<name>
// (the same scheme `ip netns` uses with dir=/run/netns).
//
// Thread-safe: no shared mutable state; the filesystem is the registry. Create() leaves nothing
// behind on failure. Names must be a single path component.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "base/unique_fd.h"

namespace shoal::kernel {

class NetnsStore {
 public:
  virtual ~NetnsStore() = default;
  // A new empty namespace with `lo` up. ALREADY_EXISTS if the name is taken.
  virtual absl::StatusOr<base::UniqueFd> Create(absl::string_view name) = 0;
  // An fd on an existing namespace. NOT_FOUND if there is none.
  virtual absl::StatusOr<base::UniqueFd> Open(absl::string_view name) = 0;
  // Removes the name; the namespace dies once no process or fd holds it. NOT_FOUND if absent.
  virtual absl::Status Delete(absl::string_view name) = 0;
  // Names present, sorted.
  virtual absl::StatusOr<std::vector<std::string>> List() = 0;
};

class BindMountNetnsStore : public NetnsStore {
 public:
  explicit BindMountNetnsStore(std::string dir) : dir_(std::move(dir)) {}

  absl::StatusOr<base::UniqueFd> Create(absl::string_view name) override;
  absl::StatusOr<base::UniqueFd> Open(absl::string_view name) override;
  absl::Status Delete(absl::string_view name) override;
  absl::StatusOr<std::vector<std::string>> List() override;

  const std::string& dir() const { return dir_; }

 private:
  absl::StatusOr<std::string> PathOf(absl::string_view name) const;
  std::string dir_;
};

// An fd on the calling thread's current network namespace.
absl::StatusOr<base::UniqueFd> OpenCurrentNetns();

// Identity of the namespace behind `fd` (its nsfs inode), for comparing namespaces.
absl::StatusOr<uint64_t> NetnsId(int fd);

}  // namespace shoal::kernel
