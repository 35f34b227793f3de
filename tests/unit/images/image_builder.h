// Test helper: assembles OCI images (manifest + config + layers) from TarBuilder layers and
// writes them as an OCI layout directory or a legacy `docker save` tarball.
#pragma once

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "nlohmann/json.hpp"
#include "runtime/images/digest.h"
#include "runtime/images/manifest.h"
#include "tests/unit/images/tar_builder.h"
#include "tests/unit/images/test_util.h"

namespace shoal::runtime::images::testing {

struct BuiltImage {
  std::string manifest;
  std::string config;
  std::vector<std::string> layer_blobs;  // as stored (maybe compressed)
  std::vector<std::string> layer_tars;   // uncompressed
  Digest manifest_digest;
  Digest config_digest;
  Manifest parsed;
};

inline BuiltImage BuildImage(const std::vector<std::pair<TarBuilder, Compression>>& layers,
                             std::vector<std::string> cmd = {"/bin/sh"}, std::string label = "") {
  BuiltImage img;
  nlohmann::json diff_ids = nlohmann::json::array();
  img.parsed.media_type = media::kOciManifest;
  for (const auto& [tb, c] : layers) {
    std::string tar = tb.Build();
    std::string blob = c == Compression::kNone ? tar : tb.Build(c);
    diff_ids.push_back(Sha256Of(tar).String());
    Descriptor d;
    d.media_type = c == Compression::kGzip   ? media::kOciLayerGzip
                   : c == Compression::kZstd ? media::kOciLayerZstd
                                             : media::kOciLayer;
    d.digest = Sha256Of(blob);
    d.size = static_cast<int64_t>(blob.size());
    img.parsed.layers.push_back(d);
    img.layer_tars.push_back(std::move(tar));
    img.layer_blobs.push_back(std::move(blob));
  }
  nlohmann::json config = {
      {"architecture", "amd64"},
      {"os", "linux"},
      {"created", "2026-01-01T00:00:00Z"},
      {"config", {{"Cmd", cmd}, {"Env", {"PATH=/bin"}}, {"Labels", {{"l", label}}}}},
      {"rootfs", {{"type", "layers"}, {"diff_ids", diff_ids}}}};
  img.config = config.dump();
  img.config_digest = Sha256Of(img.config);
  img.parsed.config = {
      media::kOciConfig, img.config_digest, static_cast<int64_t>(img.config.size()), {}, {}};
  img.manifest = SerializeManifest(img.parsed);
  img.manifest_digest = Sha256Of(img.manifest);
  return img;
}

// A two-layer image from Debian's busybox-static: /bin/busybox + applet links, then /etc/motd.
inline BuiltImage BusyboxImage(std::string motd = "hello from shoal\n",
                               Compression c = Compression::kGzip) {
  TarBuilder base;
  base.Dir("bin").File("bin/busybox", Slurp("/bin/busybox"), 0755);
  for (const char* applet : {"sh", "echo", "cat", "ls", "sleep", "true"}) {
    base.Symlink(std::string("bin/") + applet, "busybox");
  }
  base.Dir("etc").Dir("tmp", 01777);
  TarBuilder top;
  top.Dir("etc").File("etc/motd", motd, 0644);
  return BuildImage({{base, c}, {top, c}}, {"/bin/cat", "/etc/motd"});
}

inline void WriteBlob(const std::string& dir, const Digest& d, const std::string& data) {
  std::filesystem::create_directories(dir + "/blobs/sha256");
  Spit(dir + "/blobs/sha256/" + d.hex, data);
}

inline void WriteOciLayout(const BuiltImage& img, const std::string& dir,
                           const std::string& ref_name) {
  std::filesystem::create_directories(dir);
  Spit(dir + "/oci-layout", R"({"imageLayoutVersion":"1.0.0"})");
  WriteBlob(dir, img.manifest_digest, img.manifest);
  WriteBlob(dir, img.config_digest, img.config);
  for (size_t i = 0; i < img.layer_blobs.size(); ++i) {
    WriteBlob(dir, img.parsed.layers[i].digest, img.layer_blobs[i]);
  }
  nlohmann::json index = {{"schemaVersion", 2},
                          {"mediaType", media::kOciIndex},
                          {"manifests",
                           {{{"mediaType", media::kOciManifest},
                             {"digest", img.manifest_digest.String()},
                             {"size", img.manifest.size()},
                             {"annotations",
                              {{"io.containerd.image.name", ref_name},
                               {"org.opencontainers.image.ref.name", ref_name}}}}}}};
  Spit(dir + "/index.json", index.dump());
}

// Legacy `docker save` tarball: manifest.json + <id>.json + <n>/layer.tar (uncompressed).
inline std::string DockerSaveTar(const BuiltImage& img, const std::string& repo_tag) {
  TarBuilder tb;
  nlohmann::json layers = nlohmann::json::array();
  for (size_t i = 0; i < img.layer_tars.size(); ++i) {
    std::string dir = std::to_string(i) + "abc";
    tb.Dir(dir).File(dir + "/layer.tar", img.layer_tars[i]).File(dir + "/VERSION", "1.0");
    layers.push_back(dir + "/layer.tar");
  }
  tb.File(img.config_digest.hex + ".json", img.config);
  nlohmann::json manifest = nlohmann::json::array({{{"Config", img.config_digest.hex + ".json"},
                                                    {"RepoTags", {repo_tag}},
                                                    {"Layers", layers}}});
  tb.File("manifest.json", manifest.dump());
  tb.File("repositories", "{}");
  return tb.Build();
}

}  // namespace shoal::runtime::images::testing
