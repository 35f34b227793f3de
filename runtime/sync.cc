#include "runtime/sync.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "base/status.h"

namespace shoal::runtime {

int SendFrameRaw(int fd, Msg type, int err, int64_t value, const char* a, const char* b,
                 const char* c) {
  Frame f;
  memset(&f, 0, sizeof(f));
  f.type = type;
  f.err = err;
  f.value = value;
  size_t n = 0;
  for (const char* part : {a, b, c}) {
    for (; part && *part && n + 1 < sizeof(f.text); ++part) f.text[n++] = *part;
  }
  ssize_t rc;
  do {
    rc = send(fd, &f, sizeof(f), MSG_NOSIGNAL);
  } while (rc < 0 && errno == EINTR);
  return rc < 0 ? -errno : 0;
}

int RecvFrameRaw(int fd, Frame* frame) {
  ssize_t rc;
  do {
    rc = recv(fd, frame, sizeof(*frame), 0);
  } while (rc < 0 && errno == EINTR);
  if (rc < 0) return -errno;
  if (rc == 0) return 0;
  return rc == sizeof(*frame) ? 1 : -EPROTO;
}

int SendWithFd(int sock, const void* data, size_t len, int fd) {
  struct iovec iov = {const_cast<void*>(data), len};
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } control;
  memset(&control, 0, sizeof(control));
  struct msghdr msg = {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.buf;
  msg.msg_controllen = sizeof(control.buf);
  struct cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(c), &fd, sizeof(int));
  ssize_t rc;
  do {
    rc = sendmsg(sock, &msg, MSG_NOSIGNAL);
  } while (rc < 0 && errno == EINTR);
  return rc < 0 ? -errno : 0;
}

const char* FdPath(char* buf, int fd) {
  static constexpr char kPrefix[] = "/proc/self/fd/";
  memcpy(buf, kPrefix, sizeof(kPrefix));
  char digits[16];
  int n = 0;
  do {
    digits[n++] = static_cast<char>('0' + fd % 10);
    fd /= 10;
  } while (fd > 0);
  char* p = buf + sizeof(kPrefix) - 1;
  while (n > 0) *p++ = digits[--n];
  *p = '\0';
  return buf;
}

absl::Status SendFrame(int fd, Msg type, int64_t value) {
  if (SendFrameRaw(fd, type, 0, value, "") < 0) {
    return base::ErrnoStatus(errno, "send to setup process");
  }
  return absl::OkStatus();
}

namespace {

// 1 = frame, 0 = EOF, error status otherwise.
absl::StatusOr<int> Receive(int fd, absl::Duration timeout, Frame* f) {
  absl::Time deadline = absl::Now() + timeout;
  while (true) {
    int64_t ms = absl::ToInt64Milliseconds(deadline - absl::Now());
    if (ms < 0) ms = 0;
    struct pollfd p = {fd, POLLIN, 0};
    int rc = poll(&p, 1, static_cast<int>(ms));
    if (rc < 0 && errno == EINTR) continue;
    if (rc < 0) return base::ErrnoStatus(errno, "poll setup socket");
    if (rc == 0) return absl::DeadlineExceededError("container setup timed out");
    int r = RecvFrameRaw(fd, f);
    if (r == -ECONNRESET) return 0;
    if (r < 0) return base::ErrnoStatus(-r, "receive from setup process");
    return r;
  }
}

absl::Status ChildError(const Frame& f) {
  std::string text(f.text, strnlen(f.text, sizeof(f.text)));
  if (f.err == 0) return absl::InternalError(text);
  return base::ErrnoStatus(f.err, text);
}

}  // namespace

absl::StatusOr<Frame> RecvFrame(int fd, absl::Duration timeout, const char* what) {
  Frame f;
  ASSIGN_OR_RETURN(int got, Receive(fd, timeout, &f));
  if (got == 0) return absl::UnavailableError(absl::StrCat(what, ": setup process exited"));
  if (f.type == Msg::kError) return ChildError(f);
  return f;
}

absl::Status AwaitExec(int fd, absl::Duration timeout) {
  Frame f;
  ASSIGN_OR_RETURN(int got, Receive(fd, timeout, &f));
  if (got == 0) return absl::OkStatus();
  if (f.type == Msg::kError) return ChildError(f);
  return absl::InternalError("unexpected message from setup process");
}

}  // namespace shoal::runtime
