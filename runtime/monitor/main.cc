// shoal-monitor: see runtime/monitor/monitor.h. Daemonizes (fork + setsid) unless --foreground:
// the launching process gets exit 0 once the container is created/started, or exit 1 with the
// error on stderr, and may then die without affecting the container.
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "CLI/CLI.hpp"
#include "kernel/features.h"
#include "runtime/monitor/monitor.h"

int main(int argc, char** argv) {
  using shoal::runtime::MonitorConfig;
  MonitorConfig config;
  std::string cgroup_mode = "auto", stdio = "log";
  bool foreground = false;
  CLI::App app{"shoal-monitor: parent of one container's PID 1"};
  app.add_option("--state-dir", config.state_dir, "state directory holding spec.json")
      ->required();
  app.add_option("--cgroup-root", config.runtime.cgroup.root);
  app.add_option("--cgroup-mode", cgroup_mode, "auto|v1|hybrid|v2");
  app.add_option("--cgroup-parent", config.runtime.cgroup_parent);
  app.add_option("--stdio", stdio, "log (JSON lines in the state dir) or inherit");
  app.add_option("--log-max-size", config.log_max_size, "bytes before rotation (0 = never)");
  app.add_option("--log-max-files", config.log_max_files);
  app.add_flag("--wait-start", config.wait_for_start, "stay created until a start command");
  app.add_flag("--foreground", foreground);
  CLI11_PARSE(app, argc, argv);
  config.log_stdio = stdio != "inherit";
  if (cgroup_mode == "auto") {
    auto f = shoal::kernel::ProbeFeatures({.cgroup_root = config.runtime.cgroup.root});
    if (!f.ok()) {
      fprintf(stderr, "shoal-monitor: %s\n", std::string(f.status().message()).c_str());
      return 1;
    }
    config.runtime.cgroup.mode = f->cgroup_mode;
  } else {
    config.runtime.cgroup.mode = cgroup_mode == "v2" ? shoal::kernel::CgroupMode::kV2
                                 : cgroup_mode == "v1" ? shoal::kernel::CgroupMode::kV1
                                                       : shoal::kernel::CgroupMode::kHybrid;
  }
  signal(SIGPIPE, SIG_IGN);
  int ready[2] = {-1, -1};
  if (!foreground) {
    if (pipe2(ready, O_CLOEXEC) != 0) return 1;
    pid_t pid = fork();
    if (pid < 0) return 1;
    if (pid > 0) {  // launcher side: report the child's outcome
      close(ready[1]);
      std::string msg;
      char buf[512];
      ssize_t n;
      // Read up to the newline, not EOF: the container's init (cloned from the monitor) holds
      // a copy of the write end until it execs.
      while (msg.find('\n') == std::string::npos && (n = read(ready[0], buf, sizeof(buf))) > 0) {
        msg.append(buf, n);
      }
      if (msg == "ok\n") return 0;
      fprintf(stderr, "%s", msg.empty() ? "shoal-monitor: exited during setup\n" : msg.c_str());
      return 1;
    }
    close(ready[0]);
    if (config.log_stdio) {  // do not hold the launcher's terminal or pipes open
      int null = open("/dev/null", O_RDWR);
      for (int i = 0; i < 3 && null >= 0; ++i) dup2(null, i);
      if (null > 2) close(null);
    }
    setsid();  // no controlling terminal, own session: survives the launcher
    // The launcher may be gone; reap the container's stragglers we might inherit.
    prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
  }
  auto status = shoal::runtime::RunMonitor(config, ready[1]);
  if (!status.ok()) {
    if (foreground) fprintf(stderr, "shoal-monitor: %s\n", std::string(status.message()).c_str());
    return 1;
  }
  return 0;
}
