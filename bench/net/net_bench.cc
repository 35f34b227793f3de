// Side-by-side dataplane comparison (DESIGN.md §8): the Shoal overlay vs a VXLAN built by hand with
// iproute2 between the same two lab hosts, in the same run, same kernel datapath shape
// (sandbox netns with a bridge + vxlan, container veth into it).
//
//   RESULT overlay_tcp_throughput   iperf3 container -> container across hosts (median of runs);
//                                   Shoal's endpoints are real runtime containers
//                                   (tests/lab/containers.h; iperf3/ping are the host's binaries
//                                   run in the container's network namespace with nsenter, the
//                                   busybox image has no iperf3), the peer's are plain netns
//   RESULT overlay_ping_rtt         ping -c 200 -i 0.005 average RTT
//   RESULT attach_100_endpoints     100 x (container netns + endpoint) on one host
//   RESULT program_10000_peers      10,000 remote peers (FDB + ARP rows) on one host
//
// Usage: shoal_net_bench [--runs N] [--seconds S]   (root; everything lives in sn-nb-* netns)
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "base/random.h"
#include "kernel/netlink/libnl_netlink.h"
#include "kernel/netlink/netns.h"
#include "netdrv/overlay.h"
#include "tests/lab/containers.h"
#include "tests/lab/lab.h"

namespace shoal {
namespace {

using Clock = std::chrono::steady_clock;
using kernel::IpAddr;
using kernel::IpPrefix;

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

struct Env {
  std::string dir = absl::StrCat("/run/sn-nb-", ::getpid());
  std::unique_ptr<lab::Lab> lab;
  kernel::LibnlNetlinkFactory nl;
  base::SystemRandom rnd;
  std::unique_ptr<kernel::BindMountNetnsStore> ctr, sb1, sb2;
  std::vector<std::unique_ptr<netdrv::OverlayDriver>> drivers;
  std::vector<std::string> peer_netns;  // iproute2 side, under /run/netns

