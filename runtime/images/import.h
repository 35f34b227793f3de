// Offline import (reference/runtime.md §6): `docker save` tarballs (legacy manifest.json layout
// and the OCI layout + manifest.json emitted since Docker Engine 25) and OCI image layouts, as a
// directory or a tar. index.json is tried first, then manifest.json.
//
// Every blob is copied into the store with its sha256 verified (OCI) or computed (legacy
// layers); an image is recorded only after all of its blobs and layers are in place, so a failed
// import leaves no image behind (unreferenced blobs are removed by the next prune).
// Thread safety: as Store.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/images/manifest.h"
#include "runtime/images/store.h"

namespace shoal::runtime::images {

struct ImportOptions {
  Platform platform = {"linux", "amd64", ""};  // for multi-platform indexes
  std::vector<Reference> extra_tags;           // added to every imported image
};

// `path` is a directory (OCI layout or extracted docker save) or a tar file of either.
absl::StatusOr<std::vector<ImageRecord>> ImportImages(Store& store, const std::string& path,
                                                      const ImportOptions& options = {});

}  // namespace shoal::runtime::images
