// Serves <n> service names (svc-<i> -> 10.<a>.<b>.<c>) with the Shoal resolver on ip:port in
// the current namespace, and writes the same names as a hosts file for dnsmasq, so bench/dns.sh
// compares both on identical data. Runs until SIGTERM/SIGINT.
// Usage: dns_bench_server <n> <ip> <port> <hosts-file>
#include <signal.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "dns/resolver.h"

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: dns_bench_server <n> <ip> <port> <hosts-file>\n");
    return 2;
  }
  int n = std::atoi(argv[1]);
  shoal::dns::RecordTable table;
  std::ofstream hosts(argv[4]);
  for (int i = 0; i < n; ++i) {
    std::string ip = absl::StrCat("10.", 100 + i / 65536, ".", (i / 256) % 256, ".", i % 256);
    std::string name = absl::StrCat("svc-", i);
    auto st = table.SetService("bench", {name, {}, {*shoal::dns::ParseIp(ip)}, false, {}});
    if (!st.ok()) return 1;
    hosts << ip << " " << name << "\n";
  }
  hosts.close();
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);  // before the loop thread starts
  auto resolver = shoal::dns::Resolver::Start(&table);
  if (!resolver.ok()) return 1;
  shoal::dns::EndpointSpec spec;
  spec.id = "bench";
  spec.listen_ip = argv[2];
  spec.port = static_cast<uint16_t>(std::atoi(argv[3]));
  spec.networks = {"bench"};
  auto bound = (*resolver)->AddEndpoint(spec);
  if (!bound.ok()) {
    std::fprintf(stderr, "%s\n", std::string(bound.status().message()).c_str());
    return 1;
  }
  std::printf("READY %u\n", bound->port);
  std::fflush(stdout);
  int sig;
  sigwait(&set, &sig);
  return 0;
}
