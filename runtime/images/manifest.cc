#include "runtime/images/manifest.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "nlohmann/json.hpp"

namespace shoal::runtime::images {
namespace {

using nlohmann::json;

absl::StatusOr<json> ParseJson(absl::string_view text, absl::string_view what) {
  json j = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return absl::InvalidArgumentError(absl::StrCat(what, ": not valid JSON"));
  if (!j.is_object()) return absl::InvalidArgumentError(absl::StrCat(what, ": not a JSON object"));
  return j;
}

std::string Str(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::vector<std::string> StrList(const json& j, const char* key) {
  std::vector<std::string> out;
  auto it = j.find(key);
  if (it == j.end() || !it->is_array()) return out;
  for (const auto& v : *it) {
    if (v.is_string()) out.push_back(v.get<std::string>());
  }
  return out;
}

absl::StatusOr<Descriptor> ParseDescriptor(const json& j, const std::string& where) {
  if (!j.is_object()) return absl::InvalidArgumentError(where + ": not an object");
  Descriptor d;
  d.media_type = Str(j, "mediaType");
  auto digest = ParseDigest(Str(j, "digest"));
  if (!digest.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(where, ".digest: ", digest.status().message()));
  }
  d.digest = *std::move(digest);
  auto size = j.find("size");
  if (size == j.end() || !size->is_number_integer() || size->get<int64_t>() < 0) {
    return absl::InvalidArgumentError(where + ".size: missing or not a non-negative integer");
  }
  d.size = size->get<int64_t>();
  if (auto p = j.find("platform"); p != j.end() && p->is_object()) {
    d.platform = {Str(*p, "os"), Str(*p, "architecture"), Str(*p, "variant")};
  }
  if (auto a = j.find("annotations"); a != j.end() && a->is_object()) {
    for (const auto& [k, v] : a->items()) {
      if (v.is_string()) d.annotations[k] = v.get<std::string>();
    }
  }
  return d;
}

json DescriptorJson(const Descriptor& d) {
  json j = {{"mediaType", d.media_type}, {"digest", d.digest.String()}, {"size", d.size}};
  if (!d.annotations.empty()) j["annotations"] = d.annotations;
  return j;
}

}  // namespace

bool IsIndexMediaType(absl::string_view mt) {
  return mt == media::kOciIndex || mt == media::kDockerManifestList;
}
bool IsManifestMediaType(absl::string_view mt) {
  return mt == media::kOciManifest || mt == media::kDockerManifest;
}
bool IsLayerMediaType(absl::string_view mt) {
  return absl::StartsWith(mt, "application/vnd.oci.image.layer.") ||
         mt == media::kDockerLayerGzip ||
         mt == "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
}

absl::StatusOr<std::string> DetectMediaType(absl::string_view text) {
  auto j = ParseJson(text, "manifest");
  if (!j.ok()) return j.status();
  std::string mt = Str(*j, "mediaType");
  if (!mt.empty()) return mt;
  if (j->contains("manifests")) return std::string(media::kOciIndex);
  if (j->contains("layers")) return std::string(media::kOciManifest);
  if (j->contains("fsLayers")) {
    return absl::UnimplementedError("Docker schema 1 manifests are not supported (deprecated)");
  }
  return absl::InvalidArgumentError("manifest: no mediaType and neither layers nor manifests");
}

absl::StatusOr<Manifest> ParseManifest(absl::string_view text) {
  auto j = ParseJson(text, "manifest");
  if (!j.ok()) return j.status();
  auto sv = j->find("schemaVersion");
  if (sv == j->end() || !sv->is_number_integer() || sv->get<int>() != 2) {
    return absl::InvalidArgumentError("manifest: schemaVersion must be 2");
  }
  Manifest m;
  m.media_type = Str(*j, "mediaType");
  if (m.media_type.empty()) m.media_type = media::kOciManifest;
  if (!IsManifestMediaType(m.media_type)) {
    return absl::InvalidArgumentError(
        absl::StrCat("manifest: unsupported mediaType \"", m.media_type, "\""));
  }
  auto config = j->find("config");
  if (config == j->end()) return absl::InvalidArgumentError("manifest: config missing");
  auto cd = ParseDescriptor(*config, "manifest: config");
  if (!cd.ok()) return cd.status();
  m.config = *std::move(cd);
  auto layers = j->find("layers");
  if (layers == j->end() || !layers->is_array()) {
    return absl::InvalidArgumentError("manifest: layers missing or not an array");
  }
  for (size_t i = 0; i < layers->size(); ++i) {
    std::string where = absl::StrCat("manifest: layers[", i, "]");
    auto d = ParseDescriptor((*layers)[i], where);
    if (!d.ok()) return d.status();
    if (!IsLayerMediaType(d->media_type)) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ".mediaType: unsupported layer type \"", d->media_type, "\""));
    }
    m.layers.push_back(*std::move(d));
  }
  return m;
}

