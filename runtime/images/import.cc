#include "runtime/images/import.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/file.h"
#include "base/status.h"
#include "nlohmann/json.hpp"
#include "runtime/images/extract.h"
#include "runtime/images/safe_path.h"

namespace shoal::runtime::images {
namespace {

using base::UniqueFd;
using nlohmann::json;

// Streams dir/rel into the store; verifies `expected` when given. Returns digest and size.
absl::StatusOr<Descriptor> IngestFile(Store& store, int dir_fd, const std::string& rel,
                                      const Digest& expected) {
  ASSIGN_OR_RETURN(std::vector<std::string> comps, SplitEntryPath(rel));
  if (comps.empty()) return absl::InvalidArgumentError("empty file name in archive metadata");
  ASSIGN_OR_RETURN(UniqueFd dir, OpenDirBeneath(dir_fd, comps, comps.size() - 1, false));
  int fd = ::openat(dir.get(), comps.back().c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return base::ErrnoStatus(errno, "open ", rel);
  UniqueFd file(fd);
  ASSIGN_OR_RETURN(auto writer, store.NewBlobWriter());
  Sha256 hash;
  std::string buf(1 << 20, '\0');
  char magic[4] = {};
  for (bool first = true;; first = false) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return base::ErrnoStatus(errno, "read ", rel);
    }
    if (n == 0) break;
    if (first) std::copy_n(buf.data(), std::min<ssize_t>(n, 4), magic);
    absl::string_view chunk(buf.data(), n);
    hash.Update(chunk);
    RETURN_IF_ERROR(writer->Write(chunk));
  }
  Descriptor d;
  d.digest = hash.Finish();
  d.size = static_cast<int64_t>(writer->written());
  if (!expected.empty() && d.digest != expected) {
    return absl::DataLossError(absl::StrCat(rel, ": digest mismatch: expected ", expected.String(),
                                            ", got ", d.digest.String()));
  }
  if (static_cast<unsigned char>(magic[0]) == 0x1f &&
      static_cast<unsigned char>(magic[1]) == 0x8b) {
    d.media_type = media::kOciLayerGzip;
  } else if (absl::string_view(magic, 4) == absl::string_view("\x28\xb5\x2f\xfd", 4)) {
    d.media_type = media::kOciLayerZstd;
  } else {
    d.media_type = media::kOciLayer;
  }
  if (!store.HasBlob(d.digest)) RETURN_IF_ERROR(writer->Commit(d.digest, d.size));
  return d;
}

absl::StatusOr<json> ReadJsonAt(int dir_fd, const std::string& rel) {
  ASSIGN_OR_RETURN(std::vector<std::string> comps, SplitEntryPath(rel));
  ASSIGN_OR_RETURN(UniqueFd dir, OpenDirBeneath(dir_fd, comps, comps.size() - 1, false));
  int fd = ::openat(dir.get(), comps.back().c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return base::ErrnoStatus(errno, "open ", rel);
  UniqueFd file(fd);
  std::string text;
  char buf[65536];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof(buf))) > 0) text.append(buf, n);
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded()) return absl::InvalidArgumentError(absl::StrCat(rel, ": not valid JSON"));
  return j;
}

bool ExistsAt(int dir_fd, const char* name) {
  return ::faccessat(dir_fd, name, F_OK, AT_SYMLINK_NOFOLLOW) == 0;
}

std::vector<Reference> ParseTags(const std::vector<std::string>& names) {
  std::vector<Reference> out;
  for (const auto& n : names) {
    auto r = ParseReference(n);
    if (r.ok() && r->digest.empty()) out.push_back(*r);
  }
  return out;
}

// Copies a blob referenced by an OCI layout into the store (verified).
absl::Status IngestLayoutBlob(Store& store, int dir_fd, const Digest& d) {
  if (store.HasBlob(d)) return absl::OkStatus();
  return IngestFile(store, dir_fd, absl::StrCat("blobs/", d.algorithm, "/", d.hex), d).status();
}

absl::StatusOr<std::vector<ImageRecord>> ImportOciLayout(Store& store, int dir_fd,
                                                         const ImportOptions& options) {
  ASSIGN_OR_RETURN(json index_json, ReadJsonAt(dir_fd, "index.json"));
  ASSIGN_OR_RETURN(Index index, ParseIndex(index_json.dump()));
  // Docker >= 25 also writes manifest.json with the RepoTags per config.
  std::map<std::string, std::vector<std::string>> tags_by_config;
  if (ExistsAt(dir_fd, "manifest.json")) {
    auto mj = ReadJsonAt(dir_fd, "manifest.json");
    if (mj.ok() && mj->is_array()) {
      for (const auto& e : *mj) {
        std::string cfg = e.value("Config", "");
        tags_by_config[cfg.substr(cfg.rfind('/') + 1)] =
            e.value("RepoTags", std::vector<std::string>{});
      }
    }
  }
  std::vector<ImageRecord> out;
  for (size_t i = 0; i < index.manifests.size(); ++i) {
    Descriptor desc = index.manifests[i];
    RETURN_IF_ERROR(IngestLayoutBlob(store, dir_fd, desc.digest));
    ASSIGN_OR_RETURN(std::string text, store.ReadBlob(desc.digest));
    ASSIGN_OR_RETURN(std::string mt, DetectMediaType(text));
    if (IsIndexMediaType(mt)) {
      ASSIGN_OR_RETURN(Index nested, ParseIndex(text));
      ASSIGN_OR_RETURN(Descriptor picked, SelectPlatform(nested, options.platform));
      desc.digest = picked.digest;
      RETURN_IF_ERROR(IngestLayoutBlob(store, dir_fd, desc.digest));
      ASSIGN_OR_RETURN(text, store.ReadBlob(desc.digest));
    }
    ASSIGN_OR_RETURN(Manifest m, ParseManifest(text));
    RETURN_IF_ERROR(IngestLayoutBlob(store, dir_fd, m.config.digest));
    for (const auto& l : m.layers) RETURN_IF_ERROR(IngestLayoutBlob(store, dir_fd, l.digest));
    std::vector<std::string> names = tags_by_config[m.config.digest.hex];
    for (const char* key : {"io.containerd.image.name", "org.opencontainers.image.ref.name"}) {
      auto it = desc.annotations.find(key);
      if (it == desc.annotations.end()) continue;
      // A bare ref.name is a tag only; it has no repository to attach to.
      if (it->second.find('/') != std::string::npos || it->second.find(':') != std::string::npos) {
        names.push_back(it->second);
      }
    }
    std::vector<Reference> tags = ParseTags(names);
    for (const auto& t : options.extra_tags) tags.push_back(t);
    ASSIGN_OR_RETURN(ImageRecord rec, store.CommitImage(desc.digest, tags));
    out.push_back(std::move(rec));
  }
  return out;
}

