// Path handling for untrusted names (tar entries, hardlink targets): every name is split into
// components, ".." and absolute names are refused, and directories are opened beneath a root
// directory fd without ever following a symlink (openat2 RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS,
// falling back to a per-component O_NOFOLLOW walk on kernels without openat2, Linux < 5.6).
// This is the fd-relative discipline that closes containerd CVE-2021-32760-style escapes.
//
// Thread safety: pure functions over fds.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "base/unique_fd.h"

namespace shoal::runtime::images {

// "./a//b/" -> {"a","b"}; "" and "." -> {} (the root itself).
// INVALID_ARGUMENT for absolute names and any ".." component.
absl::StatusOr<std::vector<std::string>> SplitEntryPath(absl::string_view name);

// Opens directory root/comps[0]/.../comps[n-1] (O_RDONLY|O_DIRECTORY). With `create`, missing
// directories are made with mode 0755. A symlink anywhere on the way gives INVALID_ARGUMENT
// "... is a symlink"; a non-directory gives FAILED_PRECONDITION. n == 0 reopens the root.
absl::StatusOr<base::UniqueFd> OpenDirBeneath(int root_fd, const std::vector<std::string>& comps,
                                              size_t n, bool create);

// Removes dir_fd/name and, for a directory, everything below it, never following symlinks.
// OK when it does not exist. Sets *removed_dir (if given) when a directory was removed.
absl::Status RemoveTreeAt(int dir_fd, const std::string& name, bool* removed_dir = nullptr);

// Joins components with '/' for messages.
std::string JoinComponents(const std::vector<std::string>& comps, size_t n);

}  // namespace shoal::runtime::images
