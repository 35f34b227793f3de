// shoal-dfping HOST SIZE [TIMEOUT_S]: one ICMP echo request with SIZE payload bytes and the
// Don't Fragment bit set (IP_PMTUDISC_DO), waiting for the reply. Busybox's ping cannot set DF
// and its traceroute -F is a no-op on Linux (no IP_DONTFRAG), so lab containers carry this
// static binary (plain libc) for path-MTU checks.
//
// Exit codes: 0 reply received; 1 the kernel refused to send (EMSGSIZE: larger than the route
// MTU, reported as "sendto: Message too long"); 2 no reply within the timeout; 3 usage/other.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip_icmp.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace {

uint16_t Checksum(const uint8_t* p, size_t n) {
  uint32_t sum = 0;
  for (size_t i = 0; i + 1 < n; i += 2) sum += static_cast<uint32_t>(p[i] << 8 | p[i + 1]);
  if (n & 1) sum += static_cast<uint32_t>(p[n - 1] << 8);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return htons(static_cast<uint16_t>(~sum));
}

long NowMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: shoal-dfping HOST SIZE [TIMEOUT_S]\n");
    return 3;
  }
  sockaddr_in dst{};
  dst.sin_family = AF_INET;
  if (inet_pton(AF_INET, argv[1], &dst.sin_addr) != 1) {
    fprintf(stderr, "shoal-dfping: HOST must be an IPv4 address: %s\n", argv[1]);
    return 3;
  }
  long size = strtol(argv[2], nullptr, 10);
  long timeout_ms = (argc > 3 ? strtol(argv[3], nullptr, 10) : 2) * 1000;
  if (size < 0 || size > 65000) {
    fprintf(stderr, "shoal-dfping: SIZE out of range: %s\n", argv[2]);
    return 3;
  }
  int fd = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMP);
  if (fd < 0) {
    perror("socket");
    return 3;
  }
  int pmtu = IP_PMTUDISC_DO;
  if (setsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, &pmtu, sizeof(pmtu)) != 0) {
    perror("setsockopt IP_MTU_DISCOVER");
    return 3;
  }
  std::vector<uint8_t> pkt(sizeof(icmphdr) + static_cast<size_t>(size), 0x5a);
  auto* h = reinterpret_cast<icmphdr*>(pkt.data());
  uint16_t id = static_cast<uint16_t>(getpid());
  h->type = ICMP_ECHO;
  h->code = 0;
  h->un.echo.id = htons(id);
  h->un.echo.sequence = htons(1);
  h->checksum = 0;
  h->checksum = Checksum(pkt.data(), pkt.size());
  if (sendto(fd, pkt.data(), pkt.size(), 0, reinterpret_cast<sockaddr*>(&dst), sizeof(dst)) < 0) {
    int e = errno;
    fprintf(stderr, "sendto: %s\n", strerror(e));
    return e == EMSGSIZE ? 1 : 3;
  }
  long deadline = NowMs() + timeout_ms;
  std::vector<uint8_t> buf(70000);
  while (true) {
    long left = deadline - NowMs();
    if (left <= 0) break;
    pollfd p{fd, POLLIN, 0};
    int n = poll(&p, 1, static_cast<int>(left));
    if (n <= 0) continue;
    sockaddr_in from{};
    socklen_t fl = sizeof(from);
    ssize_t got = recvfrom(fd, buf.data(), buf.size(), 0, reinterpret_cast<sockaddr*>(&from), &fl);
    if (got < static_cast<ssize_t>(sizeof(iphdr))) continue;
    auto* ip = reinterpret_cast<iphdr*>(buf.data());
    size_t ihl = ip->ihl * 4u;
    if (got < static_cast<ssize_t>(ihl + sizeof(icmphdr))) continue;
    auto* r = reinterpret_cast<icmphdr*>(buf.data() + ihl);
    if (from.sin_addr.s_addr != dst.sin_addr.s_addr || r->type != ICMP_ECHOREPLY ||
        ntohs(r->un.echo.id) != id) {
      continue;
    }
    printf("reply from %s: %zd bytes (DF)\n", argv[1], got - static_cast<ssize_t>(ihl));
    return 0;
  }
  fprintf(stderr, "no reply from %s within %ld ms\n", argv[1], timeout_ms);
  return 2;
}
