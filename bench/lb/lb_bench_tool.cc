// Helper for bench/lb.sh, run inside a throwaway namespace:
//   lb_bench_tool scale <n1> <n2> <backends> <reps>
//       loads n1 services x backends into the LB table, times adding (and removing) one more
//       service <reps> times, grows to n2 and times again; prints "ADD <n> <median ms>".
//   lb_bench_tool vip <vip> <port> <backend-ip:port>...   programs one VIP service and exits
//   lb_bench_tool serve <ip> <port>   minimal HTTP/1.0 responder (one reply per connection)
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "kernel/nft/netlink_nft.h"
#include "lb/nft_backend.h"

namespace {

using shoal::lb::BackendAddr;
using shoal::lb::Change;
using shoal::lb::Service;

Service Make(int i, int backends) {
  Service s;
  s.name = absl::StrCat("s", i);
  s.vip = absl::StrCat("10.", 100 + i / 65536, ".", (i / 256) % 256, ".", i % 256);
  s.port = 80;
  for (int b = 0; b < backends; ++b) {
    s.backends.push_back({absl::StrCat("10.200.", b, ".", 1 + i % 250), 8080, 1});
  }
  return s;
}

int Die(const absl::Status& s) {
  std::fprintf(stderr, "error: %s\n", std::string(s.message()).c_str());
  return 1;
}

int Scale(int n1, int n2, int backends, int reps) {
  auto nft = shoal::kernel::nft::OpenNft(-1);
  if (!nft.ok()) return Die(nft.status());
  auto lb = shoal::lb::NftBackend::Create(*std::move(nft), nullptr, {"snd-lbbench", 61, 1});
  if (!lb.ok()) return Die(lb.status());
  int loaded = 0;
  for (int target : {n1, n2}) {
    while (loaded < target) {
      Change c;
      for (int k = 0; k < 200 && loaded < target; ++k) c.upsert.push_back(Make(loaded++, backends));
      if (auto s = (*lb)->Apply(c); !s.ok()) return Die(s);
    }
    std::vector<double> add_ms, del_ms;
    for (int r = 0; r < reps; ++r) {
      Service probe = Make(1000000 + r, backends);
      probe.name = "probe";
      auto t0 = std::chrono::steady_clock::now();
      if (auto s = (*lb)->Apply(Change{{probe}, {}}); !s.ok()) return Die(s);
      auto t1 = std::chrono::steady_clock::now();
      if (auto s = (*lb)->Apply(Change{{}, {"probe"}}); !s.ok()) return Die(s);
      auto t2 = std::chrono::steady_clock::now();
      add_ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
      del_ms.push_back(std::chrono::duration<double, std::milli>(t2 - t1).count());
    }
    std::sort(add_ms.begin(), add_ms.end());
    std::sort(del_ms.begin(), del_ms.end());
    std::printf("ADD %d %.3f\nDEL %d %.3f\n", target, add_ms[reps / 2], target, del_ms[reps / 2]);
    std::fflush(stdout);
  }
  return 0;
}

int Vip(int argc, char** argv) {
  Service s;
  s.name = "bench";
  s.vip = argv[2];
  uint32_t port;
  if (!absl::SimpleAtoi(argv[3], &port)) return 2;
  s.port = static_cast<uint16_t>(port);
  for (int i = 4; i < argc; ++i) {
    std::vector<std::string> hp = absl::StrSplit(argv[i], ':');
    uint32_t p;
    if (hp.size() != 2 || !absl::SimpleAtoi(hp[1], &p)) return 2;
    s.backends.push_back({hp[0], static_cast<uint16_t>(p), 1});
  }
  auto nft = shoal::kernel::nft::OpenNft(-1);
  if (!nft.ok()) return Die(nft.status());
  auto lb = shoal::lb::NftBackend::Create(*std::move(nft), nullptr, {"snd-lbbench", 61, 1});
  if (!lb.ok()) return Die(lb.status());
  if (auto st = (*lb)->Apply(Change{{s}, {}}); !st.ok()) return Die(st);
  return 0;
}

int Serve(const char* ip, int port) {
  int l = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, ip, &a.sin_addr);
  if (::bind(l, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 || ::listen(l, 4096) != 0) {
    std::perror("bind/listen");
    return 1;
  }
  static const char kReply[] = "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok";
  char buf[4096];
  while (true) {
    int c = ::accept4(l, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) continue;
    (void)!::read(c, buf, sizeof(buf));  // the request fits one segment
    (void)!::write(c, kReply, sizeof(kReply) - 1);
    ::close(c);
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "scale" && argc == 6) {
    return Scale(std::atoi(argv[2]), std::atoi(argv[3]), std::atoi(argv[4]), std::atoi(argv[5]));
  }
  if (mode == "vip" && argc >= 5) return Vip(argc, argv);
  if (mode == "serve" && argc == 4) return Serve(argv[2], std::atoi(argv[3]));
  std::fprintf(stderr,
               "usage: lb_bench_tool scale <n1> <n2> <backends> <reps> | vip <vip> <port> "
               "<ip:port>... | serve <ip> <port>\n");
  return 2;
}
