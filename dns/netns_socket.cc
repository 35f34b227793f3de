#include "dns/netns_socket.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sched.h>

#include <cstring>
#include <thread>

#include "absl/strings/str_cat.h"
#include "base/status.h"

namespace shoal::dns {

absl::Status RunInNetns(int netns_fd, const std::function<absl::Status()>& fn) {
  if (netns_fd < 0) return fn();
  absl::Status result;
  // The thread exits after fn, so its namespace never needs to be switched back.
  std::thread t([&] {
    if (::setns(netns_fd, CLONE_NEWNET) != 0) {
      result = base::ErrnoStatus(errno, "setns(CLONE_NEWNET) fd ", netns_fd);
      return;
    }
    result = fn();
  });
  t.join();
  return result;
}

absl::StatusOr<base::UniqueFd> BoundSocketInNetns(int netns_fd, int type, const std::string& ip,
                                                  uint16_t port) {
  sockaddr_storage ss{};
  socklen_t len = 0;
  int family = AF_INET;
  if (auto* a4 = reinterpret_cast<sockaddr_in*>(&ss);
      inet_pton(AF_INET, ip.c_str(), &a4->sin_addr) == 1) {
    a4->sin_family = AF_INET;
    a4->sin_port = htons(port);
    len = sizeof(sockaddr_in);
  } else if (auto* a6 = reinterpret_cast<sockaddr_in6*>(&ss);
             inet_pton(AF_INET6, ip.c_str(), &a6->sin6_addr) == 1) {
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons(port);
    len = sizeof(sockaddr_in6);
    family = AF_INET6;
  } else {
    return absl::InvalidArgumentError(absl::StrCat("listen address \"", ip, "\" is not an IP"));
  }
  base::UniqueFd out;
  absl::Status s = RunInNetns(netns_fd, [&]() -> absl::Status {
    base::UniqueFd fd(::socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd) return base::ErrnoStatus(errno, "socket for ", ip);
    int one = 1;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0) {
      return base::ErrnoStatus(errno, "bind ", ip, ":", port);
    }
    if (type == SOCK_STREAM && ::listen(fd.get(), 128) != 0) {
      return base::ErrnoStatus(errno, "listen ", ip, ":", port);
    }
    out = std::move(fd);
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return out;
}

absl::StatusOr<base::UniqueFd> UdpSocketInNetns(int netns_fd, int family) {
  base::UniqueFd out;
  absl::Status s = RunInNetns(netns_fd, [&]() -> absl::Status {
    base::UniqueFd fd(::socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd) return base::ErrnoStatus(errno, "upstream socket");
    out = std::move(fd);
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return out;
}

absl::StatusOr<uint16_t> LocalPort(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
    return base::ErrnoStatus(errno, "getsockname");
  }
  if (ss.ss_family == AF_INET) return ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  return ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
}

}  // namespace shoal::dns
