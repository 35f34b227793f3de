// The nft LB dataplane with real traffic in throwaway namespaces:
//
//   snd-lc<pid> client   10.123.1.2/24 ── veth ── 10.123.1.1 snd-lb<pid> (the LB, a router)
//   snd-lb<pid>          bridge 10.123.2.1/24 ── veths ── snd-lbN<pid> backends 10.123.2.1N
// Backends run backend_server.py (answers with its name). The LB table is programmed by
// lb::NftBackend through kernel/nft; observations are what a client sees.
#include <arpa/inet.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "base/unique_fd.h"
#include "gtest/gtest.h"
#include "kernel/nft/netlink_nft.h"
#include "lb/nft_backend.h"
#include "tests/priv/dns/sh.h"
#include "tests/testing/priv.h"

namespace shoal::lb {
namespace {

using base::UniqueFd;
using dns::testing::Eventually;
using dns::testing::Sh;

constexpr int kBackends = 3;
constexpr char kVip[] = "10.123.100.1";

// A socket created inside `netns_fd` (on a thread that setns()es and exits).
base::UniqueFd SocketIn(int netns_fd, int type) {
  base::UniqueFd fd;
  std::thread([&] {
    if (::setns(netns_fd, CLONE_NEWNET) == 0) {
      fd = base::UniqueFd(::socket(AF_INET, type | SOCK_CLOEXEC, 0));
    }
  }).join();
  return fd;
}

sockaddr_in Addr(const char* ip, uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  inet_pton(AF_INET, ip, &a.sin_addr);
  return a;
}

std::string ReadLine(int fd, int ms = 3000) {
  std::string out;
  char c;
  while (true) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, ms) != 1) return out;
    if (::read(fd, &c, 1) != 1 || c == '\n') return out;
    out.push_back(c);
  }
}

class NftLbPrivTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SHOAL_REQUIRE_ROOT();
    if (Sh("command -v python3").code != 0) GTEST_SKIP() << "needs python3 for the backends";
    pid_ = absl::StrCat(getpid());
    client_ = "snd-lc" + pid_;
    lb_ = "snd-lb" + pid_;
    for (const std::string& ns : {client_, lb_}) {
      ASSERT_EQ(Sh("ip netns add " + ns).code, 0);
      namespaces_.push_back(ns);
      Must(absl::StrCat("ip -n ", ns, " link set lo up"));
    }
    Must(absl::StrCat("ip -n ", lb_, " link add snd-c", pid_, " type veth peer name eth0 netns ",
                      client_));
    Must(absl::StrCat("ip -n ", lb_, " addr add 10.123.1.1/24 dev snd-c", pid_, " && ip -n ", lb_,
                      " link set snd-c", pid_, " up"));
    Must(absl::StrCat("ip -n ", client_, " addr add 10.123.1.2/24 dev eth0 && ip -n ", client_,
                      " link set eth0 up && ip -n ", client_, " route add default via 10.123.1.1"));
    Must(absl::StrCat("ip -n ", lb_, " link add snd-br type bridge && ip -n ", lb_,
                      " addr add 10.123.2.1/24 dev snd-br && ip -n ", lb_, " link set snd-br up"));
    Must(absl::StrCat("ip netns exec ", lb_, " sysctl -qw net.ipv4.ip_forward=1"));
    for (int i = 1; i <= kBackends; ++i) {
      std::string ns = absl::StrCat("snd-lb", i, "-", pid_);
      ASSERT_EQ(Sh("ip netns add " + ns).code, 0);
      namespaces_.push_back(ns);
      std::string peer = absl::StrCat("snd-b", i, "-", pid_);
      Must(absl::StrCat("ip -n ", lb_, " link add ", peer, " type veth peer name eth0 netns ", ns));
      Must(absl::StrCat("ip -n ", lb_, " link set ", peer, " master snd-br up"));
      Must(absl::StrCat("ip -n ", ns, " link set lo up && ip -n ", ns, " addr add 10.123.2.1", i,
                        "/24 dev eth0 && ip -n ", ns, " link set eth0 up && ip -n ", ns,
                        " route add default via 10.123.2.1"));
      pid_t pid = ::fork();
      ASSERT_GE(pid, 0);
      if (pid == 0) {
        std::string name = absl::StrCat("b", i);
        ::execlp("ip", "ip", "netns", "exec", ns.c_str(), "python3", SHOAL_LB_BACKEND_SERVER,
                 name.c_str(), "8080", static_cast<char*>(nullptr));
        ::_exit(127);
      }
      servers_.push_back(pid);
    }
    client_fd_ = ::open(("/run/netns/" + client_).c_str(), O_RDONLY | O_CLOEXEC);
    lb_fd_ = ::open(("/run/netns/" + lb_).c_str(), O_RDONLY | O_CLOEXEC);
    ASSERT_GE(client_fd_, 0);
    ASSERT_GE(lb_fd_, 0);
    // Backends answer directly before any LB state exists.
    for (int i = 1; i <= kBackends; ++i) {
      std::string ip = absl::StrCat("10.123.2.1", i);
      ASSERT_TRUE(Eventually([&] {
        return Connect(ip.c_str(), 8080).second == absl::StrCat("b", i);
      })) << "backend "
          << i << " did not come up";
    }
    auto nft = kernel::nft::OpenNft(lb_fd_);
    ASSERT_TRUE(nft.ok()) << nft.status();
    auto ct = OpenConntrack(lb_fd_);
    ASSERT_TRUE(ct.ok()) << ct.status();
    auto b = NftBackend::Create(*std::move(nft), *std::move(ct), {"snd-lb", 61, 99});
    ASSERT_TRUE(b.ok()) << b.status();
    backend_ = *std::move(b);
  }

  void TearDown() override {
    if (backend_) {
      EXPECT_TRUE(backend_->Destroy().ok());
    }
    backend_.reset();
    for (pid_t p : servers_) {
      ::kill(p, SIGTERM);
      ::waitpid(p, nullptr, 0);
    }
    if (client_fd_ >= 0) ::close(client_fd_);
    if (lb_fd_ >= 0) ::close(lb_fd_);
    for (const std::string& ns : namespaces_) Sh("ip netns del " + ns);
  }

  void Must(const std::string& cmd) {
    auto r = Sh(cmd);
    ASSERT_EQ(r.code, 0) << cmd << ": " << r.out;
  }

  // Connects from the client namespace; returns the socket and the backend's greeting.
  std::pair<base::UniqueFd, std::string> Connect(const char* ip, uint16_t port) {
    base::UniqueFd fd = SocketIn(client_fd_, SOCK_STREAM);
    sockaddr_in to = Addr(ip, port);
    timeval tv{2, 0};
    ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&to), sizeof(to)) != 0) return {};
    std::string name = ReadLine(fd.get());
    return {std::move(fd), name};
  }

  std::multiset<std::string> Spread(const char* ip, uint16_t port, int n) {
    std::multiset<std::string> seen;
    for (int i = 0; i < n; ++i) seen.insert(Connect(ip, port).second);
    return seen;
  }

  Service Web(Protocol proto = Protocol::kTcp) {
    Service s;
    s.name = "web";
    s.vip = kVip;
    s.port = 80;
    s.protocol = proto;
    for (int i = 1; i <= kBackends; ++i)
      s.backends.push_back({absl::StrCat("10.123.2.1", i), 8080, 1});
    return s;
  }

  std::string pid_, client_, lb_;
  std::vector<std::string> namespaces_;
  std::vector<pid_t> servers_;
  int client_fd_ = -1, lb_fd_ = -1;
  std::unique_ptr<NftBackend> backend_;
};

TEST_F(NftLbPrivTest, VipReachesAllBackends) {
  ASSERT_TRUE(backend_->Apply(Change{{Web()}, {}}).ok());
  auto seen = Spread(kVip, 80, 60);
  EXPECT_GT(seen.count("b1"), 0u);
  EXPECT_GT(seen.count("b2"), 0u);
  EXPECT_GT(seen.count("b3"), 0u);
  EXPECT_EQ(seen.count(""), 0u) << "some connections failed";
  // Another port on the VIP is not a service.
  EXPECT_EQ(Connect(kVip, 81).second, "");
}

TEST_F(NftLbPrivTest, MaglevVipReachesAllBackends) {
  Service s = Web();
  s.scheduler = Scheduler::kMaglev;
  ASSERT_TRUE(backend_->Apply(Change{{s}, {}}).ok());
  auto seen = Spread(kVip, 80, 60);
  EXPECT_GT(seen.count("b1"), 0u);
  EXPECT_GT(seen.count("b2"), 0u);
  EXPECT_GT(seen.count("b3"), 0u);
}

TEST_F(NftLbPrivTest, PublishedPortOnLocalAddressReachesBackends) {
  Service s = Web();
  s.name = "ing";
  s.frontend = Frontend::kPublished;
  s.vip = "";
  s.port = 30080;
  ASSERT_TRUE(backend_->Apply(Change{{s}, {}}).ok());
  auto seen = Spread("10.123.1.1", 30080, 45);
  EXPECT_EQ(seen.count(""), 0u);
  EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()).size(), 3u);
}

