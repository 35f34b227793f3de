#include "runtime/images/extract.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/file.h"
#include "base/status.h"
#include "runtime/images/safe_path.h"

namespace shoal::runtime::images {
namespace {

using base::UniqueFd;

constexpr char kWhiteoutPrefix[] = ".wh.";
constexpr char kOpaqueMarker[] = ".wh..wh..opq";
constexpr char kOpaqueXattr[] = "trusted.overlay.opaque";

struct ArchiveDeleter {
  void operator()(archive* a) const { archive_read_free(a); }
};
using ArchivePtr = std::unique_ptr<archive, ArchiveDeleter>;

// The outer archive decompresses (raw format + gzip/zstd filters); the tar reader pulls from it
// through this callback, hashing the uncompressed bytes for the DiffID on the way.
struct RawSource {
  archive* raw = nullptr;
  Sha256 hash;
  uint64_t bytes = 0;
  std::string error;  // decompression failure, reported after the tar reader gives up
};

la_ssize_t ReadRaw(archive* tar, void* opaque, const void** buf) {
  auto* src = static_cast<RawSource*>(opaque);
  size_t size = 0;
  la_int64_t offset = 0;
  int r = archive_read_data_block(src->raw, buf, &size, &offset);
  if (r == ARCHIVE_EOF) return 0;
  if (r != ARCHIVE_OK) {
    const char* msg = archive_error_string(src->raw);
    src->error = msg ? msg : "decompression failed";
    archive_set_error(tar, EIO, "%s", src->error.c_str());
    return -1;
  }
  src->hash.Update(*buf, size);
  src->bytes += size;
  return static_cast<la_ssize_t>(size);
}

absl::Status ArchiveError(archive* a, absl::string_view what) {
  const char* msg = archive_error_string(a);
  return absl::DataLossError(absl::StrCat(what, ": ", msg ? msg : "unknown libarchive error"));
}

absl::Status EntryError(absl::string_view name, const absl::Status& s) {
  return absl::Status(s.code(), absl::StrCat("layer entry \"", name, "\": ", s.message()));
}

class Extractor {
 public:
  Extractor(int root_fd, const ExtractOptions& options) : root_fd_(root_fd), options_(options) {}

  absl::Status Entry(archive* tar, archive_entry* entry, ExtractStats* stats);
  absl::Status Finish();

 private:
  absl::StatusOr<int> Parent(const std::vector<std::string>& comps);
  // Removing a directory may remove the cached parent of later entries.
  absl::Status Remove(int dir_fd, const std::string& name) {
    bool removed_dir = false;
    absl::Status s = RemoveTreeAt(dir_fd, name, &removed_dir);
    if (removed_dir) parent_valid_ = false;
    return s;
  }
  absl::Status ApplyMeta(int fd, int dir_fd, const std::string& name, archive_entry* e,
                         bool is_symlink);
  // Runs `create` (returns 0 or -1 with errno); if the name exists, removes it and retries
  // once. Cheaper than removing first: most names are new (saves one unlinkat per entry).
  template <typename F>
  absl::Status CreateReplacing(int dir_fd, const std::string& name, const char* what, F create) {
    if (create() == 0) return absl::OkStatus();
    if (errno != EEXIST) return base::ErrnoStatus(errno, what);
    RETURN_IF_ERROR(Remove(dir_fd, name));
    if (create() == 0) return absl::OkStatus();
    return base::ErrnoStatus(errno, what);
  }
  absl::Status WriteFile(archive* tar, int dir_fd, const std::string& name, archive_entry* e,
                         ExtractStats* stats);