  ~Env() {
    drivers.clear();
    for (auto* s : {ctr.get(), sb1.get(), sb2.get()}) {
      if (!s) continue;
      auto names = s->List();
      if (names.ok())
        for (const auto& n : *names) (void)s->Delete(n);
    }
    for (const auto& n : peer_netns) {
      lab::RunIn(-1, "ip netns del " + n + " 2>/dev/null").IgnoreError();
    }
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
    lab.reset();
  }
};

// Runs a command and dies loudly when it fails: a failed peer run must never be hidden.
std::string Must(int fd, const std::string& cmd) {
  auto r = lab::RunIn(fd, cmd, std::chrono::minutes(5));
  if (!r.ok() || r->exit_code != 0) {
    std::fprintf(stderr, "FAILED: %s\n%s\n", cmd.c_str(),
                 r.ok() ? r->output.c_str() : r.status().ToString().c_str());
    std::exit(1);
  }
  return r->output;
}

void Check(const absl::Status& st, const char* what) {
  if (!st.ok()) {
    std::fprintf(stderr, "FAILED: %s: %s\n", what, st.ToString().c_str());
    std::exit(1);
  }
}

// The hand-built peer: on host `h` a sandbox netns with br0 + vxlan0 (same attributes Shoal
// uses) and a container netns with eth0, all with plain `ip` commands.
std::string PeerScript(const std::string& p, int h, const std::string& local, uint32_t vni,
                       const std::string& addr, uint32_t mtu) {
  std::string sb = absl::StrCat(p, "sb", h), c = absl::StrCat(p, "c", h);
  std::string hostns = absl::StrCat("sn-nb-h", h);
  return absl::StrCat(
      "set -e; ip netns add ", sb, "; ip netns add ", c, "; ip -n ", sb, " link set lo up; ip -n ",
      c, " link set lo up; ip -n ", sb, " link add br0 mtu ", mtu, " type bridge; ip -n ", sb,
      " addr add 10.60.0.1/24 dev br0; ip -n ", hostns, " link add vxlan0 netns ", sb, " mtu ", mtu,
      " type vxlan id ", vni, " local ", local, " dev eth0 dstport 4789 nolearning proxy; ip -n ",
      sb, " link set vxlan0 master br0 up; ip -n ", sb, " link set br0 up; ip -n ", sb,
      " link add veth0 mtu ", mtu, " type veth peer name eth0 netns ", c, "; ip -n ", sb,
      " link set veth0 master br0 up; ip -n ", c, " addr add ", addr, " dev eth0; ip -n ", c,
      " link set eth0 up");
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// `client_ns`/`server_ns`: a command prefix entering the endpoint's network namespace
// ("ip netns exec X" or "nsenter --net=/proc/<pid>/ns/net").
double IperfGbit(const std::string& client_ns, const std::string& server_ns,
                 const std::string& server_ip, int seconds) {
  auto server = lab::Spawn(-1, "exec " + server_ns + " iperf3 -s -1");
  if (!server.ok()) std::exit(1);
  std::string out;
  for (int i = 0; i < 100; ++i) {  // until the server listens
    auto r = lab::RunIn(-1,
                        absl::StrCat(client_ns, " iperf3 -c ", server_ip, " -t ",
                                     seconds, " -f g"),
                        std::chrono::seconds(seconds + 30));
    if (r.ok() && r->exit_code == 0) {
      out = r->output;
      break;
    }
    usleep(50000);
  }
  // "... sec  X.XX GBytes  N.NN Gbits/sec  ...  receiver"
  for (absl::string_view line : absl::StrSplit(out, '\n')) {
    if (line.find("receiver") == absl::string_view::npos) continue;
    std::vector<absl::string_view> f = absl::StrSplit(line, ' ', absl::SkipEmpty());
    for (size_t i = 1; i < f.size(); ++i) {
      double v;
      if (f[i] == "Gbits/sec" && absl::SimpleAtod(f[i - 1], &v)) return v;
    }
  }
  std::fprintf(stderr, "FAILED: iperf3 %s -> %s\n%s\n", client_ns.c_str(), server_ip.c_str(),
               out.c_str());
  std::exit(1);
}

double PingUs(const std::string& ns, const std::string& ip) {
  std::string out = Must(-1, absl::StrCat(ns, " ping -q -c 200 -i 0.005 ", ip));
  size_t eq = out.find("rtt min/avg/max/mdev = ");
  double avg = 0;
  if (eq != std::string::npos) {
    std::vector<absl::string_view> f = absl::StrSplit(absl::string_view(out).substr(eq + 23), '/');
    if (f.size() > 1 && absl::SimpleAtod(f[1], &avg)) return avg * 1000.0;
  }
  std::fprintf(stderr, "FAILED: ping output\n%s\n", out.c_str());
  std::exit(1);
}

void Result(const char* name, double shoal, double peer, const char* unit) {
  std::printf("RESULT %s shoal=%.3f%s iproute2=%.3f%s ratio=%.3f\n", name, shoal, unit, peer, unit,
              peer > 0 ? shoal / peer : 0.0);
  std::fflush(stdout);
}

int Main(int argc, char** argv) {
  int runs = 3, seconds = 5;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::string(argv[i]) == "--runs") runs = std::atoi(argv[i + 1]);
    if (std::string(argv[i]) == "--seconds") seconds = std::atoi(argv[i + 1]);
  }
  if (::geteuid() != 0) {
    std::fprintf(stderr, "net_bench needs root (it builds a netns lab)\n");
    return 1;
  }
  Env env;
  lab::LabOptions o;
  o.prefix = "sn-nb-";
  o.hosts = 2;
  auto l = lab::Lab::Create(o);
  Check(l.status(), "lab");
  env.lab = std::move(*l);
  env.ctr = std::make_unique<kernel::BindMountNetnsStore>("/run/netns");
  env.sb1 = std::make_unique<kernel::BindMountNetnsStore>(env.dir + "/h1");
  env.sb2 = std::make_unique<kernel::BindMountNetnsStore>(env.dir + "/h2");
  for (int h = 0; h < 2; ++h) {
    netdrv::OverlayConfig c;
    c.node_netns_fd = env.lab->host(h).netns.get();
    c.vtep = env.lab->host(h).ip;
    auto d = netdrv::OverlayDriver::Create(c, env.nl, h == 0 ? *env.sb1 : *env.sb2, env.rnd);
    Check(d.status(), "overlay driver");
    env.drivers.push_back(std::move(*d));
  }
  // --- Shoal overlay: network 10.50.0.0/24, real containers s1 (h1), s2 (h2).
  auto containers = lab::ContainerLab::Create("sn-nb-");
  Check(containers.status(), "container lab");
  std::vector<std::string> enter;  // nsenter prefix per Shoal container
  netdrv::NetworkSpec net;
  net.id = "bench0000001";
  net.vni = 5001;
  net.subnet = *IpPrefix::Parse("10.50.0.0/24");
  net.gateway = *IpAddr::Parse("10.50.0.1");
  std::vector<netdrv::Peer> peers;
  for (int h = 0; h < 2; ++h) {
    Check(env.drivers[h]->CreateNetwork(net), "create network");
    std::string name = absl::StrCat("s", h + 1);
    netdrv::EndpointSpec e;
    e.id = name;
    e.network_id = net.id;
    e.address = *IpPrefix::Parse(absl::StrCat("10.50.0.1", h + 1, "/24"));
    absl::StatusOr<netdrv::Endpoint> ep;
    auto c = (*containers)->Run(name, [&](int fd) {
      e.netns_fd = fd;
      ep = env.drivers[h]->CreateEndpoint(e);
      return ep.status();
    });
    Check(c.status(), "container + endpoint");
    enter.push_back(absl::StrCat("nsenter --net=/proc/", (*c)->pid(), "/ns/net"));
    peers.push_back({e.id, e.address.addr, ep->mac, env.lab->host(h).ip});
  }
  for (auto& d : env.drivers) Check(d->SetPeers(net.id, peers), "set peers");
  uint32_t mtu = *env.drivers[0]->NetworkMtu(net.id);
  // --- Hand-built peer: VNI 5002, 10.60.0.0/24, sn-nb-pc1/pc2, static FDB + ARP rows.
  std::vector<std::string> peer_cmds;
  for (int h = 1; h <= 2; ++h) {
    std::string p = "sn-nb-p";
    env.peer_netns.push_back(absl::StrCat(p, "sb", h));
    env.peer_netns.push_back(absl::StrCat(p, "c", h));
    std::string cmd = PeerScript(p, h, env.lab->host(h - 1).ip.ToString(), 5002,
                                 absl::StrCat("10.60.0.1", h, "/24"), mtu);
    peer_cmds.push_back(cmd);
    Must(-1, cmd);
  }
  for (int h = 1; h <= 2; ++h) {
    int o_h = 3 - h;
    std::string mac =
        Must(-1, absl::StrCat("ip -n sn-nb-pc", o_h, " -br link show eth0 | awk '{print $3}'"));
    mac.erase(mac.find_last_not_of("\n ") + 1);
    std::string cmd =
        absl::StrCat("ip -n sn-nb-psb", h, " neigh add 10.60.0.1", o_h, " lladdr ", mac,
                     " dev vxlan0 nud permanent && bridge -n sn-nb-psb", h, " fdb add ", mac,
                     " dev vxlan0 dst ", env.lab->host(o_h - 1).ip.ToString(), " self permanent");
    peer_cmds.push_back(cmd);
    Must(-1, cmd);
  }
  std::string kernel_release = Must(-1, "uname -r");
  kernel_release.erase(kernel_release.find_last_not_of("\n") + 1);
  std::printf("machine: nproc=%ld kernel=%s\n", sysconf(_SC_NPROCESSORS_ONLN),
              kernel_release.c_str());
  std::printf("lab: 2 hosts (netns) on a veth+bridge underlay, mtu 1500; overlay mtu %u\n", mtu);
  std::printf("peer (iproute2) built with:\n");
  for (const auto& c : peer_cmds) std::printf("  %s\n", c.c_str());
  std::printf(
      "compared: <enter c1> iperf3 -c <c2> -t %d (x%d, median, alternating); "
      "ping -q -c 200 -i 0.005; shoal endpoints = runtime containers entered with nsenter --net, "
      "peer endpoints = netns entered with ip netns exec\n",
      seconds, runs);
  std::fflush(stdout);

