// shoald: the per-host daemon. Today it validates its flags, prepares its directories and
// probes the kernel; the agent and manager components are wired in by later issues.
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <string>

#include "CLI/CLI.hpp"
#include "base/log.h"
#include "base/status.h"
#include "kernel/features.h"

namespace {

absl::Status MakeDirs(const std::string& path, mode_t mode) {
  if (path.empty() || path[0] != '/') {
    return absl::InvalidArgumentError("path must be absolute, got '" + path + "'");
  }
  for (size_t pos = 1; pos <= path.size(); ++pos) {
    if (pos != path.size() && path[pos] != '/') continue;
    std::string prefix = path.substr(0, pos);
    if (::mkdir(prefix.c_str(), mode) != 0 && errno != EEXIST) {
      return shoal::base::ErrnoStatus(errno, "mkdir ", prefix);
    }
  }
  return absl::OkStatus();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"shoald: Shoal node daemon"};
  std::string root = "/var/lib/shoal";
  std::string exec_root = "/run/shoal";
  std::string cgroup_parent = "shoal";
  std::string log_level = "info";
  bool print_features = false;
  app.add_option("--root", root, "state directory")->capture_default_str();
  app.add_option("--exec-root", exec_root, "runtime directory (sockets, pids)")
      ->capture_default_str();
  app.add_option("--cgroup-parent", cgroup_parent, "cgroup under which containers live")
      ->capture_default_str();
  app.add_option("--log-level", log_level, "trace|debug|info|warn|error")->capture_default_str();
  app.add_flag("--print-features", print_features, "probe the kernel, print what it offers, exit");
  app.set_version_flag("--version", std::string("shoald ") + SHOAL_VERSION);
  CLI11_PARSE(app, argc, argv);

  if (auto s = shoal::base::InitLogging(log_level); !s.ok()) {
    std::fprintf(stderr, "shoald: --log-level: %s\n", std::string(s.message()).c_str());
    return 2;
  }
  auto features = shoal::kernel::ProbeFeatures();
  if (!features.ok()) {
    std::fprintf(stderr, "shoald: kernel probe failed: %s\n", features.status().ToString().c_str());
    return 1;
  }
  if (print_features) {
    std::printf("%s\n", features->ToString().c_str());
    return 0;
  }
  for (const auto& [flag, dir] : {std::pair{"--root", root}, std::pair{"--exec-root", exec_root}}) {
    if (auto s = MakeDirs(dir, 0700); !s.ok()) {
      std::fprintf(stderr, "shoald: %s: %s\n", flag, std::string(s.message()).c_str());
      return 2;
    }
  }
  spdlog::info("shoald {} starting: {}", SHOAL_VERSION, features->ToString());
  std::fprintf(stderr,
               "shoald: the agent and manager are not integrated yet; nothing to serve "
               "(see the status table in README.md)\n");
  return 3;
}
