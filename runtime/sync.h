// Parent <-> setup-child protocol over a SOCK_SEQPACKET socketpair (runtime.md §1.3).
// One fixed-size frame per message; errors carry errno + text. The child side makes raw
// syscalls only (no allocation).
#pragma once

#include <sys/types.h>

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace shoal::runtime {

enum class Msg : int32_t {
  kGo = 1,     // parent -> child: cgroup placed, continue setup
  kReady = 2,  // child -> parent: set up, waiting for kStart
  kStart = 3,  // parent -> child: exec now
  kError = 4,  // child -> parent: failed (errno + text)
  kPid = 5,    // exec helper -> parent: pid of the process it cloned
  kConsole = 6,  // child -> parent: the pty master (SCM_RIGHTS), see runtime/terminal.h
};

struct Frame {
  Msg type;
  int32_t err;
  int64_t value;
  char text[240];
};

// Child side: 0 or -errno.
int SendFrameRaw(int fd, Msg type, int err, int64_t value, const char* a, const char* b = "",
                 const char* c = "");
// Child side: blocks for one frame; returns 1, 0 on EOF, -errno.
int RecvFrameRaw(int fd, Frame* frame);
// Sends `len` bytes of `data` with `fd` attached (SCM_RIGHTS), retrying on EINTR, SIGPIPE-safe.
// Allocation-free (usable in the setup child): 0 or -errno.
int SendWithFd(int sock, const void* data, size_t len, int fd);
// "/proc/self/fd/<fd>" into `buf` (>= 32 bytes), allocation-free.
const char* FdPath(char* buf, int fd);

// Parent side: sends a frame (SIGPIPE-safe).
absl::Status SendFrame(int fd, Msg type, int64_t value = 0);
// Parent side: waits up to `timeout`. NOT_FOUND-free contract: returns the frame, or
// UNAVAILABLE "<what>: setup process exited" on EOF, DEADLINE_EXCEEDED on timeout. An error
// frame is turned into a status carrying the child's errno and text.
absl::StatusOr<Frame> RecvFrame(int fd, absl::Duration timeout, const char* what);
// Like RecvFrame but EOF is the expected outcome (the child exec'd; CLOEXEC closed its end):
// OK on EOF, the child's error otherwise.
absl::Status AwaitExec(int fd, absl::Duration timeout);

}  // namespace shoal::runtime
