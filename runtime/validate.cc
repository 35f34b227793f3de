#include <fcntl.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/status.h"
#include "base/unique_fd.h"
#include "kernel/caps/caps.h"
#include "kernel/mount/mount.h"
#include "runtime/spec.h"

namespace shoal::runtime {
namespace {

absl::Status Bad(absl::string_view field, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", why));
}

absl::Status CheckAbsoluteClean(const std::string& path, absl::string_view field) {
  if (path.empty() || path.front() != '/') {
    return Bad(field, absl::StrCat("\"", path, "\" must be an absolute path"));
  }
  for (absl::string_view part : absl::StrSplit(path, '/')) {
    if (part == "..") return Bad(field, absl::StrCat("\"", path, "\" must not contain \"..\""));
  }
  return absl::OkStatus();
}

}  // namespace

int RlimitResource(const std::string& name) {
  std::string n = absl::AsciiStrToUpper(name);
  if (!absl::StartsWith(n, "RLIMIT_")) n = "RLIMIT_" + n;
  static const std::pair<const char*, int> kTable[] = {
      {"RLIMIT_CPU", RLIMIT_CPU},           {"RLIMIT_FSIZE", RLIMIT_FSIZE},
      {"RLIMIT_DATA", RLIMIT_DATA},         {"RLIMIT_STACK", RLIMIT_STACK},
      {"RLIMIT_CORE", RLIMIT_CORE},         {"RLIMIT_RSS", RLIMIT_RSS},
      {"RLIMIT_NPROC", RLIMIT_NPROC},       {"RLIMIT_NOFILE", RLIMIT_NOFILE},
      {"RLIMIT_MEMLOCK", RLIMIT_MEMLOCK},   {"RLIMIT_AS", RLIMIT_AS},
      {"RLIMIT_LOCKS", RLIMIT_LOCKS},       {"RLIMIT_SIGPENDING", RLIMIT_SIGPENDING},
      {"RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE}, {"RLIMIT_NICE", RLIMIT_NICE},
      {"RLIMIT_RTPRIO", RLIMIT_RTPRIO},     {"RLIMIT_RTTIME", RLIMIT_RTTIME}};
  for (const auto& [k, v] : kTable) {
    if (n == k) return v;
  }
  return -1;
}

absl::Status ValidateId(const std::string& id) {
  if (id.empty() || id.size() > 128) return Bad("id", "must be 1 to 128 characters");
  for (size_t i = 0; i < id.size(); ++i) {
    char c = id[i];
    bool ok = absl::ascii_isalnum(c) || (i > 0 && (c == '_' || c == '.' || c == '-'));
    if (!ok) {
      return Bad("id", absl::StrCat("\"", id, "\" must match [A-Za-z0-9][A-Za-z0-9_.-]*"));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateProcess(const ProcessSpec& p, const std::string& prefix) {
  if (p.args.empty() || p.args[0].empty()) return Bad(prefix + ".args", "must not be empty");
  RETURN_IF_ERROR(CheckAbsoluteClean(p.cwd, prefix + ".cwd"));
  for (size_t i = 0; i < p.env.size(); ++i) {
    if (p.env[i].find('=') == std::string::npos || p.env[i].front() == '=') {
      return Bad(absl::StrCat(prefix, ".env[", i, "]"),
                 absl::StrCat("\"", p.env[i], "\" must look like KEY=VALUE"));
    }
  }
  auto caps =
      kernel::ComputeCaps(kernel::DockerDefaultCaps(), p.cap_add, p.cap_drop, kernel::LastCap());
  if (!caps.ok()) return Bad(prefix, caps.status().message());
  for (size_t i = 0; i < p.rlimits.size(); ++i) {
    std::string field = absl::StrCat(prefix, ".rlimits[", i, "]");
    if (RlimitResource(p.rlimits[i].type) < 0) {
      return Bad(field, absl::StrCat("unknown rlimit \"", p.rlimits[i].type, "\""));
    }
    if (p.rlimits[i].soft > p.rlimits[i].hard) return Bad(field, "soft must be <= hard");
  }
  return absl::OkStatus();
}

namespace {

absl::Status ValidateMap(const std::vector<kernel::IdMapping>& maps, const std::string& field) {
  if (maps.size() > kernel::kMaxIdMapLines) {
    return Bad(field, absl::StrCat(maps.size(), " lines; the kernel accepts at most ",
                                   kernel::kMaxIdMapLines));
  }
  auto end = [](uint32_t start, uint32_t size) { return uint64_t{start} + size; };
  for (size_t i = 0; i < maps.size(); ++i) {
    const kernel::IdMapping& m = maps[i];
    std::string fi = absl::StrCat(field, "[", i, "]");
    if (m.size == 0) return Bad(fi + ".size", "must be > 0");
    // (uid_t)-1 is never a valid id, so a range may end at 4294967295 exclusive.
    for (auto [start, what] :
         {std::pair{m.container_id, "container_id"}, std::pair{m.host_id, "host_id"}}) {
      if (end(start, m.size) > uint64_t{UINT32_MAX}) {
        return Bad(fi, absl::StrCat(what, " ", start, " + size ", m.size,
                                    " goes past the largest id 4294967294"));
      }
    }
    for (size_t j = 0; j < i; ++j) {
      const kernel::IdMapping& o = maps[j];
      auto overlap = [&](uint32_t a, uint32_t b) {
        return a < end(b, o.size) && b < end(a, m.size);
      };
      if (overlap(m.container_id, o.container_id)) {
        return Bad(
            fi, absl::StrCat("container ids ", m.container_id, "-", end(m.container_id, m.size) - 1,
                             " overlap ", field, "[", j, "]"));
      }
      if (overlap(m.host_id, o.host_id)) {
        return Bad(fi, absl::StrCat("host ids ", m.host_id, "-", end(m.host_id, m.size) - 1,
                                    " overlap ", field, "[", j, "]"));
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateIdMappings(const ContainerSpec& spec) {
  if (!spec.user_namespace()) return absl::OkStatus();
  if (spec.uid_mappings.empty()) return Bad("uid_mappings", "must be set with gid_mappings");
  if (spec.gid_mappings.empty()) return Bad("gid_mappings", "must be set with uid_mappings");
  RETURN_IF_ERROR(ValidateMap(spec.uid_mappings, "uid_mappings"));
  RETURN_IF_ERROR(ValidateMap(spec.gid_mappings, "gid_mappings"));
  // The setup runs as root inside the namespace (it owns the container's tmpfs mounts).
  if (!kernel::MapToHost(spec.uid_mappings, 0)) {
    return Bad("uid_mappings", "must map container id 0 (the container's root)");
  }
  if (!kernel::MapToHost(spec.gid_mappings, 0)) {
    return Bad("gid_mappings", "must map container id 0 (the container's root group)");
  }
  const ProcessSpec& p = spec.process;
  if (!kernel::MapToHost(spec.uid_mappings, p.uid)) {
    return Bad("process.uid", absl::StrCat(p.uid, " is not mapped by uid_mappings"));
  }
  if (!kernel::MapToHost(spec.gid_mappings, p.gid)) {
    return Bad("process.gid", absl::StrCat(p.gid, " is not mapped by gid_mappings"));
  }
  for (size_t i = 0; i < p.additional_gids.size(); ++i) {
    if (!kernel::MapToHost(spec.gid_mappings, p.additional_gids[i])) {
      return Bad(absl::StrCat("process.additional_gids[", i, "]"),
                 absl::StrCat(p.additional_gids[i], " is not mapped by gid_mappings"));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateSpec(const ContainerSpec& spec) {
  RETURN_IF_ERROR(ValidateId(spec.id));
  RETURN_IF_ERROR(CheckAbsoluteClean(spec.rootfs, "rootfs"));
  struct stat st;
  if (stat(spec.rootfs.c_str(), &st) != 0) {
    return Bad("rootfs", absl::StrCat("\"", spec.rootfs, "\": ", strerror(errno)));
  }
  if (!S_ISDIR(st.st_mode)) {
    return Bad("rootfs", absl::StrCat("\"", spec.rootfs, "\" is not a directory"));
  }
  const OverlayRootfs& ov = spec.overlay;
  if (!ov.lower_dirs.empty()) {
    for (size_t i = 0; i < ov.lower_dirs.size(); ++i) {
      std::string field = absl::StrCat("overlay.lower_dirs[", i, "]");
      RETURN_IF_ERROR(CheckAbsoluteClean(ov.lower_dirs[i], field));
      if (ov.lower_dirs[i].find_first_of(",:") != std::string::npos) {
        return Bad(field, "must not contain ',' or ':'");
      }
      if (stat(ov.lower_dirs[i].c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
        return Bad(field, absl::StrCat("\"", ov.lower_dirs[i], "\" is not a directory"));
      }
    }
    if (ov.upper_dir.empty() != ov.work_dir.empty()) {
      return Bad("overlay", "upper_dir and work_dir go together");
    }
    if (ov.upper_dir.empty() && ov.lower_dirs.size() < 2) {
      return Bad("overlay.upper_dir", "a read-only overlay needs at least 2 lower_dirs");
    }
    for (const auto& [dir, field] : {std::pair{ov.upper_dir, "overlay.upper_dir"},
                                     std::pair{ov.work_dir, "overlay.work_dir"}}) {
      if (dir.empty()) continue;
      RETURN_IF_ERROR(CheckAbsoluteClean(dir, field));
      if (stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
        return Bad(field, absl::StrCat("\"", dir, "\" is not a directory"));
      }
    }
  }
  if (spec.hostname.size() > 64) return Bad("hostname", "must be at most 64 characters");
  for (char c : spec.hostname) {
    if (!absl::ascii_isalnum(c) && c != '-' && c != '.') {
      return Bad("hostname", absl::StrCat("\"", spec.hostname, "\" has invalid characters"));
    }
  }
  RETURN_IF_ERROR(ValidateProcess(spec.process, "process"));
  RETURN_IF_ERROR(ValidateIdMappings(spec));
  // Paths inside the rootfs are checked against the top-most layer when the rootfs is an
  // overlay (the mountpoint itself is empty until the child mounts it).
  const std::string& top = ov.lower_dirs.empty()  ? spec.rootfs
                           : ov.upper_dir.empty() ? ov.lower_dirs.front()
                                                  : ov.upper_dir;
  RETURN_IF_ERROR(kernel::CheckInsideRoot(top, spec.process.cwd, "process.cwd"));
  if (!spec.netns_path.empty()) {
    RETURN_IF_ERROR(CheckAbsoluteClean(spec.netns_path, "netns_path"));
    base::UniqueFd fd(open(spec.netns_path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return Bad("netns_path", absl::StrCat("\"", spec.netns_path, "\": ", strerror(errno)));
    if (ioctl(fd.get(), NS_GET_NSTYPE) != CLONE_NEWNET) {
      return Bad("netns_path",
                 absl::StrCat("\"", spec.netns_path, "\" is not a network namespace"));
    }
  }
  if (!spec.init_path.empty()) {
    RETURN_IF_ERROR(CheckAbsoluteClean(spec.init_path, "init_path"));
    if (stat(spec.init_path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
      return Bad("init_path", absl::StrCat("\"", spec.init_path, "\" is not a regular file"));
    }
  }
  for (size_t i = 0; i < spec.mounts.size(); ++i) {
    const MountSpec& m = spec.mounts[i];
    std::string field = absl::StrCat("mounts[", i, "]");
    RETURN_IF_ERROR(CheckAbsoluteClean(m.destination, field + ".destination"));
    if (m.destination == "/") return Bad(field + ".destination", "must not be /");
    for (const char* reserved : {"/proc", "/sys", "/dev"}) {
      if (m.destination == reserved) {
        return Bad(field + ".destination",
                   absl::StrCat("\"", m.destination, "\" is managed by the runtime"));
      }
    }
    auto options = kernel::ParseMountOptions(m.options);
    if (!options.ok()) return Bad(field, options.status().message());
    if (m.type == "bind") {
      RETURN_IF_ERROR(CheckAbsoluteClean(m.source, field + ".source"));
      if (stat(m.source.c_str(), &st) != 0) {
        return Bad(field + ".source", absl::StrCat("\"", m.source, "\": ", strerror(errno)));
      }
    } else if (m.type != "tmpfs") {
      return Bad(field + ".type", absl::StrCat("\"", m.type, "\" must be \"bind\" or \"tmpfs\""));
    }
    RETURN_IF_ERROR(kernel::CheckInsideRoot(top, m.destination, field + ".destination"));
  }
  return kernel::ValidateResources(spec.resources);
}

}  // namespace shoal::runtime
