// Test helper: builds tar / tar+gzip / tar+zstd layers in memory with libarchive's writer,
// including deliberately malicious entries ("../x", absolute names, escaping links).
#pragma once

#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>

#include <string>
#include <utility>
#include <vector>

namespace shoal::runtime::images::testing {

enum class Compression { kNone, kGzip, kZstd };

class TarBuilder {
 public:
  TarBuilder& File(std::string path, std::string content, int mode = 0644, int uid = 0,
                   int gid = 0) {
    return Add({path, AE_IFREG, mode, std::move(content), "", "", uid, gid});
  }
  TarBuilder& Dir(std::string path, int mode = 0755, int uid = 0, int gid = 0) {
    return Add({path, AE_IFDIR, mode, "", "", "", uid, gid});
  }
  TarBuilder& Symlink(std::string path, std::string target) {
    return Add({path, AE_IFLNK, 0777, "", std::move(target), "", 0, 0});
  }
  TarBuilder& Hardlink(std::string path, std::string target) {
    return Add({path, AE_IFREG, 0644, "", "", std::move(target), 0, 0});
  }
  TarBuilder& Device(std::string path, unsigned type, int major, int minor, int mode = 0666) {
    Entry e{path, type, mode, "", "", "", 0, 0};
    e.major = major;
    e.minor = minor;
    return Add(std::move(e));
  }
  // Adds an xattr to the last entry.
  TarBuilder& Xattr(std::string name, std::string value) {
    entries_.back().xattrs.emplace_back(std::move(name), std::move(value));
    return *this;
  }
  TarBuilder& MTime(long sec) {
    entries_.back().mtime = sec;
    return *this;
  }

  std::string Build(Compression c = Compression::kNone) const {
    std::string out;
    archive* a = archive_write_new();
    archive_write_set_format_pax_restricted(a);
    if (c == Compression::kGzip) archive_write_add_filter_gzip(a);
    if (c == Compression::kZstd) archive_write_add_filter_zstd(a);
    archive_write_set_bytes_in_last_block(a, 1);
    archive_write_open(a, &out, nullptr, &TarBuilder::WriteCb, nullptr);
    for (const Entry& e : entries_) {
      archive_entry* ae = archive_entry_new();
      archive_entry_set_pathname(ae, e.path.c_str());
      archive_entry_set_uid(ae, e.uid);
      archive_entry_set_gid(ae, e.gid);
      archive_entry_set_mtime(ae, e.mtime, 0);
      if (!e.hardlink.empty()) {
        archive_entry_set_hardlink(ae, e.hardlink.c_str());
        archive_entry_set_size(ae, 0);
      } else {
        archive_entry_set_filetype(ae, e.type);
        archive_entry_set_perm(ae, e.mode);
        if (e.type == AE_IFLNK) archive_entry_set_symlink(ae, e.link.c_str());
        if (e.type == AE_IFCHR || e.type == AE_IFBLK) {
          archive_entry_set_rdevmajor(ae, e.major);
          archive_entry_set_rdevminor(ae, e.minor);
        }
        archive_entry_set_size(ae, e.type == AE_IFREG ? e.content.size() : 0);
      }
      for (const auto& [k, v] : e.xattrs) {
        archive_entry_xattr_add_entry(ae, k.c_str(), v.data(), v.size());
      }
      archive_write_header(a, ae);
      if (e.type == AE_IFREG && !e.content.empty()) {
        archive_write_data(a, e.content.data(), e.content.size());
      }
      archive_entry_free(ae);
    }
    archive_write_close(a);
    archive_write_free(a);
    return out;
  }

 private:
  struct Entry {
    std::string path;
    unsigned type;
    int mode;
    std::string content;
    std::string link;
    std::string hardlink;
    int uid = 0, gid = 0;
    int major = 0, minor = 0;
    long mtime = 1700000000;
    std::vector<std::pair<std::string, std::string>> xattrs;
  };
  TarBuilder& Add(Entry e) {
    entries_.push_back(std::move(e));
    return *this;
  }
  static la_ssize_t WriteCb(archive*, void* opaque, const void* buf, size_t n) {
    static_cast<std::string*>(opaque)->append(static_cast<const char*>(buf), n);
    return static_cast<la_ssize_t>(n);
  }
  std::vector<Entry> entries_;
};

}  // namespace shoal::runtime::images::testing
