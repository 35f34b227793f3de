#include "runtime/oci/common.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/file.h"
#include "base/status.h"
#include "base/unique_fd.h"
#include "kernel/features.h"
#include "nlohmann/json.hpp"

namespace shoal::runtime::oci {

int Globals::Fail(const absl::Status& s) const {
  std::string msg(s.message());
  fprintf(stderr, "shoal-runtime: %s\n", msg.c_str());
  if (!log.empty()) {
    int fd = open(log.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd >= 0) {
      std::string line =
          log_format == "json"
              ? nlohmann::json({{"level", "error"}, {"msg", msg}, {"time", Now()}}).dump()
              : absl::StrCat("error: ", msg);
      line += "\n";
      (void)!write(fd, line.data(), line.size());
      close(fd);
    }
  }
  return 1;
}

RuntimeOptions Options(const std::string& cgroup_parent) {
  RuntimeOptions o;
  auto f = kernel::ProbeFeatures();
  o.cgroup.mode = f.ok() ? f->cgroup_mode : kernel::CgroupMode::kV2;
  o.cgroup_parent = cgroup_parent;
  return o;
}

kernel::CgroupConfig CgroupConfigFor() { return Options("").cgroup; }

void UseSeccompDiskCache(Runtime& rt, const std::string& root) {
  rt.seccomp().SetDiskCacheDir(root + "/.cache/seccomp");
}

std::string AbsBundle(const std::string& bundle_in) {
  std::string bundle = std::filesystem::absolute(bundle_in).lexically_normal();
  while (bundle.size() > 1 && bundle.back() == '/') bundle.pop_back();
  return bundle;
}

absl::StatusOr<OciBundle> LoadBundle(const std::string& bundle, const std::string& id,
                                     const Globals& g) {
  auto text = base::ReadFile(bundle + "/config.json");
  if (!text.ok()) return text.status();
  auto b = ParseOciConfig(*text, bundle, id);
  if (!b.ok()) return b.status();
  if (b->cgroup_parent.empty()) {
    if (g.systemd_cgroup) {
      return absl::InvalidArgumentError(
          "--systemd-cgroup: the systemd cgroup driver is not supported (use cgroupfs)");
    }
    b->cgroup_parent = g.cgroup_parent;
  }
  return b;
}

void WritePidFile(const std::string& path, pid_t pid) {
  if (!path.empty()) (void)base::WriteFileAtomic(path, absl::StrCat(pid), 0644);
}

absl::Status WriteOomScoreAdj(pid_t pid, const std::optional<int>& adj) {
  if (!adj) return absl::OkStatus();
  std::string path = absl::StrCat("/proc/", pid, "/oom_score_adj");
  base::UniqueFd fd(open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd) return base::ErrnoStatus(errno, "process.oomScoreAdj: open ", path);
  return base::WriteAll(fd.get(), absl::StrCat(*adj), "process.oomScoreAdj");
}

std::string Now() { return absl::FormatTime(absl::RFC3339_full, absl::Now(), absl::UTCTimeZone()); }

}  // namespace shoal::runtime::oci
