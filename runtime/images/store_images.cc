// Store: image records, tags, leases, reference counts and garbage collection.
#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <set>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "base/file.h"
#include "base/status.h"
#include "nlohmann/json.hpp"
#include "runtime/images/safe_path.h"
#include "runtime/images/store.h"

namespace shoal::runtime::images {
namespace {

using base::UniqueFd;
using nlohmann::json;

std::vector<std::string> ListDir(const std::string& dir) {
  std::vector<std::string> out;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return out;
  while (struct dirent* e = ::readdir(d)) {
    if (e->d_name[0] != '.') out.emplace_back(e->d_name);
  }
  ::closedir(d);
  return out;
}

bool IsHex(absl::string_view s) {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

// Removes a directory tree atomically from the store's point of view: rename into tmp/ first.
absl::Status RemoveDirTree(const std::string& path, const std::string& tmp_dir) {
  std::string tomb = tmp_dir + "/rm-XXXXXX";
  if (::mkdtemp(tomb.data()) == nullptr) return base::ErrnoStatus(errno, "mkdtemp ", tomb);
  std::string target = tomb + "/x";
  if (::rename(path.c_str(), target.c_str()) != 0) {
    ::rmdir(tomb.c_str());
    if (errno == ENOENT) return absl::OkStatus();
    return base::ErrnoStatus(errno, "rename ", path);
  }
  UniqueFd tmp(::open(tmp_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  return RemoveTreeAt(tmp.get(), tomb.substr(tmp_dir.size() + 1));
}

json DigestList(const std::vector<Digest>& ds) {
  json a = json::array();
  for (const auto& d : ds) a.push_back(d.String());
  return a;
}

absl::StatusOr<std::vector<Digest>> ParseDigestList(const json& j) {
  std::vector<Digest> out;
  if (!j.is_array()) return out;
  for (const auto& v : j) {
    ASSIGN_OR_RETURN(Digest d, ParseDigest(v.get<std::string>()));
    out.push_back(std::move(d));
  }
  return out;
}

bool Contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

}  // namespace

std::string ImageRecordToJson(const ImageRecord& r, bool pretty) {
  json layers = json::array();
  for (const auto& l : r.layers) {
    layers.push_back({{"digest", l.blob.digest.String()},
                      {"mediaType", l.blob.media_type},
                      {"size", l.blob.size},
                      {"diff_id", l.diff_id.String()},
                      {"chain_id", l.chain_id.String()}});
  }
  const ImageConfig& c = r.config;
  json j = {{"Id", r.id.String()},
            {"ManifestDigest", r.manifest_digest.String()},
            {"ManifestMediaType", r.manifest_media_type},
            {"RepoTags", r.repo_tags},
            {"RepoDigests", r.repo_digests},
            {"Layers", layers},
            {"Size", r.size},
            {"Added", r.added},
            {"Created", c.created},
            {"Os", c.os},
            {"Architecture", c.architecture},
            {"Variant", c.variant},
            {"Config",
             {{"Env", c.env},
              {"Entrypoint", c.entrypoint},
              {"Cmd", c.cmd},
              {"WorkingDir", c.working_dir},
              {"User", c.user},
              {"StopSignal", c.stop_signal},
              {"Labels", c.labels}}}};
  return pretty ? j.dump(2) : j.dump();
}

absl::StatusOr<ImageRecord> ImageRecordFromJson(absl::string_view text) {
  json j = json::parse(text.begin(), text.end(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return absl::DataLossError("image record is not valid JSON");
  }
  try {
    ImageRecord r;
    ASSIGN_OR_RETURN(r.id, ParseDigest(j.at("Id").get<std::string>()));
    ASSIGN_OR_RETURN(r.manifest_digest, ParseDigest(j.at("ManifestDigest").get<std::string>()));
    r.manifest_media_type = j.value("ManifestMediaType", "");
    r.repo_tags = j.value("RepoTags", std::vector<std::string>{});
    r.repo_digests = j.value("RepoDigests", std::vector<std::string>{});
    r.size = j.value("Size", int64_t{0});
    r.added = j.value("Added", "");
    for (const auto& l : j.at("Layers")) {
      LayerInfo li;
      ASSIGN_OR_RETURN(li.blob.digest, ParseDigest(l.at("digest").get<std::string>()));
      li.blob.media_type = l.value("mediaType", "");
      li.blob.size = l.value("size", int64_t{0});
      ASSIGN_OR_RETURN(li.diff_id, ParseDigest(l.at("diff_id").get<std::string>()));
      ASSIGN_OR_RETURN(li.chain_id, ParseDigest(l.at("chain_id").get<std::string>()));
      r.layers.push_back(std::move(li));
    }
    ImageConfig& c = r.config;
    c.created = j.value("Created", "");
    c.os = j.value("Os", "");
    c.architecture = j.value("Architecture", "");
    c.variant = j.value("Variant", "");
    for (const auto& l : r.layers) c.diff_ids.push_back(l.diff_id);
    const json& cfg = j.at("Config");
    c.env = cfg.value("Env", std::vector<std::string>{});
    c.entrypoint = cfg.value("Entrypoint", std::vector<std::string>{});
    c.cmd = cfg.value("Cmd", std::vector<std::string>{});
    c.working_dir = cfg.value("WorkingDir", "");
    c.user = cfg.value("User", "");
    c.stop_signal = cfg.value("StopSignal", "");
    c.labels = cfg.value("Labels", std::map<std::string, std::string>{});
    return r;
  } catch (const json::exception& e) {
    return absl::DataLossError(absl::StrCat("image record: ", e.what()));
  }
}

absl::Status Store::WriteRecord(const ImageRecord& rec) {
  return base::WriteFileAtomic(absl::StrCat(root_, "/images/", rec.id.hex, ".json"),
                               ImageRecordToJson(rec, true));
}

absl::StatusOr<std::vector<ImageRecord>> Store::List() const {
  std::vector<ImageRecord> out;
  for (const std::string& name : ListDir(root_ + "/images")) {
    if (!absl::EndsWith(name, ".json")) continue;
    auto text = base::ReadFile(absl::StrCat(root_, "/images/", name));
    if (!text.ok()) {
      if (text.status().code() == absl::StatusCode::kNotFound) continue;  // removed meanwhile
      return text.status();
    }
    auto rec = ImageRecordFromJson(*text);
    if (!rec.ok()) return base::Annotate(rec.status(), name);
    out.push_back(*std::move(rec));
  }
  std::sort(out.begin(), out.end(),
            [](const ImageRecord& a, const ImageRecord& b) { return a.added > b.added; });
  return out;
}

absl::StatusOr<ImageRecord> Store::Resolve(absl::string_view name) const {
  ASSIGN_OR_RETURN(std::vector<ImageRecord> all, List());
  absl::string_view id = name;
  if (absl::StartsWith(id, "sha256:")) id.remove_prefix(7);
  bool hex_like = id.size() >= 4 && id.size() <= 64 && IsHex(id);
  if (absl::StartsWith(name, "sha256:") && !hex_like) {
    return absl::InvalidArgumentError(absl::StrCat("invalid image id \"", name, "\""));
  }
  if (!absl::StartsWith(name, "sha256:")) {
    auto ref = ParseReference(name);
    if (ref.ok()) {
      std::string tagged = ref->String();
      std::string by_digest =
          ref->digest.empty() ? "" : absl::StrCat(ref->Repository(), "@", ref->digest.String());
      for (const auto& rec : all) {
        if (!ref->digest.empty()) {
          if (Contains(rec.repo_digests, by_digest) || rec.manifest_digest == ref->digest) {
            return rec;
          }
        } else if (Contains(rec.repo_tags, tagged)) {
          return rec;
        }
      }
    } else if (!hex_like) {
      return ref.status();
    }
  }
  if (hex_like) {
    const ImageRecord* found = nullptr;
    for (const auto& rec : all) {
      if (absl::StartsWith(rec.id.hex, id)) {
        if (found != nullptr) {
          return absl::InvalidArgumentError(
              absl::StrCat("image id prefix \"", id, "\" is ambiguous"));
        }
        found = &rec;
      }
    }
    if (found != nullptr) return *found;
  }
  return absl::NotFoundError(absl::StrCat("no such image: ", name));
}

absl::StatusOr<ImageRecord> Store::CommitImage(const Digest& manifest_digest,
                                               const std::vector<Reference>& tags,
                                               const std::string& repo_digest, bool unpack) {
  ASSIGN_OR_RETURN(std::string mtext, ReadBlob(manifest_digest));
  ASSIGN_OR_RETURN(std::string mt, DetectMediaType(mtext));
  if (!IsManifestMediaType(mt)) {
    return absl::InvalidArgumentError(
        absl::StrCat("manifest ", manifest_digest.String(), " is a \"", mt,
                     "\", not an image manifest (resolve the index to a platform first)"));
  }
  ASSIGN_OR_RETURN(Manifest m, ParseManifest(mtext));
  ASSIGN_OR_RETURN(std::string ctext, ReadBlob(m.config.digest));
  ASSIGN_OR_RETURN(ImageConfig config, ParseImageConfig(ctext));
  if (config.diff_ids.size() != m.layers.size()) {
    return absl::InvalidArgumentError(absl::StrCat("image config lists ", config.diff_ids.size(),
                                                   " diff_ids but the manifest has ",
                                                   m.layers.size(), " layers"));
  }
  ImageRecord rec;
  rec.id = m.config.digest;
  rec.manifest_digest = manifest_digest;
  rec.manifest_media_type = m.media_type;
  rec.config = config;
  Digest chain;
  for (size_t i = 0; i < m.layers.size(); ++i) {
    LayerInfo li{m.layers[i], config.diff_ids[i], ChainIdOf(chain, config.diff_ids[i])};
    if (!HasBlob(li.blob.digest)) {
      return absl::FailedPreconditionError(
          absl::StrCat("layer blob ", li.blob.digest.String(), " is not in the store"));
    }
    chain = li.chain_id;
    rec.size += li.blob.size;
    rec.layers.push_back(std::move(li));
  }
  if (unpack) RETURN_IF_ERROR(UnpackLayers(rec.layers));
  rec.added = absl::FormatTime(absl::RFC3339_full, absl::Now(), absl::UTCTimeZone());

  ASSIGN_OR_RETURN(UniqueFd meta, Lock("meta.lock", LOCK_EX));
  ASSIGN_OR_RETURN(std::vector<ImageRecord> all, List());
  for (auto& other : all) {
    if (other.id == rec.id) {
      rec.repo_tags = other.repo_tags;
      rec.repo_digests = other.repo_digests;
      rec.added = other.added;
      continue;
    }
    bool changed = false;
    for (const Reference& t : tags) {
      auto it = std::find(other.repo_tags.begin(), other.repo_tags.end(), t.String());
      if (it != other.repo_tags.end()) {
        other.repo_tags.erase(it);
        changed = true;
      }
    }
    if (changed) RETURN_IF_ERROR(WriteRecord(other));
  }
  for (const Reference& t : tags) {
    if (!Contains(rec.repo_tags, t.String())) rec.repo_tags.push_back(t.String());
  }
  if (!repo_digest.empty() && !Contains(rec.repo_digests, repo_digest)) {
    rec.repo_digests.push_back(repo_digest);
  }
  RETURN_IF_ERROR(WriteRecord(rec));
  return rec;
}

absl::Status Store::UnpackLayers(const std::vector<LayerInfo>& layers) {
  // Each layer unpacks into its own directory, so layers unpack in parallel.
  std::vector<absl::Status> results(layers.size());
  std::atomic<size_t> next{0};
  auto worker = [&] {
    for (size_t i; (i = next++) < layers.size();) {
      results[i] = EnsureLayer(layers[i], i == 0 ? Digest{} : layers[i - 1].chain_id);
    }
  };
  std::vector<std::thread> threads;
  size_t n = std::min<size_t>(layers.size(), std::max(2u, std::thread::hardware_concurrency()));
  for (size_t t = 1; t < n; ++t) threads.emplace_back(worker);
  worker();
  for (auto& t : threads) t.join();
  for (const auto& s : results) RETURN_IF_ERROR(s);
  return absl::OkStatus();
}

absl::Status Store::Unpack(absl::string_view name) {
  ASSIGN_OR_RETURN(GcLease lease, AcquireGcLease());
  ASSIGN_OR_RETURN(ImageRecord rec, Resolve(name));
  for (const auto& l : rec.layers) {
    if (!HasBlob(l.blob.digest) &&
        ::access(absl::StrCat(LayersDir(), "/", l.chain_id.hex, "/layer.json").c_str(), F_OK) !=
            0) {
      return absl::FailedPreconditionError(absl::StrCat("layer ", l.blob.digest.String(), " of ",
                                                        name, " is neither unpacked nor stored"));
    }
  }
  return UnpackLayers(rec.layers);
}

absl::StatusOr<std::vector<std::string>> Store::PrepareLowerDirs(absl::string_view name) {
  RETURN_IF_ERROR(Unpack(name));
  return LowerDirs(name);
}

absl::Status Store::Tag(absl::string_view source, const Reference& target) {
  if (target.tag.empty() || !target.digest.empty()) {
    return absl::InvalidArgumentError("tag target must be name:tag without a digest");
  }
  ASSIGN_OR_RETURN(ImageRecord rec, Resolve(source));
  ASSIGN_OR_RETURN(ImageRecord updated, CommitImage(rec.manifest_digest, {target}));
  (void)updated;
  return absl::OkStatus();
}

absl::StatusOr<std::map<Digest, int>> Store::LayerRefCounts() const {
  std::map<Digest, int> counts;
  ASSIGN_OR_RETURN(std::vector<ImageRecord> all, List());
  for (const auto& rec : all) {
    for (const auto& l : rec.layers) ++counts[l.chain_id];
  }
  for (const std::string& name : ListDir(root_ + "/leases")) {
    auto text = base::ReadFile(absl::StrCat(root_, "/leases/", name));
    if (!text.ok()) continue;
    json j = json::parse(*text, nullptr, false);
    if (j.is_discarded()) continue;
    auto chains = ParseDigestList(j.value("chains", json::array()));
    if (!chains.ok()) continue;
    for (const auto& c : *chains) ++counts[c];
  }
  return counts;
}

absl::Status Store::AddContainerRef(absl::string_view container_id, absl::string_view image) {
  if (container_id.empty() || container_id.find('/') != absl::string_view::npos ||
      container_id[0] == '.') {
    return absl::InvalidArgumentError(absl::StrCat("invalid container id \"", container_id, "\""));
  }
  ASSIGN_OR_RETURN(UniqueFd meta, Lock("meta.lock", LOCK_EX));
  ASSIGN_OR_RETURN(ImageRecord rec, Resolve(image));
  std::vector<Digest> chains;
  for (const auto& l : rec.layers) chains.push_back(l.chain_id);
  json j = {{"image", rec.id.String()}, {"chains", DigestList(chains)}};
  return base::WriteFileAtomic(absl::StrCat(root_, "/leases/", container_id, ".json"), j.dump());
}

absl::Status Store::RemoveContainerRef(absl::string_view container_id) {
  std::string path = absl::StrCat(root_, "/leases/", container_id, ".json");
  if (::unlink(path.c_str()) != 0 && errno != ENOENT)
    return base::ErrnoStatus(errno, "unlink ", path);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> Store::RelativeLowerDirs(absl::string_view name) const {
  ASSIGN_OR_RETURN(ImageRecord rec, Resolve(name));
  std::vector<std::string> out;
  for (auto it = rec.layers.rbegin(); it != rec.layers.rend(); ++it) {
    std::string rel = absl::StrCat(it->chain_id.hex, "/diff");
    if (::access((LayersDir() + "/" + rel).c_str(), F_OK) != 0) {
      return absl::FailedPreconditionError(
          absl::StrCat("layer ", it->chain_id.String(), " of image ", name,
                       " is not unpacked (pulled without unpacking; use PrepareLowerDirs)"));
    }
    out.push_back(std::move(rel));
  }
  return out;
}

absl::StatusOr<std::vector<std::string>> Store::LowerDirs(absl::string_view name) const {
  ASSIGN_OR_RETURN(std::vector<std::string> rel, RelativeLowerDirs(name));
  for (auto& r : rel) r = LayersDir() + "/" + r;
  return rel;
}

absl::Status Store::DeleteUnreferenced(RemoveReport* report) {
  ASSIGN_OR_RETURN(auto counts, LayerRefCounts());
  for (const std::string& hex : ListDir(LayersDir())) {
    auto d = ParseDigest("sha256:" + hex);
    if (!d.ok() || counts.count(*d) != 0) continue;
    RETURN_IF_ERROR(RemoveDirTree(LayersDir() + "/" + hex, TmpDir()));
    report->deleted_layers.push_back(*d);
  }
  std::set<std::string> live;
  ASSIGN_OR_RETURN(std::vector<ImageRecord> all, List());
  for (const auto& rec : all) {
    live.insert(rec.manifest_digest.hex);
    live.insert(rec.id.hex);
    for (const auto& l : rec.layers) live.insert(l.blob.digest.hex);
  }
  std::string blobs = root_ + "/blobs/sha256";
  for (const std::string& hex : ListDir(blobs)) {
    if (live.count(hex) != 0) continue;
    std::string p = blobs + "/" + hex;
    struct stat st;
    if (::stat(p.c_str(), &st) == 0) report->reclaimed_bytes += st.st_size;
    if (::unlink(p.c_str()) != 0 && errno != ENOENT) return base::ErrnoStatus(errno, "unlink ", p);
  }
  return absl::OkStatus();
}

absl::StatusOr<RemoveReport> Store::Remove(absl::string_view name, bool force) {
  ASSIGN_OR_RETURN(UniqueFd gc, Lock("gc.lock", LOCK_EX));
  RemoveReport report;
  {
    ASSIGN_OR_RETURN(UniqueFd meta, Lock("meta.lock", LOCK_EX));
    ASSIGN_OR_RETURN(ImageRecord rec, Resolve(name));
    // A tag argument on an image with other names only removes that name.
    auto ref = ParseReference(name);
    bool by_name = !absl::StartsWith(name, "sha256:") && ref.ok() &&
                   (Contains(rec.repo_tags, ref->String()) || !ref->digest.empty());
    // As in Docker, repo digests do not keep an image alive once its last tag is removed.
    if (by_name && ref->digest.empty() && rec.repo_tags.size() > 1) {
      rec.repo_tags.erase(std::find(rec.repo_tags.begin(), rec.repo_tags.end(), ref->String()));
      report.untagged.push_back(ref->String());
      RETURN_IF_ERROR(WriteRecord(rec));
      return report;
    }
    if (!by_name && rec.repo_tags.size() > 1 && !force) {
      return absl::FailedPreconditionError(absl::StrCat("image ", rec.id.hex.substr(0, 12),
                                                        " is referenced by ", rec.repo_tags.size(),
                                                        " tags; remove them by name or use force"));
    }
    for (const std::string& lease : ListDir(root_ + "/leases")) {
      auto text = base::ReadFile(absl::StrCat(root_, "/leases/", lease));
      if (!text.ok() || text->find(rec.id.String()) == std::string::npos) continue;
      if (!force) {
        return absl::FailedPreconditionError(absl::StrCat("image ", rec.id.hex.substr(0, 12),
                                                          " is used by container ",
                                                          lease.substr(0, lease.size() - 5)));
      }
    }
    report.untagged = rec.repo_tags;
    for (const auto& d : rec.repo_digests) report.untagged.push_back(d);
    std::string path = absl::StrCat(root_, "/images/", rec.id.hex, ".json");
    if (::unlink(path.c_str()) != 0) return base::ErrnoStatus(errno, "unlink ", path);
    report.deleted_images.push_back(rec.id);
  }
  RETURN_IF_ERROR(DeleteUnreferenced(&report));
  return report;
}

absl::StatusOr<RemoveReport> Store::Prune(bool all) {
  ASSIGN_OR_RETURN(UniqueFd gc, Lock("gc.lock", LOCK_EX));
  RemoveReport report;
  {
    ASSIGN_OR_RETURN(UniqueFd meta, Lock("meta.lock", LOCK_EX));
    std::string leases;
    for (const std::string& lease : ListDir(root_ + "/leases")) {
      auto text = base::ReadFile(absl::StrCat(root_, "/leases/", lease));
      if (text.ok()) leases += *text;
    }
    ASSIGN_OR_RETURN(std::vector<ImageRecord> images, List());
    for (const auto& rec : images) {
      bool dangling = rec.repo_tags.empty();
      bool used = leases.find(rec.id.String()) != std::string::npos;
      if (used || !(dangling || all)) continue;
      std::string path = absl::StrCat(root_, "/images/", rec.id.hex, ".json");
      if (::unlink(path.c_str()) != 0) return base::ErrnoStatus(errno, "unlink ", path);
      report.deleted_images.push_back(rec.id);
      for (const auto& t : rec.repo_tags) report.untagged.push_back(t);
    }
  }
  // Exclusive gc.lock: no ingestion is running, so everything in tmp/ is garbage.
  UniqueFd tmp(::open(TmpDir().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  for (const std::string& name : ListDir(TmpDir())) {
    RETURN_IF_ERROR(RemoveTreeAt(tmp.get(), name));
  }
  RETURN_IF_ERROR(DeleteUnreferenced(&report));
  return report;
}

}  // namespace shoal::runtime::images
