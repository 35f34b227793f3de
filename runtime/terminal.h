// Terminals for container processes (ProcessSpec::terminal, OCI process.terminal).
//
// The pty comes from the container's own devpts instance (/dev/pts/ptmx inside it, mounted
// with newinstance by the setup child), so the process sees /dev/pts/N of its own namespace.
// The process opens the master there, gets its slave with TIOCGPTPEER (no path lookup of the
// slave; Linux >= 4.13), makes it its controlling terminal (setsid + TIOCSCTTY) on fds 0..2
// and hands the master to the runtime's parent over the setup socket (SCM_RIGHTS). The
// parent hands it on to the caller: Container::TakeConsole / Process::TakeConsole, or over an
// OCI --console-socket.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "base/unique_fd.h"
#include "runtime/init.h"

namespace shoal::runtime {

// Child side, raw syscalls only (called after setsid, with the container's root as "/"):
// opens the pty, verifies it belongs to a devpts (c 5:2 on a devpts superblock), sets the
// initial window size, chowns the slave to the process's uid, makes the slave the controlling
// terminal on 0..2, optionally bind-mounts it on /dev/console (PID 1, like runc), and sends the
// master (kConsole frame). Returns 0, or -errno with *what naming the failed step.
int SetupTerminalRaw(const ProcessPlan& p, int sock, bool bind_console, const char** what);

// Parent side: waits for the kConsole frame and returns the master. A kError frame (setup
// failed before the terminal existed) comes back as that error.
absl::StatusOr<base::UniqueFd> RecvConsole(int sock, absl::Duration timeout);

// TIOCSWINSZ on a pty master (or slave). rows/cols 0 are allowed (unknown size).
absl::Status ResizeTerminal(int fd, uint16_t rows, uint16_t cols);
struct TerminalSize {
  uint16_t rows = 0, cols = 0;
};
absl::StatusOr<TerminalSize> GetTerminalSize(int fd);

// OCI --console-socket: connects to the AF_UNIX SOCK_STREAM socket at `path` (any length:
// reached through an O_PATH fd of its directory). Errors name "--console-socket".
absl::StatusOr<base::UniqueFd> ConnectConsoleSocket(const std::string& path);
// Sends `master` as the one and only fd (SCM_RIGHTS) of a single message whose data is `name`
// (what runc sends and containerd's go-runc ReceiveMaster expects: exactly one control
// message with exactly one fd, name shorter than 4096 bytes).
absl::Status SendConsole(int sock, int master, const std::string& name);

}  // namespace shoal::runtime
