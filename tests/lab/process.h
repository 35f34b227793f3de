// Running commands inside a network namespace, for the lab and the tests built on it.
//
// RunIn() forks, joins the namespace in the child (setns), and execs `/bin/sh -c cmd`, capturing
// stdout+stderr; it kills the command when `timeout` passes. Spawn() starts a background command
// whose handle kills its whole process group on destruction. Both are thread-compatible.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace shoal::lab {

struct CommandResult {
  int exit_code = -1;  // 128+signal when killed by a signal
  std::string output;  // stdout and stderr interleaved
  bool ok() const { return exit_code == 0; }
};

// netns_fd -1 runs in the caller's namespace.
absl::StatusOr<CommandResult> RunIn(int netns_fd, const std::string& cmd,
                                    std::chrono::milliseconds timeout = std::chrono::seconds(60));

class Process {
 public:
  explicit Process(pid_t pid) : pid_(pid) {}
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;
  pid_t pid() const { return pid_; }
  // Waits for exit (up to timeout); returns the exit code, or DEADLINE_EXCEEDED.
  absl::StatusOr<int> Wait(std::chrono::milliseconds timeout);
  void Kill();

 private:
  pid_t pid_;
  bool reaped_ = false;
};

// Output goes to `log_path` ("" = /dev/null).
absl::StatusOr<std::unique_ptr<Process>> Spawn(int netns_fd, const std::string& cmd,
                                               const std::string& log_path = "");

}  // namespace shoal::lab