TEST_F(NftLbPrivTest, DrainAndRemoveStopNewConnectionsButEstablishedOneCompletes) {
  ASSERT_TRUE(backend_->Apply(Change{{Web()}, {}}).ok());
  auto [conn, victim] = Connect(kVip, 80);
  ASSERT_FALSE(victim.empty());
  std::string victim_ip = absl::StrCat("10.123.2.1", victim.substr(1));

  ASSERT_TRUE(Drain(*backend_, "web", victim_ip, 8080).ok());
  auto seen = Spread(kVip, 80, 30);
  EXPECT_EQ(seen.count(victim), 0u) << "drained backend got a new connection";
  EXPECT_EQ(seen.count(""), 0u);
  ASSERT_EQ(::write(conn.get(), "ping\n", 5), 5);
  EXPECT_EQ(ReadLine(conn.get()), "ping") << "established connection broke on drain";

  Service without = Web();
  std::erase_if(without.backends, [&](const BackendAddr& b) { return b.ip == victim_ip; });
  ASSERT_TRUE(backend_->Apply(Change{{without}, {}}).ok());
  seen = Spread(kVip, 80, 30);
  EXPECT_EQ(seen.count(victim), 0u);
  ASSERT_EQ(::write(conn.get(), "pong\n", 5), 5);
  EXPECT_EQ(ReadLine(conn.get()), "pong") << "established connection broke on removal";
}

TEST_F(NftLbPrivTest, RemovedUdpBackendLosesItsConntrackFlows) {
  ASSERT_TRUE(backend_->Apply(Change{{Web(Protocol::kUdp)}, {}}).ok());
  base::UniqueFd fd = SocketIn(client_fd_, SOCK_DGRAM);
  sockaddr_in to = Addr(kVip, 80);
  ASSERT_EQ(::connect(fd.get(), reinterpret_cast<sockaddr*>(&to), sizeof(to)), 0);
  auto ask = [&]() -> std::string {
    char buf[64];
    for (int attempt = 0; attempt < 5; ++attempt) {
      ::send(fd.get(), "q", 1, 0);
      pollfd p{fd.get(), POLLIN, 0};
      if (::poll(&p, 1, 1000) == 1) {
        ssize_t n = ::recv(fd.get(), buf, sizeof(buf), 0);
        if (n > 0) return std::string(buf, n);
      }
    }
    return "";
  };
  std::string first = ask();
  ASSERT_FALSE(first.empty());
  EXPECT_EQ(ask(), first);  // same flow, same backend (conntrack)
  std::string victim_ip = absl::StrCat("10.123.2.1", first.substr(1));
  auto listed = Sh(absl::StrCat("ip netns exec ", lb_, " conntrack -L -p udp 2>/dev/null"));
  EXPECT_NE(listed.out.find("src=" + victim_ip), std::string::npos) << listed.out;

  Service without = Web(Protocol::kUdp);
  std::erase_if(without.backends, [&](const BackendAddr& b) { return b.ip == victim_ip; });
  ASSERT_TRUE(backend_->Apply(Change{{without}, {}}).ok());
  // The stale flow is gone, so the same client socket now reaches a live backend.
  listed = Sh(absl::StrCat("ip netns exec ", lb_, " conntrack -L -p udp 2>/dev/null"));
  EXPECT_EQ(listed.out.find("src=" + victim_ip), std::string::npos) << listed.out;
  std::string after = ask();
  EXPECT_FALSE(after.empty());
  EXPECT_NE(after, first);
}

TEST_F(NftLbPrivTest, RemovingTheServiceStopsItsTrafficAndLeavesOthers) {
  Service other = Web();
  other.name = "other";
  other.port = 81;
  ASSERT_TRUE(backend_->Apply(Change{{Web(), other}, {}}).ok());
  EXPECT_EQ(Connect(kVip, 80).second.size(), 2u);
  ASSERT_TRUE(backend_->Apply(Change{{}, {"web"}}).ok());
  EXPECT_EQ(Connect(kVip, 80).second, "");
  EXPECT_EQ(Connect(kVip, 81).second.size(), 2u);
  // (nft 1.0.6's CLI cannot print the slot maps: it aborts in concat_expr_msort_value on the
  // integer field of the concatenation, so the kernel state is observed through traffic.)
}

}  // namespace
}  // namespace shoal::lb