absl::StatusOr<std::vector<ImageRecord>> ImportDockerSave(Store& store, int dir_fd,
                                                          const ImportOptions& options) {
  ASSIGN_OR_RETURN(json mj, ReadJsonAt(dir_fd, "manifest.json"));
  if (!mj.is_array()) return absl::InvalidArgumentError("manifest.json: not an array");
  std::vector<ImageRecord> out;
  for (size_t i = 0; i < mj.size(); ++i) {
    const json& e = mj[i];
    std::string where = absl::StrCat("manifest.json[", i, "]");
    if (!e.is_object() || !e.contains("Config") || !e["Config"].is_string() ||
        !e.contains("Layers") || !e["Layers"].is_array()) {
      return absl::InvalidArgumentError(where + ": needs Config and Layers");
    }
    Manifest m;
    m.media_type = media::kOciManifest;
    ASSIGN_OR_RETURN(m.config, IngestFile(store, dir_fd, e["Config"].get<std::string>(), {}));
    m.config.media_type = media::kOciConfig;
    for (const auto& l : e["Layers"]) {
      if (!l.is_string()) return absl::InvalidArgumentError(where + ": Layers must be strings");
      ASSIGN_OR_RETURN(Descriptor d, IngestFile(store, dir_fd, l.get<std::string>(), {}));
      m.layers.push_back(std::move(d));
    }
    std::string manifest = SerializeManifest(m);
    Digest md = Sha256Of(manifest);
    RETURN_IF_ERROR(store.PutBlob(manifest, md));
    std::vector<Reference> tags = ParseTags(e.value("RepoTags", std::vector<std::string>{}));
    for (const auto& t : options.extra_tags) tags.push_back(t);
    ASSIGN_OR_RETURN(ImageRecord rec, store.CommitImage(md, tags));
    out.push_back(std::move(rec));
  }
  return out;
}

absl::StatusOr<std::vector<ImageRecord>> ImportDir(Store& store, int dir_fd,
                                                   const ImportOptions& options) {
  if (ExistsAt(dir_fd, "index.json")) return ImportOciLayout(store, dir_fd, options);
  if (ExistsAt(dir_fd, "manifest.json")) return ImportDockerSave(store, dir_fd, options);
  return absl::InvalidArgumentError(
      "not an image archive: neither index.json (OCI layout) nor manifest.json (docker save)");
}

}  // namespace

absl::StatusOr<std::vector<ImageRecord>> ImportImages(Store& store, const std::string& path,
                                                      const ImportOptions& options) {
  ASSIGN_OR_RETURN(Store::GcLease lease, store.AcquireGcLease());
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return base::ErrnoStatus(errno, "stat ", path);
  if (S_ISDIR(st.st_mode)) {
    ASSIGN_OR_RETURN(UniqueFd dir, base::Open(path, O_RDONLY | O_DIRECTORY));
    auto r = ImportDir(store, dir.get(), options);
    if (!r.ok()) return base::Annotate(r.status(), absl::StrCat("import ", path));
    return r;
  }
  // A tar: unpack it (safely, as plain files) into the store's tmp/ and import the directory.
  std::string tmpl = store.root() + "/tmp/import-XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) return base::ErrnoStatus(errno, "mkdtemp ", tmpl);
  struct Cleanup {
    std::string dir;
    ~Cleanup() {
      int fd = ::open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      (void)RemoveTreeAt(fd, dir.substr(1));
      ::close(fd);
    }
  } cleanup{tmpl};
  ASSIGN_OR_RETURN(UniqueFd in, base::Open(path, O_RDONLY));
  ASSIGN_OR_RETURN(UniqueFd dir, base::Open(tmpl, O_RDONLY | O_DIRECTORY));
  auto unpacked =
      ExtractLayer(in.get(), dir.get(), {.overlay_whiteouts = false, .preserve_owner = false});
  if (!unpacked.ok()) return base::Annotate(unpacked.status(), absl::StrCat("import ", path));
  auto r = ImportDir(store, dir.get(), options);
  if (!r.ok()) return base::Annotate(r.status(), absl::StrCat("import ", path));
  return r;
}

}  // namespace shoal::runtime::images
