// Controller side of shoal-monitor: launch a monitored container, or re-adopt one from its
// state directory after the controller restarted. Not thread-safe.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "runtime/container.h"
#include "runtime/spec.h"

namespace shoal::runtime {

struct LaunchOptions {
  std::string monitor_path;  // the shoal-monitor binary
  std::string state_dir;     // created if missing; must not hold a live container
  kernel::CgroupConfig cgroup;
  std::string cgroup_parent = "shoal";
  bool log_stdio = true;
  uint64_t log_max_size = 10 << 20;
  int log_max_files = 3;
  bool wait_for_start = false;
};

struct MonitorState {
  std::string id;
  std::string status;  // created | running | stopped
  pid_t pid = 0;       // container PID 1
  pid_t monitor_pid = 0;
  bool has_exit = false;
  ExitStatus exit;
};

class MonitorClient {
 public:
  // Writes spec.json, starts shoal-monitor and returns once the container runs (or is created,
  // with wait_for_start). The container's errors come back with their field names.
  static absl::StatusOr<std::unique_ptr<MonitorClient>> Launch(const LaunchOptions& options,
                                                               const ContainerSpec& spec);
  // Re-adopts from the state directory: NOT_FOUND when there is no container there.
  static absl::StatusOr<std::unique_ptr<MonitorClient>> Adopt(const std::string& state_dir);

  absl::StatusOr<MonitorState> State() const;
  absl::Status Start();
  absl::Status Signal(int sig);
  // Stop signal now, SIGKILL of the whole cgroup after `grace` (done by the monitor).
  absl::Status Stop(int sig, absl::Duration grace);
  // Window size of the container's terminal (spec.process.terminal only).
  absl::Status Resize(uint16_t rows, uint16_t cols);
  // Waits for the monitor to record the exit status (at most `timeout`).
  absl::StatusOr<ExitStatus> Wait(absl::Duration timeout);
  const std::string& state_dir() const { return state_dir_; }

 private:
  explicit MonitorClient(std::string state_dir) : state_dir_(std::move(state_dir)) {}
  absl::StatusOr<std::string> Call(const std::string& command) const;
  std::string state_dir_;
};

}  // namespace shoal::runtime
