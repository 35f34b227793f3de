#include "runtime/monitor/log_writer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "base/file.h"
#include "base/status.h"
#include "nlohmann/json.hpp"

namespace shoal::runtime {
namespace {
constexpr size_t kMaxLine = 16 * 1024;
}

LogWriter::LogWriter(std::string path, uint64_t max_size, int max_files)
    : path_(std::move(path)), max_size_(max_size), max_files_(max_files < 1 ? 1 : max_files) {}

absl::Status LogWriter::Open() {
  fd_.Reset(open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640));
  if (!fd_) return base::ErrnoStatus(errno, "open log ", path_);
  struct stat st;
  size_ = fstat(fd_.get(), &st) == 0 ? st.st_size : 0;
  return absl::OkStatus();
}

absl::Status LogWriter::Rotate() {
  fd_.Reset();
  if (max_files_ == 1) {
    if (truncate(path_.c_str(), 0) != 0) return base::ErrnoStatus(errno, "truncate ", path_);
  } else {
    for (int i = max_files_ - 1; i >= 1; --i) {
      std::string from = i == 1 ? path_ : absl::StrCat(path_, ".", i - 1);
      rename(from.c_str(), absl::StrCat(path_, ".", i).c_str());  // missing ones are fine
    }
  }
  return Open();
}

absl::Status LogWriter::WriteLine(absl::string_view stream, absl::string_view line,
                                  absl::Time now) {
  nlohmann::json j = {{"log", std::string(line)},
                      {"stream", std::string(stream)},
                      {"time", absl::FormatTime("%Y-%m-%d%ET%H:%M:%E9SZ", now, absl::UTCTimeZone())}};
  std::string out = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  if (max_size_ > 0 && size_ > 0 && size_ + out.size() > max_size_) RETURN_IF_ERROR(Rotate());
  RETURN_IF_ERROR(base::WriteAll(fd_.get(), out, path_));
  size_ += out.size();
  return absl::OkStatus();
}

absl::Status LogWriter::Write(absl::string_view stream, absl::string_view data, absl::Time now) {
  std::string& buf = partial_[stream == "stderr" ? 1 : 0];
  buf.append(data.data(), data.size());
  size_t start = 0;
  while (true) {
    size_t nl = buf.find('\n', start);
    if (nl == std::string::npos) break;
    RETURN_IF_ERROR(WriteLine(stream, absl::string_view(buf).substr(start, nl + 1 - start), now));
    start = nl + 1;
  }
  buf.erase(0, start);
  while (buf.size() >= kMaxLine) {  // partial line: split, like Docker's copier
    RETURN_IF_ERROR(WriteLine(stream, absl::string_view(buf).substr(0, kMaxLine), now));
    buf.erase(0, kMaxLine);
  }
  return absl::OkStatus();
}

absl::Status LogWriter::Flush(absl::Time now) {
  for (int i = 0; i < 2; ++i) {
    if (!partial_[i].empty()) RETURN_IF_ERROR(WriteLine(i ? "stderr" : "stdout", partial_[i], now));
    partial_[i].clear();
  }
  return absl::OkStatus();
}

}  // namespace shoal::runtime
