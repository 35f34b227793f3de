// shoal-runtime's side of OCI terminals: where the pty master of a process.terminal process
// goes. With --console-socket it is sent over that AF_UNIX socket (one message, one fd, the
// name as data: what containerd-shim's go-runc ReceiveMaster reads) and this command keeps no
// copy; `run`/`exec` in the foreground without a socket relay it to their own stdio (runc does
// the same), with the caller's terminal, if any, in raw mode and its size forwarded.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "base/unique_fd.h"
#include "runtime/spec.h"

namespace shoal::runtime {

// Checks the combination before anything is created. `can_relay`: foreground run/exec.
// Errors name process.terminal or --console-socket.
absl::Status CheckConsoleArgs(const ProcessSpec& process, const std::string& console_socket,
                              bool can_relay);

// Fills the initial window size from the caller's terminal (fd 0) when the spec has none and
// the output will be relayed.
void InheritTerminalSize(ProcessSpec& process);

// Sends `master` to the connected console socket and closes both.
absl::Status HandOffConsole(base::UniqueFd sock, base::UniqueFd master);

// Copies master -> fd 1 and fd 0 -> master until the process behind `pidfd` has exited and the
// master reads EIO/EOF. The caller's terminal (if fd 0 is one) is put in raw mode meanwhile and
// SIGWINCH resizes the pty.
void RelayTerminal(int master, int pidfd);

// Where the pty master of a process goes for one create/run/exec: the console socket, or
// (foreground, no socket) a relay to this command's stdio. No terminal: nothing to do.
class ConsoleTarget {
 public:
  // Checks the arguments (CheckConsoleArgs) and that the socket exists, before anything is
  // created; fills the window size for a relay. The socket is connected only in HandOff, once
  // the master exists: a connection made earlier would be inherited by the container's setup
  // child until it execs.
  static absl::StatusOr<ConsoleTarget> Open(ProcessSpec& process, const std::string& console_socket,
                                            bool can_relay);
  // Sends the master to the console socket; keeps it for Relay otherwise.
  absl::Status HandOff(base::UniqueFd master);
  // Relays the kept master (if any) until the process behind `pidfd` is gone, then closes it.
  void Relay(int pidfd);

 private:
  bool terminal_ = false;
  std::string socket_path_;  // --console-socket, or empty = relay
  base::UniqueFd kept_;
};

}  // namespace shoal::runtime