  // 1. Throughput, alternating to share the machine's noise fairly.
  std::vector<double> s_tp, p_tp;
  for (int r = 0; r < runs; ++r) {  // alternate which goes first each round
    if (r % 2 == 0) s_tp.push_back(IperfGbit(enter[0], enter[1], "10.50.0.12", seconds));
    p_tp.push_back(IperfGbit("ip netns exec sn-nb-pc1", "ip netns exec sn-nb-pc2", "10.60.0.12", seconds));
    if (r % 2 == 1) s_tp.push_back(IperfGbit(enter[0], enter[1], "10.50.0.12", seconds));
  }
  Result("overlay_tcp_throughput", Median(s_tp), Median(p_tp), "Gbit/s");
  // 2. Latency.
  std::vector<double> s_rtt, p_rtt;
  for (int r = 0; r < runs; ++r) {
    s_rtt.push_back(PingUs(enter[0], "10.50.0.12"));
    p_rtt.push_back(PingUs("ip netns exec sn-nb-pc1", "10.60.0.12"));
  }
  Result("overlay_ping_rtt", Median(s_rtt), Median(p_rtt), "us");

  // 3. Attach 100 endpoints on host 1 (container netns + veth into br0 + address + up).
  auto t0 = Clock::now();
  for (int i = 0; i < 100; ++i) {
    std::string name = absl::StrCat("sn-nb-a", i);
    auto fd = env.ctr->Create(name);
    Check(fd.status(), "attach netns");
    netdrv::EndpointSpec e;
    e.id = name;
    e.network_id = net.id;
    e.netns_fd = fd->get();
    e.address = *IpPrefix::Parse(absl::StrCat("10.50.0.", 100 + i, "/24"));
    Check(env.drivers[0]->CreateEndpoint(e).status(), "attach endpoint");
  }
  double shoal_attach = Ms(Clock::now() - t0);
  std::string attach_cmd;
  for (int i = 0; i < 100; ++i) {
    std::string c = absl::StrCat("sn-nb-b", i);
    env.peer_netns.push_back(c);
    absl::StrAppend(&attach_cmd, "ip netns add ", c, "; ip -n ", c,
                    " link set lo up; ip -n sn-nb-psb1 link add vb", i, " mtu ", mtu,
                    " type veth peer name eth0 netns ", c, "; ip -n sn-nb-psb1 link set vb", i,
                    " master br0 up; ip -n ", c, " addr add 10.60.0.", 100 + i,
                    "/24 dev eth0; ip -n ", c, " link set eth0 up; ");
  }
  t0 = Clock::now();
  Must(-1, "set -e; " + attach_cmd);
  double peer_attach = Ms(Clock::now() - t0);
  std::printf(
      "attach peer: per endpoint `ip netns add; ip link set lo up; ip link add veth peer "
      "netns; ip link set master up; ip addr add; ip link set up`\n");
  Result("attach_100_endpoints", shoal_attach, peer_attach, "ms");