  int root_fd_;
  ExtractOptions options_;
  // Cache of the last parent directory: consecutive entries usually share it.
  std::string parent_key_;
  UniqueFd parent_fd_;
  bool parent_valid_ = false;
  // Directory mtimes are applied last: creating children would bump them again.
  struct DirTime {
    std::vector<std::string> comps;
    struct timespec mtime;
  };
  std::vector<DirTime> dir_times_;
};

absl::StatusOr<int> Extractor::Parent(const std::vector<std::string>& comps) {
  std::string key = JoinComponents(comps, comps.size() - 1);
  if (parent_valid_ && key == parent_key_) return parent_fd_.get();
  ASSIGN_OR_RETURN(parent_fd_, OpenDirBeneath(root_fd_, comps, comps.size() - 1, true));
  parent_key_ = std::move(key);
  parent_valid_ = true;
  return parent_fd_.get();
}

absl::Status Extractor::ApplyMeta(int fd, int dir_fd, const std::string& name, archive_entry* e,
                                  bool is_symlink) {
  if (options_.preserve_owner) {
    uid_t uid = static_cast<uid_t>(archive_entry_uid(e));
    gid_t gid = static_cast<gid_t>(archive_entry_gid(e));
    int r = fd >= 0 ? ::fchown(fd, uid, gid)
                    : ::fchownat(dir_fd, name.c_str(), uid, gid, AT_SYMLINK_NOFOLLOW);
    if (r != 0) return base::ErrnoStatus(errno, "chown");
  }
  if (!is_symlink) {
    mode_t mode = archive_entry_perm(e) & 07777;
    int r = fd >= 0 ? ::fchmod(fd, mode) : ::fchmodat(dir_fd, name.c_str(), mode, 0);
    if (r != 0) return base::ErrnoStatus(errno, "chmod");
  }
  // xattrs after chown: chown clears security.capability.
  if (fd >= 0) {
    const char* xname;
    const void* value;
    size_t size;
    archive_entry_xattr_reset(e);
    while (archive_entry_xattr_next(e, &xname, &value, &size) == ARCHIVE_OK) {
      if (absl::StartsWith(xname, "trusted.overlay.")) continue;  // see header
      if (::fsetxattr(fd, xname, value, size, 0) != 0) {
        return base::ErrnoStatus(errno, "setxattr ", xname);
      }
    }
  }
  if (archive_entry_filetype(e) != AE_IFDIR) {
    struct timespec ts[2];
    ts[1].tv_sec = archive_entry_mtime(e);
    ts[1].tv_nsec = archive_entry_mtime_nsec(e);
    ts[0] = ts[1];
    int r =
        fd >= 0 ? ::futimens(fd, ts) : ::utimensat(dir_fd, name.c_str(), ts, AT_SYMLINK_NOFOLLOW);
    if (r != 0) return base::ErrnoStatus(errno, "set times");
  }
  return absl::OkStatus();
}

absl::Status Extractor::WriteFile(archive* tar, int dir_fd, const std::string& name,
                                  archive_entry* e, ExtractStats* stats) {
  int fd = -1;
  RETURN_IF_ERROR(CreateReplacing(dir_fd, name, "create", [&] {
    fd = ::openat(dir_fd, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    return fd < 0 ? -1 : 0;
  }));
  UniqueFd file(fd);
  const void* buf;
  size_t size;
  la_int64_t offset;
  la_int64_t pos = 0;
  for (;;) {
    int r = archive_read_data_block(tar, &buf, &size, &offset);
    if (r == ARCHIVE_EOF) break;
    if (r != ARCHIVE_OK && r != ARCHIVE_WARN) return ArchiveError(tar, "read file data");
    if (offset != pos && ::lseek(fd, offset, SEEK_SET) < 0) {
      return base::ErrnoStatus(errno, "seek");
    }
    RETURN_IF_ERROR(
        base::WriteAll(fd, absl::string_view(static_cast<const char*>(buf), size), "write"));
    pos = offset + static_cast<la_int64_t>(size);
    stats->file_bytes += size;
  }
  la_int64_t want = archive_entry_size(e);
  if (want > pos && ::ftruncate(fd, want) != 0) return base::ErrnoStatus(errno, "truncate");
  return ApplyMeta(fd, dir_fd, name, e, false);
}

absl::Status Extractor::Entry(archive* tar, archive_entry* e, ExtractStats* stats) {
  const char* raw_name = archive_entry_pathname(e);
  std::string shown = raw_name ? raw_name : "";
  ASSIGN_OR_RETURN(std::vector<std::string> comps, SplitEntryPath(shown));
  if (comps.empty()) return absl::OkStatus();  // "./": the layer root itself
  ASSIGN_OR_RETURN(int dir_fd, Parent(comps));
  const std::string& name = comps.back();

  if (options_.overlay_whiteouts && absl::StartsWith(name, kWhiteoutPrefix)) {
    if (name == kOpaqueMarker) {
      if (::fsetxattr(dir_fd, kOpaqueXattr, "y", 1, 0) != 0) {
        return base::ErrnoStatus(errno, "setxattr ", kOpaqueXattr);
      }
      return absl::OkStatus();
    }
    std::string target = name.substr(std::strlen(kWhiteoutPrefix));
    if (absl::StartsWith(target, kWhiteoutPrefix)) return absl::OkStatus();  // aufs metadata
    if (target.empty()) return absl::InvalidArgumentError("empty whiteout name");
    RETURN_IF_ERROR(Remove(dir_fd, target));
    if (::mknodat(dir_fd, target.c_str(), S_IFCHR | 0000, makedev(0, 0)) != 0) {
      return base::ErrnoStatus(errno, "mknod whiteout ", target);
    }
    return absl::OkStatus();
  }

  // A hardlink entry: the target must already be in this layer.
  if (const char* link = archive_entry_hardlink(e)) {
    auto tcomps = SplitEntryPath(link);
    if (!tcomps.ok())
      return absl::InvalidArgumentError(
          absl::StrCat("hardlink target ", tcomps.status().message()));
    if (tcomps->empty()) return absl::InvalidArgumentError("hardlink to the layer root");
    auto tdir = OpenDirBeneath(root_fd_, *tcomps, tcomps->size() - 1, false);
    if (!tdir.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("hardlink target \"", link, "\": ", tdir.status().message()));
    }
    struct stat st;
    if (::fstatat(tdir->get(), tcomps->back().c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("hardlink target \"", link, "\" is not in this layer"));
    }
    if (S_ISDIR(st.st_mode)) {
      return absl::InvalidArgumentError(absl::StrCat("hardlink to directory \"", link, "\""));
    }
    return CreateReplacing(dir_fd, name, "link", [&] {
      return ::linkat(tdir->get(), tcomps->back().c_str(), dir_fd, name.c_str(), 0);
    });
  }

  mode_t type = archive_entry_filetype(e);
  if (type == AE_IFDIR) {
    struct stat st;
    bool exists = ::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0;
    if (exists && !S_ISDIR(st.st_mode)) {
      RETURN_IF_ERROR(Remove(dir_fd, name));
      exists = false;
    }
    if (!exists && ::mkdirat(dir_fd, name.c_str(), 0700) != 0) {
      return base::ErrnoStatus(errno, "mkdir");
    }
    int fd = ::openat(dir_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return base::ErrnoStatus(errno, "open directory");
    UniqueFd dir(fd);
    RETURN_IF_ERROR(ApplyMeta(fd, -1, name, e, false));
    dir_times_.push_back(
        {comps, {archive_entry_mtime(e), static_cast<long>(archive_entry_mtime_nsec(e))}});
    return absl::OkStatus();
  }

  switch (type) {
    case AE_IFREG:
      return WriteFile(tar, dir_fd, name, e, stats);
    case AE_IFLNK: {
      const char* target = archive_entry_symlink(e);
      if (target == nullptr) return absl::InvalidArgumentError("symlink without target");
      // The target is stored verbatim: it is only ever resolved inside the container's root.
      RETURN_IF_ERROR(CreateReplacing(dir_fd, name, "symlink",
                                      [&] { return ::symlinkat(target, dir_fd, name.c_str()); }));
      return ApplyMeta(-1, dir_fd, name, e, true);
    }
    case AE_IFCHR:
    case AE_IFBLK:
    case AE_IFIFO: {
      dev_t dev = makedev(archive_entry_rdevmajor(e), archive_entry_rdevminor(e));
      RETURN_IF_ERROR(CreateReplacing(dir_fd, name, "mknod", [&] {
        return ::mknodat(dir_fd, name.c_str(), type | 0600, type == AE_IFIFO ? 0 : dev);
      }));
      return ApplyMeta(-1, dir_fd, name, e, false);
    }
    case AE_IFSOCK:
      return absl::OkStatus();
    default:
      return absl::InvalidArgumentError(absl::StrCat("unsupported entry type ", type));
  }
}

absl::Status Extractor::Finish() {
  parent_fd_.Reset();
  // Deepest first so setting a child's time does not disturb its parent's.
  for (auto it = dir_times_.rbegin(); it != dir_times_.rend(); ++it) {
    auto fd = OpenDirBeneath(root_fd_, it->comps, it->comps.size(), false);
    if (!fd.ok()) continue;  // removed or replaced later in the layer
    struct timespec ts[2] = {it->mtime, it->mtime};
    if (::futimens(fd->get(), ts) != 0) return base::ErrnoStatus(errno, "set directory times");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ExtractStats> ExtractLayer(int blob_fd, int dest_dir_fd,
                                          const ExtractOptions& options) {
  ArchivePtr raw(archive_read_new());
  ArchivePtr tar(archive_read_new());
  if (!raw || !tar) return absl::ResourceExhaustedError("archive_read_new");
  archive_read_support_filter_gzip(raw.get());
  archive_read_support_filter_zstd(raw.get());
  archive_read_support_format_raw(raw.get());
  if (archive_read_open_fd(raw.get(), blob_fd, 1 << 20) != ARCHIVE_OK) {
    return ArchiveError(raw.get(), "open layer");
  }
  archive_entry* raw_entry;
  if (archive_read_next_header(raw.get(), &raw_entry) != ARCHIVE_OK) {
    return ArchiveError(raw.get(), "read layer");
  }

  RawSource src;
  src.raw = raw.get();
  archive_read_support_format_tar(tar.get());
  if (archive_read_open(tar.get(), &src, nullptr, ReadRaw, nullptr) != ARCHIVE_OK) {
    return ArchiveError(tar.get(), "layer is not a tar archive (tar, tar+gzip or tar+zstd)");
  }
  ExtractStats stats;
  Extractor ex(dest_dir_fd, options);
  for (;;) {
    archive_entry* e;
    int r = archive_read_next_header(tar.get(), &e);
    if (r == ARCHIVE_EOF) break;
    if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
      if (!src.error.empty()) return absl::DataLossError("decompress layer: " + src.error);
      return ArchiveError(tar.get(), "read tar header");
    }
    ++stats.entries;
    if (absl::Status s = ex.Entry(tar.get(), e, &stats); !s.ok()) {
      const char* n = archive_entry_pathname(e);
      return EntryError(n ? n : "", s);
    }
  }
  RETURN_IF_ERROR(ex.Finish());
  // Hash the rest of the uncompressed stream (padding after the end-of-archive blocks).
  const void* buf;
  while (ReadRaw(tar.get(), &src, &buf) > 0) {
  }
  if (!src.error.empty()) return absl::DataLossError("decompress layer: " + src.error);
  stats.tar_bytes = src.bytes;
  stats.diff_id = src.hash.Finish();
  return stats;
}

}  // namespace shoal::runtime::images
