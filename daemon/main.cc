// shoald: the per-host daemon (DESIGN.md §1). It validates its flags, prepares its directories,
// probes the kernel, then runs the node (daemon.h): resumes its cluster role from --root or waits
// for `shoal swarm init/join` on <exec-root>/shoald.sock. SIGTERM/SIGINT stop it cleanly.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <string>

#include "CLI/CLI.hpp"
#include "base/clock.h"
#include "base/log.h"
#include "base/random.h"
#include "base/status.h"
#include "daemon/daemon.h"
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

// Helper binaries default to the directory shoald runs from.
std::string Sibling(const std::string& name) {
  char buf[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n <= 0) return name;
  std::string self(buf, static_cast<size_t>(n));
  return self.substr(0, self.rfind('/') + 1) + name;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"shoald: Shoal node daemon"};
  std::string root = "/var/lib/shoal";
  std::string exec_root = "/run/shoal";
  std::string cgroup_parent = "shoal";
  std::string log_level = "info";
  std::string listen_addr = "0.0.0.0:2377";
  std::string advertise_addr;
  uint32_t data_path_port = 4789;
  std::string monitor_path = Sibling("shoal-monitor");
  std::string init_path = Sibling("shoal-init");
  bool no_agent = false;
  std::string hostname;
  bool no_image_pull = false;
  int raft_tick_ms = 100;
  int node_cert_expiry_s = 0;
  int role_check_ms = 5000;
  bool print_features = false;
  app.add_option("--root", root, "state directory")->capture_default_str();
  app.add_option("--exec-root", exec_root, "runtime directory (sockets, pids)")
      ->capture_default_str();
  app.add_option("--cgroup-parent", cgroup_parent, "cgroup under which containers live")
      ->capture_default_str();
  app.add_option("--log-level", log_level, "trace|debug|info|warn|error")->capture_default_str();
  app.add_option("--listen-addr", listen_addr,
                 "manager listener (host:port) used by `swarm init/join` unless they give one")
      ->capture_default_str();
  app.add_option("--advertise-addr", advertise_addr,
                 "address (host[:port]) other nodes reach this manager at; default: the listen "
                 "address, or this host's first non-loopback IPv4 address for 0.0.0.0");
  app.add_option("--data-path-port", data_path_port, "VXLAN UDP port of the overlay data path")
      ->check(CLI::Range(1024, 49151))
      ->capture_default_str();
  app.add_option("--monitor-path", monitor_path, "shoal-monitor binary")->capture_default_str();
  app.add_option("--init-path", init_path, "shoal-init binary")->capture_default_str();
  app.add_flag("--no-agent", no_agent, "run no worker agent (a manager-only node)");
  app.add_flag("--no-image-pull", no_image_pull,
               "never pull images: a task whose image is not in the local store is rejected");
  app.add_option("--hostname", hostname, "node name shown by `shoal node ls` (default: the host's)");
  app.add_option("--raft-tick-ms", raft_tick_ms, "raft tick in milliseconds")
      ->check(CLI::Range(10, 10000))
      ->capture_default_str()
      ->group("");  // hidden: labs and tests
  app.add_option("--node-cert-expiry-seconds", node_cert_expiry_s,
                 "swarm init: node certificate lifetime in seconds (default 90 days); as low as "
                 "10 s for labs and tests that watch renewals")
      ->check(CLI::Range(10, 10 * 365 * 24 * 3600))
      ->group("");  // hidden: labs and tests
  app.add_option("--role-check-ms", role_check_ms,
                 "how often the node compares its role with the one the managers record")
      ->check(CLI::Range(100, 600000))
      ->capture_default_str()
      ->group("");  // hidden: labs and tests
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
  // Signals are taken synchronously by this thread; every thread started later inherits the mask.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  spdlog::info("shoald {} starting: {}", SHOAL_VERSION, features->ToString());
  shoal::base::RealClock clock;
  shoal::base::SystemRandom random;
  shoal::daemon::DaemonOptions o;
  o.root = root;
  o.exec_root = exec_root;
  o.cgroup_parent = cgroup_parent;
  o.listen_addr = listen_addr;
  o.advertise_addr = advertise_addr;
  o.data_path_port = data_path_port;
  o.agent.data_path_port = static_cast<uint16_t>(data_path_port);
  o.raft_tick = absl::Milliseconds(raft_tick_ms);
  o.node_cert_expiry = absl::Seconds(node_cert_expiry_s);
  o.renewal.role_check_period = absl::Milliseconds(role_check_ms);
  o.agent.state_dir = root + "/agent";
  o.agent.exec_root = exec_root;
  o.agent.cgroup_parent = cgroup_parent;
  o.agent.image_root = root + "/images";
  o.agent.monitor_path = monitor_path;
  o.agent.init_path = init_path;
  o.agent.disabled = no_agent;
  o.agent.features = *features;
  o.agent.hostname = hostname;
  o.agent.pull_missing_images = !no_image_pull;
  o.agent.engine_version = SHOAL_VERSION;
  o.clock = &clock;
  o.random = &random;
  auto daemon = shoal::daemon::Daemon::Start(std::move(o));
  if (!daemon.ok()) {
    std::fprintf(stderr, "shoald: %s\n", std::string(daemon.status().message()).c_str());
    return 1;
  }
  int sig = 0;
  sigwait(&stop_signals, &sig);
  spdlog::info("shoald: signal {}: shutting down", sig);
  (*daemon)->Stop();
  spdlog::info("shoald: stopped");
  return 0;
}