  // 4. Program 10,000 remote peers (FDB + ARP rows) on host 1.
  netdrv::NetworkSpec big = net;
  big.id = "bench0000002";
  big.vni = 5003;
  big.subnet = *IpPrefix::Parse("10.70.0.0/16");
  big.gateway = *IpAddr::Parse("10.70.0.1");
  Check(env.drivers[0]->CreateNetwork(big), "create big network");
  std::vector<netdrv::Peer> many;
  std::string fdb_batch, neigh_batch;
  for (int i = 0; i < 10000; ++i) {
    netdrv::Peer p;
    p.endpoint_id = absl::StrCat("p", i);
    p.ip = IpAddr::V4(10, 70, static_cast<uint8_t>(1 + i / 250), static_cast<uint8_t>(1 + i % 250));
    p.mac = *kernel::MacAddr::Parse(
        absl::StrFormat("02:aa:00:%02x:%02x:%02x", (i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff));
    p.vtep = IpAddr::V4(192, 168, 77, static_cast<uint8_t>(2 + i % 50));
    many.push_back(p);
    absl::StrAppend(&fdb_batch, "fdb add ", p.mac.ToString(), " dev vxlan0 dst ", p.vtep.ToString(),
                    " self permanent\n");
    absl::StrAppend(&neigh_batch, "neigh add ", p.ip.ToString(), " lladdr ", p.mac.ToString(),
                    " dev vxlan0 nud permanent\n");
  }
  t0 = Clock::now();
  Check(env.drivers[0]->SetPeers(big.id, many), "program 10k peers");
  double shoal_prog = Ms(Clock::now() - t0);
  std::string bpath = env.dir + "/fdb.batch", npath = env.dir + "/neigh.batch";
  std::filesystem::create_directories(env.dir);
  std::ofstream(bpath) << fdb_batch;
  std::ofstream(npath) << neigh_batch;
  Must(-1,
       "ip -n sn-nb-h1 link add vxbig netns sn-nb-psb1 type vxlan id 5004 local 192.168.77.1 "
       "dev eth0 dstport 4789 nolearning proxy && ip -n sn-nb-psb1 link set vxbig name vxlan1");
  Must(-1, "sed -i 's/dev vxlan0/dev vxlan1/' " + bpath + " " + npath);
  t0 = Clock::now();
  Must(-1,
       absl::StrCat("bridge -n sn-nb-psb1 -batch ", bpath, " && ip -n sn-nb-psb1 -batch ", npath));
  double peer_prog = Ms(Clock::now() - t0);
  std::printf(
      "peers peer: bridge -n <sb> -batch <10k fdb add ... self permanent> && "
      "ip -n <sb> -batch <10k neigh add ... nud permanent>\n");
  Result("program_10000_peers", shoal_prog, peer_prog, "ms");
  for (int i = 0; i < 100; ++i) (void)env.ctr->Delete(absl::StrCat("sn-nb-a", i));
  return 0;
}

}  // namespace
}  // namespace shoal

int main(int argc, char** argv) { return shoal::Main(argc, argv); }
