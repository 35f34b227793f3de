// The local image store (DESIGN.md §4): content-addressed blobs, layers unpacked once per
// ChainID, image records with tags, container leases, and garbage collection.
//
// On-disk layout under `root` (injectable; default /var/lib/shoal/images):
//   blobs/sha256/<hex>          verified content (manifests, configs, compressed layers)
//   layers/<chain-hex>/diff/    an unpacked layer, ready to be an overlayfs lowerdir
//   layers/<chain-hex>/layer.json  {chain_id, diff_id, parent, size}
//   images/<config-hex>.json    image record (ImageRecord); the image ID is the config digest
//   leases/<container-id>.json  chains a container's rootfs uses (they are never removed)
//   tmp/                        ingest files and layer unpacks in progress (same filesystem)
//   gc.lock, meta.lock          flock(2) locks shared by every process using the store
//
// Invariants: a blob file exists only once its sha256 matched (write to tmp/, verify, rename);
// a layer directory exists only once fully unpacked and its DiffID verified; an image record is
// written (atomically) only after all its blobs and layers exist. A crash leaves at most
// garbage in tmp/, removed by Prune. A layer is removed only when no image record and no
// container lease references its ChainID (reference counts are derived from records and leases,
// so they cannot drift).
//
// Thread/process safety: all methods may be called concurrently from threads and processes.
// Ingestion (pull/import) holds a GcLease (shared gc.lock) so Prune/Remove (exclusive) never
// delete blobs that are downloaded but not yet committed.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "base/unique_fd.h"
#include "runtime/images/digest.h"
#include "runtime/images/manifest.h"
#include "runtime/images/reference.h"

namespace shoal::runtime::images {

struct LayerInfo {
  Descriptor blob;  // compressed blob as listed in the manifest
  Digest diff_id;   // sha256 of the uncompressed tar (from the config)
  Digest chain_id;
};

struct ImageRecord {
  Digest id;  // config digest
  Digest manifest_digest;
  std::string manifest_media_type;
  std::vector<std::string> repo_tags;     // "docker.io/library/busybox:latest"
  std::vector<std::string> repo_digests;  // "localhost:5000/x@sha256:..."
  std::vector<LayerInfo> layers;          // bottom-most first
  ImageConfig config;
  int64_t size = 0;   // sum of compressed layer sizes
  std::string added;  // RFC 3339, when committed
};

struct RemoveReport {
  std::vector<std::string> untagged;
  std::vector<Digest> deleted_images;
  std::vector<Digest> deleted_layers;  // chain ids
  int64_t reclaimed_bytes = 0;
};

// Writes one blob: data goes to tmp/, Commit() verifies digest (and size if >= 0) and renames it
// into blobs/. Destroying an uncommitted writer removes the temp file.
class BlobWriter {
 public:
  virtual ~BlobWriter() = default;
  virtual absl::Status Write(absl::string_view data) = 0;
  virtual uint64_t written() const = 0;
  // DATA_LOSS "digest mismatch: expected X, got Y" (nothing is stored) on mismatch.
  virtual absl::Status Commit(const Digest& expected, int64_t expected_size = -1) = 0;
};

class Store {
 public:
  static absl::StatusOr<std::unique_ptr<Store>> Open(const std::string& root);

  const std::string& root() const { return root_; }

  // --- blobs
  bool HasBlob(const Digest& d) const;
  std::string BlobPath(const Digest& d) const;
  absl::StatusOr<std::string> ReadBlob(const Digest& d) const;
  absl::Status PutBlob(absl::string_view data, const Digest& expected);
  absl::StatusOr<std::unique_ptr<BlobWriter>> NewBlobWriter();

  // Held by an ingestion (pull/import) from its first blob until its commit.
  class GcLease {
   public:
    explicit GcLease(base::UniqueFd fd) : fd_(std::move(fd)) {}

   private:
    base::UniqueFd fd_;
  };
  absl::StatusOr<GcLease> AcquireGcLease();

