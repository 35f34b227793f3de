// Test helpers for image tests: temp directories, memfds, directory-tree snapshots.
#pragma once

#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "gtest/gtest.h"

namespace shoal::runtime::images::testing {

// A directory under /tmp named shoaltest-img-*, removed (recursively) on destruction.
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/shoaltest-img-XXXXXX";
    char* p = ::mkdtemp(tmpl);
    EXPECT_NE(p, nullptr);
    path_ = p ? p : "";
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& rel) const { return path_ + "/" + rel; }

 private:
  std::string path_;
};

// An fd positioned at 0 holding `data`.
inline int MemFd(const std::string& data) {
  int fd = ::memfd_create("layer", MFD_CLOEXEC);
  EXPECT_GE(fd, 0);
  EXPECT_EQ(::write(fd, data.data(), data.size()), static_cast<ssize_t>(data.size()));
  ::lseek(fd, 0, SEEK_SET);
  return fd;
}

inline std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline void Spit(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary);
  out << data;
}

// path -> "type:size:content-prefix" for every entry below `root` (symlinks not followed).
inline std::map<std::string, std::string> Snapshot(const std::string& root) {
  std::map<std::string, std::string> out;
  for (auto it = std::filesystem::recursive_directory_iterator(root);
       it != std::filesystem::recursive_directory_iterator(); ++it) {
    const auto& p = it->path();
    auto st = it->symlink_status();
    std::string v = std::to_string(static_cast<int>(st.type()));
    if (st.type() == std::filesystem::file_type::regular) v += ":" + Slurp(p);
    if (st.type() == std::filesystem::file_type::symlink) {
      v += ":" + std::filesystem::read_symlink(p).string();
    }
    out[p.string()] = v;
  }
  return out;
}

}  // namespace shoal::runtime::images::testing
