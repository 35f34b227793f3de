// The shoal-monitor process (DESIGN.md §4, runtime.md §5 "shim pattern"): creates one container
// with the runtime library, so it is the parent of PID 1; copies its stdout/stderr into JSON
// logs (or lets it inherit the monitor's stdio); records the exit status and OOM kill in the
// state directory; answers a small line protocol on <state>/monitor.sock (0600):
//   "start" | "kill <sig>" | "stop <sig> <grace_ms>" | "state" | "resize <rows> <cols>"
//   ->  "ok ..." or "error <text>"
// With spec.process.terminal the monitor holds the pty master: what the container writes to its
// terminal is logged as stream "stdout" (with the terminal's \r\n line ends, as docker logs
// shows them), and "resize" sets the window size (SIGWINCH inside).
// It outlives whoever launched it; a new controller re-adopts it from the state directory.
//
// State directory files: spec.json (input), state.json, exit.json, container.log[.N], error.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "runtime/container.h"

namespace shoal::runtime {

struct MonitorConfig {
  std::string state_dir;
  RuntimeOptions runtime;
  bool log_stdio = true;  // false: the container inherits the monitor's stdin/stdout/stderr
  uint64_t log_max_size = 10 << 20;
  int log_max_files = 3;
  bool wait_for_start = false;  // created state until "start" arrives (OCI create/start)
};

// Runs the monitor in the calling process until the container exited and its status is
// recorded. `ready_fd` (if >= 0) gets "ok\n" once the container is created (and started unless
// wait_for_start), or the error text; it is closed afterwards.
absl::Status RunMonitor(const MonitorConfig& config, int ready_fd);

// Files in the state directory.
std::string StateFile(const std::string& dir);
std::string ExitFile(const std::string& dir);
std::string SocketFile(const std::string& dir);
std::string SpecFile(const std::string& dir);
std::string LogFile(const std::string& dir);

}  // namespace shoal::runtime
