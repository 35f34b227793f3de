// Docker json-file style container logs: one JSON object per line,
// {"log":"<text>\n","stream":"stdout|stderr","time":"<RFC3339Nano>"}, lines longer than 16 KiB
// split (runtime.md §5), size-based rotation: <path> -> <path>.1 -> ... -> <path>.<max_files-1>.
// Not thread-safe.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "base/unique_fd.h"

namespace shoal::runtime {

class LogWriter {
 public:
  // max_size 0 = never rotate; max_files >= 1 (1 = truncate in place).
  LogWriter(std::string path, uint64_t max_size, int max_files);
  absl::Status Open();
  // Appends raw bytes read from `stream` ("stdout"/"stderr"); complete lines are written.
  absl::Status Write(absl::string_view stream, absl::string_view data, absl::Time now);
  // Writes any partial lines (at EOF).
  absl::Status Flush(absl::Time now);

 private:
  absl::Status WriteLine(absl::string_view stream, absl::string_view line, absl::Time now);
  absl::Status Rotate();

  std::string path_;
  uint64_t max_size_;
  int max_files_;
  base::UniqueFd fd_;
  uint64_t size_ = 0;
  std::string partial_[2];  // stdout, stderr
};

}  // namespace shoal::runtime