absl::StatusOr<Index> ParseIndex(absl::string_view text) {
  auto j = ParseJson(text, "index");
  if (!j.ok()) return j.status();
  Index idx;
  idx.media_type = Str(*j, "mediaType");
  if (idx.media_type.empty()) idx.media_type = media::kOciIndex;
  auto ms = j->find("manifests");
  if (ms == j->end() || !ms->is_array()) {
    return absl::InvalidArgumentError("index: manifests missing or not an array");
  }
  for (size_t i = 0; i < ms->size(); ++i) {
    auto d = ParseDescriptor((*ms)[i], absl::StrCat("index: manifests[", i, "]"));
    if (!d.ok()) return d.status();
    idx.manifests.push_back(*std::move(d));
  }
  return idx;
}

absl::StatusOr<ImageConfig> ParseImageConfig(absl::string_view text) {
  auto j = ParseJson(text, "image config");
  if (!j.ok()) return j.status();
  ImageConfig c;
  c.os = Str(*j, "os");
  c.architecture = Str(*j, "architecture");
  c.variant = Str(*j, "variant");
  c.created = Str(*j, "created");
  auto rootfs = j->find("rootfs");
  if (rootfs == j->end() || !rootfs->is_object()) {
    return absl::InvalidArgumentError("image config: rootfs missing");
  }
  std::vector<std::string> ids = StrList(*rootfs, "diff_ids");
  for (size_t i = 0; i < ids.size(); ++i) {
    auto d = ParseDigest(ids[i]);
    if (!d.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("image config: rootfs.diff_ids[", i, "]: ", d.status().message()));
    }
    c.diff_ids.push_back(*std::move(d));
  }
  if (auto cfg = j->find("config"); cfg != j->end() && cfg->is_object()) {
    c.env = StrList(*cfg, "Env");
    c.entrypoint = StrList(*cfg, "Entrypoint");
    c.cmd = StrList(*cfg, "Cmd");
    c.working_dir = Str(*cfg, "WorkingDir");
    c.user = Str(*cfg, "User");
    c.stop_signal = Str(*cfg, "StopSignal");
    if (auto l = cfg->find("Labels"); l != cfg->end() && l->is_object()) {
      for (const auto& [k, v] : l->items()) {
        if (v.is_string()) c.labels[k] = v.get<std::string>();
      }
    }
  }
  return c;
}

absl::StatusOr<Descriptor> SelectPlatform(const Index& index, const Platform& want) {
  std::vector<std::string> seen;
  const Descriptor* fallback = nullptr;
  for (const Descriptor& d : index.manifests) {
    const Platform& p = d.platform;
    seen.push_back(
        absl::StrCat(p.os, "/", p.architecture, p.variant.empty() ? "" : "/", p.variant));
    if (p.os != want.os || p.architecture != want.architecture) continue;
    if (want.variant.empty() || p.variant == want.variant) return d;
    if (fallback == nullptr) fallback = &d;
  }
  if (fallback != nullptr) return *fallback;
  return absl::NotFoundError(absl::StrCat("no manifest for platform ", want.os, "/",
                                          want.architecture,
                                          " (available: ", absl::StrJoin(seen, ", "), ")"));
}

std::string SerializeManifest(const Manifest& m) {
  json j = {
      {"schemaVersion", 2}, {"mediaType", m.media_type}, {"config", DescriptorJson(m.config)}};
  json layers = json::array();
  for (const auto& l : m.layers) layers.push_back(DescriptorJson(l));
  j["layers"] = layers;
  return j.dump();
}

}  // namespace shoal::runtime::images
