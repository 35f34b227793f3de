// Safe extraction of one image layer (tar, tar+gzip, tar+zstd; compression detected by magic)
// into an empty directory, in the form overlayfs expects for a lowerdir (image-spec layer.md,
// DESIGN.md §4):
//   - ".wh.<name>"      -> <name> as a 0/0 character device (an overlay whiteout);
//   - ".wh..wh..opq"    -> xattr trusted.overlay.opaque="y" on its directory;
//   - regular files, directories, symlinks, hardlinks (within the layer), char/block devices and
//     FIFOs with uid/gid, mode (incl. setuid/setgid/sticky), mtime and xattrs (incl.
//     security.capability, set after chown, which clears it). Sockets are skipped.
//   - "trusted.overlay.*" xattrs inside the tar are dropped: only whiteout conversion may create
//     them, otherwise a layer could forge overlay redirects/metacopy.
// Safety: names with ".." or a leading "/" are refused, parents are opened beneath the
// destination fd without following symlinks, hardlink targets obey the same rules, and a
// hardlink to a symlink links the symlink itself. Any refused entry fails the whole layer
// (the caller unpacks into a temporary directory and removes it on error).
//
// The uncompressed stream is hashed while reading, so the result carries the layer's DiffID.
// Thread safety: independent calls may run concurrently on different destinations.
#pragma once

#include <cstdint>

#include "absl/status/statusor.h"
#include "runtime/images/digest.h"

namespace shoal::runtime::images {

struct ExtractOptions {
  // Convert whiteouts for overlayfs (true) or keep ".wh." files verbatim (false).
  bool overlay_whiteouts = true;
  // chown entries to the uid/gid in the tar (needs CAP_CHOWN); false keeps the caller's.
  bool preserve_owner = true;
};

struct ExtractStats {
  Digest diff_id;          // sha256 of the uncompressed tar stream
  uint64_t tar_bytes = 0;  // size of the uncompressed tar stream
  uint64_t entries = 0;
  uint64_t file_bytes = 0;  // bytes written to regular files
};

// Reads the layer from `blob_fd` (from its current offset) and unpacks it into `dest_dir_fd`.
// INVALID_ARGUMENT naming the entry for malicious or malformed entries; DATA_LOSS for a corrupt
// or truncated stream; errno-mapped codes for filesystem errors.
absl::StatusOr<ExtractStats> ExtractLayer(int blob_fd, int dest_dir_fd,
                                          const ExtractOptions& options = {});

}  // namespace shoal::runtime::images
