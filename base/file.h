// File helpers with crash-safe semantics.
//
// WriteFileAtomic(path, data, mode): readers see either the old or the new content, never a
// mix, and after it returns OK the new content survives power loss: write to a temp file in
// the same directory, fsync it, rename over `path`, fsync the directory. On any failure the
// temp file is removed and `path` is unchanged.
#pragma once

#include <sys/types.h>

#include <string>
#include "absl/strings/string_view.h"

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "base/unique_fd.h"

namespace shoal::base {

absl::Status WriteFileAtomic(const std::string& path, absl::string_view data, mode_t mode = 0644);

// Reads a whole file. NOT_FOUND when it does not exist.
absl::StatusOr<std::string> ReadFile(const std::string& path);

// Writes all of `data` to `fd`, retrying short writes and EINTR.
absl::Status WriteAll(int fd, absl::string_view data, absl::string_view what);

// fsync(2) on a directory, making entries created/renamed in it durable.
absl::Status FsyncDir(const std::string& dir);

// Opens with O_CLOEXEC always added.
absl::StatusOr<UniqueFd> Open(const std::string& path, int flags, mode_t mode = 0);

}  // namespace shoal::base
