// OCI image-spec / Docker v2 schema 2 documents: manifests, indexes (manifest lists) and image
// configs, parsed from JSON into plain structs (reference/runtime.md §6).
//
// Errors: INVALID_ARGUMENT naming the document and field ("manifest: layers[2].digest: ...").
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "runtime/images/digest.h"

namespace shoal::runtime::images {

namespace media {
inline constexpr char kOciManifest[] = "application/vnd.oci.image.manifest.v1+json";
inline constexpr char kOciIndex[] = "application/vnd.oci.image.index.v1+json";
inline constexpr char kOciConfig[] = "application/vnd.oci.image.config.v1+json";
inline constexpr char kOciLayer[] = "application/vnd.oci.image.layer.v1.tar";
inline constexpr char kOciLayerGzip[] = "application/vnd.oci.image.layer.v1.tar+gzip";
inline constexpr char kOciLayerZstd[] = "application/vnd.oci.image.layer.v1.tar+zstd";
inline constexpr char kDockerManifest[] = "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr char kDockerManifestList[] =
    "application/vnd.docker.distribution.manifest.list.v2+json";
inline constexpr char kDockerConfig[] = "application/vnd.docker.container.image.v1+json";
inline constexpr char kDockerLayerGzip[] = "application/vnd.docker.image.rootfs.diff.tar.gzip";
}  // namespace media

bool IsIndexMediaType(absl::string_view mt);
bool IsManifestMediaType(absl::string_view mt);
// Accepted layer types: OCI tar/gzip/zstd (and their non-distributable variants), Docker gzip.
bool IsLayerMediaType(absl::string_view mt);

struct Platform {
  std::string os;
  std::string architecture;
  std::string variant;
};

struct Descriptor {
  std::string media_type;
  Digest digest;
  int64_t size = 0;
  Platform platform;                               // only in index entries
  std::map<std::string, std::string> annotations;  // e.g. org.opencontainers.image.ref.name
};

struct Manifest {
  std::string media_type;
  Descriptor config;
  std::vector<Descriptor> layers;
};

struct Index {
  std::string media_type;
  std::vector<Descriptor> manifests;
};

// The parts of the image config a runtime needs (image-spec conversion.md) plus the rootfs.
struct ImageConfig {
  std::string os;
  std::string architecture;
  std::string variant;
  std::string created;
  std::vector<Digest> diff_ids;
  std::vector<std::string> env;
  std::vector<std::string> entrypoint;
  std::vector<std::string> cmd;
  std::string working_dir;
  std::string user;
  std::string stop_signal;
  std::map<std::string, std::string> labels;
};

// The media type of a manifest/index document: its "mediaType" field, else by shape
// ("manifests" -> OCI index, "layers" -> OCI manifest).
absl::StatusOr<std::string> DetectMediaType(absl::string_view json);

absl::StatusOr<Manifest> ParseManifest(absl::string_view json);
absl::StatusOr<Index> ParseIndex(absl::string_view json);
absl::StatusOr<ImageConfig> ParseImageConfig(absl::string_view json);

// Picks the manifest for os/architecture[/variant] from an index. NOT_FOUND listing the
// platforms that are available.
absl::StatusOr<Descriptor> SelectPlatform(const Index& index, const Platform& want);

// Serializes a manifest/descriptor the way registries expect (used by push and import).
std::string SerializeManifest(const Manifest& m);

}  // namespace shoal::runtime::images