  // --- images
  // Records the image whose manifest blob (and config and layer blobs) are in the store:
  // unpacks missing layers (verifying DiffIDs), writes the record, and moves `tags` to it.
  // `repo_digest` ("repo@sha256:..") is recorded when the image came from a registry.
  // With `unpack` false the layers are unpacked later by Unpack/PrepareLowerDirs (lazy pull).
  absl::StatusOr<ImageRecord> CommitImage(const Digest& manifest_digest,
                                          const std::vector<Reference>& tags,
                                          const std::string& repo_digest = "", bool unpack = true);
  // Unpacks the image's layers that are not unpacked yet (in parallel, DiffIDs verified).
  absl::Status Unpack(absl::string_view name_or_id);
  // By "sha256:<id>", an ID prefix (>= 4 hex), or a reference (tag or repo@digest).
  // NOT_FOUND "no such image: X"; INVALID_ARGUMENT for an ambiguous prefix.
  absl::StatusOr<ImageRecord> Resolve(absl::string_view name_or_id) const;
  absl::StatusOr<std::vector<ImageRecord>> List() const;
  absl::Status Tag(absl::string_view source, const Reference& target);
  // Docker's rmi: a tag argument on a multi-tag image only untags; otherwise the record is
  // deleted and unreferenced layers and blobs are freed. FAILED_PRECONDITION when a container
  // uses the image (unless `force`: the record goes, the leased layers stay).
  absl::StatusOr<RemoveReport> Remove(absl::string_view name_or_id, bool force);
  // Deletes untagged images (all images no container uses, with `all`), then every layer and
  // blob nothing references, and leftovers in tmp/.
  absl::StatusOr<RemoveReport> Prune(bool all);

  // --- rootfs for the runtime
  // The unpacked layer directories of an image, TOP-MOST FIRST, i.e. in the order overlayfs
  // wants for lowerdir=a:b:c. Absolute paths: <root>/layers/<chain-hex>/diff (about 100 bytes
  // each); overlay mount data is limited to one page, so for deep images chdir into
  // LayersDir() and use RelativeLowerDirs() ("<chain-hex>/diff", 70 bytes each).
  // FAILED_PRECONDITION if a layer is not unpacked (see PrepareLowerDirs).
  absl::StatusOr<std::vector<std::string>> LowerDirs(absl::string_view name_or_id) const;
  // What the runtime calls to build a container rootfs: Unpack (if needed) + LowerDirs.
  // Pair it with AddContainerRef so the layers stay while the container exists.
  absl::StatusOr<std::vector<std::string>> PrepareLowerDirs(absl::string_view name_or_id);
  absl::StatusOr<std::vector<std::string>> RelativeLowerDirs(absl::string_view name_or_id) const;
  std::string LayersDir() const { return root_ + "/layers"; }
  // Pins the image's layers for a container until RemoveContainerRef (idempotent).
  absl::Status AddContainerRef(absl::string_view container_id, absl::string_view image);
  absl::Status RemoveContainerRef(absl::string_view container_id);
  // ChainID -> number of images + containers referencing it.
  absl::StatusOr<std::map<Digest, int>> LayerRefCounts() const;

 private:
  explicit Store(std::string root) : root_(std::move(root)) {}
  absl::StatusOr<base::UniqueFd> Lock(const char* name, int op) const;
  absl::Status EnsureLayer(const LayerInfo& layer, const Digest& parent);
  absl::Status UnpackLayers(const std::vector<LayerInfo>& layers);
  absl::Status WriteRecord(const ImageRecord& rec);
  absl::Status DeleteUnreferenced(RemoveReport* report);
  std::string TmpDir() const { return root_ + "/tmp"; }

  std::string root_;
};

// JSON (de)serialization of records, exposed for inspect.
std::string ImageRecordToJson(const ImageRecord& rec, bool pretty = false);
absl::StatusOr<ImageRecord> ImageRecordFromJson(absl::string_view json);

}  // namespace shoal::runtime::images
