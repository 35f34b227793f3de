// Service load balancing across three lab hosts, observed as a user would (nc/curl HTTP requests,
// TCP connections): VIP through the LB sandboxes, the routing mesh on every host, graceful drain,
// host-mode ports, rejection when every backend drains, bad input, and clean teardown.
//
//   b1 (host 1), b2 (host 2), b3 (host 3): eth0 on "app" 10.20.1.1N, eth1 on "ingress"
//       10.255.0.1N, eth2 on the host's gateway bridge 172.18.0.1N; httpd :80 serves the
//       hostname, :9000 greets with it and echoes lines.
//   c0 (host 1): the client, eth0 on "app" 10.20.1.50.
//   service web: VIP 10.20.1.100 tcp/80 + tcp/9000, tcp/80 published on 8080 (ingress mode).
//   service hm: dnsrr, tcp/80 published on 8081 in host mode.
#include <arpa/inet.h>
#include <poll.h>
#include <sched.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <iostream>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gtest/gtest.h"
#include "kernel/nft/netlink_nft.h"
#include "kernel/nft/plan.h"
#include "tests/e2e/lb/mesh_lab.h"
#include "tests/testing/priv.h"

namespace shoal::lb::testing {
namespace {

constexpr char kVip[] = "10.20.1.100";

base::UniqueFd TcpSocketIn(int netns_fd) {
  base::UniqueFd fd;
  std::thread([&] {
    if (::setns(netns_fd, CLONE_NEWNET) == 0) {
      fd = base::UniqueFd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    }
  }).join();
  return fd;
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

std::multiset<std::string> Lines(const std::string& out) {
  std::multiset<std::string> r;
  for (absl::string_view l : absl::StrSplit(out, '\n', absl::SkipEmpty())) {
    r.insert(std::string(absl::StripAsciiWhitespace(l)));
  }
  return r;
}

// `n` HTTP GETs from inside a container (busybox nc; Debian's static busybox wget segfaults):
// one line per request, the body or FAIL.
std::string NcLoop(const std::string& ip, int port, int n) {
  return absl::StrCat("for i in $(seq ", n, "); do printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 ",
                      ip, " ", port, " | tail -n 1 | grep . || echo FAIL; done");
}

// The same with curl, from a lab host or the outside host (host tools).
std::string CurlLoop(const std::string& url, int n) {
  return absl::StrCat("for i in $(seq ", n, "); do curl -s -m 3 ", url,
                      " 2>/dev/null || echo FAIL; done");
}

class MeshE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SHOAL_REQUIRE_ROOT();
    auto m = MeshLab::Create("shlb-", 3);
    ASSERT_TRUE(m.ok()) << m.status();
    lab_ = std::move(*m);
    for (int i = 1; i <= 3; ++i) {
      std::string b = absl::StrCat("b", i);
      ASSERT_TRUE(lab_->AddContainer(i - 1, b, absl::StrCat("10.20.1.1", i),
                                     absl::StrCat("10.255.0.1", i), absl::StrCat("172.18.0.1", i))
                      .ok());
      ASSERT_TRUE(lab_->StartServers(b).ok());
    }
    ASSERT_TRUE(lab_->AddContainer(0, "c0", "10.20.1.50").ok());
    // Every backend answers directly before any LB state exists (overlay + servers are up).
    for (int i = 1; i <= 3; ++i) {
      bool up = false;
      auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
      while (!up && std::chrono::steady_clock::now() < deadline) {
        auto r = lab_->Run("c0", NcLoop(absl::StrCat("10.20.1.1", i), 80, 1));
        up = r.ok() && absl::StripAsciiWhitespace(r->output) == absl::StrCat("b", i);
        if (!up) std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
      ASSERT_TRUE(up) << "backend b" << i << " not reachable from c0";
    }
  }
  void TearDown() override { lab_.reset(); }

  ServiceConfig Web() const {
    ServiceConfig s;
    s.name = "web";
    s.network_id = kApp;
    s.vip = kVip;
    s.ports = {{Protocol::kTcp, 80, 8080, PublishMode::kIngress}, {Protocol::kTcp, 9000, 0}};
    for (int i = 1; i <= 3; ++i) {
      TaskEndpoint t;
      t.id = absl::StrCat("b", i);
      t.ip = absl::StrCat("10.20.1.1", i);
      t.ingress_ip = absl::StrCat("10.255.0.1", i);
      t.gw_endpoint_id = absl::StrCat("b", i, "-eth2");
      s.tasks.push_back(t);
    }
    return s;
  }
  ServiceConfig HostMode() const {
    ServiceConfig s = Web();
    s.name = "hm";
    s.endpoint_mode = EndpointMode::kDnsrr;
    s.vip = "";
    s.ports = {{Protocol::kTcp, 80, 8081, PublishMode::kHost}};
    return s;
  }
  // Applies `services` on every host (task `local` set per host).
  absl::Status ApplyAll(std::vector<ServiceConfig> services) {
    for (int h = 0; h < 3; ++h) {
      for (ServiceConfig& s : services) {
        for (TaskEndpoint& t : s.tasks) t.local = t.id == absl::StrCat("b", h + 1);
      }
      absl::Status st = lab_->mesh(h).SetServices(services);
      if (!st.ok()) return st;
    }
    return absl::OkStatus();
  }
  std::multiset<std::string> FromClient(const std::string& ip, int port, int n) {
    auto r = lab_->Run("c0", NcLoop(ip, port, n));
    return r.ok() ? Lines(r->output) : std::multiset<std::string>{"RUN-ERROR"};
  }
  std::multiset<std::string> FromOutside(const std::string& url, int n) {
    auto r = lab::RunIn(lab_->lab().outside()->netns.get(), CurlLoop(url, n));
    return r.ok() ? Lines(r->output) : std::multiset<std::string>{"RUN-ERROR"};
  }
  std::pair<base::UniqueFd, std::string> Connect(const char* ip, uint16_t port) {
    base::UniqueFd fd = TcpSocketIn(lab_->fd("c0"));
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(port);
    inet_pton(AF_INET, ip, &to.sin_addr);
    timeval tv{3, 0};
    ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&to), sizeof(to)) != 0) return {};
    std::string name = ReadLine(fd.get());
    return {std::move(fd), name};
  }

  std::unique_ptr<MeshLab> lab_;
};

const std::set<std::string> kAll = {"b1", "b2", "b3"};

std::set<std::string> Distinct(const std::multiset<std::string>& m) {
  return std::set<std::string>(m.begin(), m.end());
}

TEST_F(MeshE2eTest, VipFromClientContainerReachesAllThreeBackends) {
  ASSERT_TRUE(ApplyAll({Web()}).ok());
  auto seen = FromClient(kVip, 80, 40);
  EXPECT_EQ(Distinct(seen), kAll) << "answers: " << ::testing::PrintToString(seen);
  // The VIP is a local address of the LB sandbox on every host.
  for (int h = 0; h < 3; ++h) {
    auto r = lab::RunIn(lab_->mesh(h).sandbox(kApp)->fd(), "ip -4 -o addr show dev eth0");
    ASSERT_TRUE(r.ok());
    EXPECT_NE(r->output.find(std::string(kVip) + "/32"), std::string::npos) << r->output;
  }
}

TEST_F(MeshE2eTest, PublishedPortAnswersOnEveryHostAndReachesAllBackends) {
  ASSERT_TRUE(ApplyAll({Web()}).ok());
  for (int h = 0; h < 3; ++h) {
    std::string url = absl::StrCat("http://", lab_->lab().host(h).ip.ToString(), ":8080/");
    auto seen = FromOutside(url, 40);
    EXPECT_EQ(Distinct(seen), kAll) << url << " answers: " << ::testing::PrintToString(seen);
  }
  // A client on a host reaches the published port of another host too.
  auto r = lab_->lab().Run(
      0, CurlLoop(absl::StrCat("http://", lab_->lab().host(1).ip.ToString(), ":8080/"), 3));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(Lines(r->output).count("FAIL"), 0u) << r->output;
  // And a client on the host through 127.0.0.1 (route_localnet + masquerade onto the bridge).
  r = lab_->lab().Run(2, CurlLoop("http://127.0.0.1:8080/", 20));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(Distinct(Lines(r->output)), kAll) << r->output;
  // An unpublished port on the host is not forwarded.
  auto other = FromOutside(absl::StrCat("http://", lab_->lab().host(0).ip.ToString(), ":8082/"), 1);
  EXPECT_EQ(Distinct(other), std::set<std::string>{"FAIL"});
}

TEST_F(MeshE2eTest, RemovedBackendGetsNoNewConnectionsWhileAnOpenOneCompletes) {
  ASSERT_TRUE(ApplyAll({Web()}).ok());
  auto [conn, victim] = Connect(kVip, 9000);
  ASSERT_TRUE(kAll.contains(victim)) << "greeting: " << victim;

  // Drain first (weight 0), then remove: neither may break the open connection.
  ServiceConfig drained = Web();
  for (TaskEndpoint& t : drained.tasks) t.draining = t.id == victim;
  auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(ApplyAll({drained}).ok());
  auto seen = FromClient(kVip, 80, 30);
  auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(seen.count(victim), 0u) << "drained backend got a new connection";
  EXPECT_EQ(seen.count("FAIL"), 0u);
  std::cout << "drain applied on 3 hosts and 30 requests done in "
            << std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count() << " ms\n";
  ASSERT_EQ(::write(conn.get(), "ping\n", 5), 5);
  EXPECT_EQ(ReadLine(conn.get()), "ping") << "established connection broke on drain";

  ServiceConfig removed = Web();
  std::erase_if(removed.tasks, [&](const TaskEndpoint& t) { return t.id == victim; });
  ASSERT_TRUE(ApplyAll({removed}).ok());
  seen = FromClient(kVip, 80, 30);
  EXPECT_EQ(seen.count(victim), 0u) << "removed backend got a new connection";
  EXPECT_EQ(Distinct(seen).size(), 2u) << ::testing::PrintToString(seen);
  // The published port stops sending new flows to it as well, on every host.
  for (int h = 0; h < 3; ++h) {
    auto pub =
        FromOutside(absl::StrCat("http://", lab_->lab().host(h).ip.ToString(), ":8080/"), 15);
    EXPECT_EQ(pub.count(victim), 0u) << "host " << h + 1;
    EXPECT_EQ(pub.count("FAIL"), 0u) << "host " << h + 1;
  }
  ASSERT_EQ(::write(conn.get(), "pong\n", 5), 5);
  EXPECT_EQ(ReadLine(conn.get()), "pong") << "established connection broke on removal";
}

TEST_F(MeshE2eTest, TaskIngressLegAcceptsOnlyPublishedTargetPorts) {
  ASSERT_TRUE(ApplyAll({Web()}).ok());
  auto n = kernel::nft::OpenNft(lab_->fd("b1"));
  ASSERT_TRUE(n.ok()) << n.status();
  ASSERT_TRUE(kernel::nft::SyncTable(**n, TaskIngressFilter("eth1", {{6, 80}})).ok());
  int ingress_sbox = lab_->mesh(0).ingress_sandbox()->fd();
  auto web = lab::RunIn(ingress_sbox, "curl -s -m 3 http://10.255.0.11:80/");
  ASSERT_TRUE(web.ok());
  EXPECT_EQ(web->output, "b1\n");
  auto other = lab::RunIn(ingress_sbox, "curl -s -m 2 http://10.255.0.11:9000/; echo rc=$?");
  ASSERT_TRUE(other.ok());
  EXPECT_NE(other->output.find("rc=28"), std::string::npos) << "not dropped: " << other->output;
  // The app network leg is untouched, and the routing mesh still reaches b1.
  auto app = lab_->Run("c0", "echo x | nc -w 2 10.20.1.11 9000 | head -n 1");
  ASSERT_TRUE(app.ok());
  EXPECT_EQ(app->output, "b1\n");
  auto seen = FromOutside(absl::StrCat("http://", lab_->lab().host(0).ip.ToString(), ":8080/"), 30);
  EXPECT_EQ(Distinct(seen), kAll) << ::testing::PrintToString(seen);
}

TEST_F(MeshE2eTest, ServiceWithEveryBackendDrainedRejectsInsteadOfHanging) {
  ServiceConfig s = Web();
  for (TaskEndpoint& t : s.tasks) t.draining = true;
  ASSERT_TRUE(ApplyAll({s}).ok());
  auto r = lab_->Run("c0", absl::StrCat("nc -w 10 ", kVip, " 80 </dev/null"));
  ASSERT_TRUE(r.ok());
  EXPECT_NE(r->exit_code, 0);
  EXPECT_NE(r->output.find("Connection refused"), std::string::npos) << r->output;
  auto out = lab::RunIn(
      lab_->lab().outside()->netns.get(),
      absl::StrCat("curl -sS -m 10 http://", lab_->lab().host(1).ip.ToString(), ":8080/ 2>&1"));
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->exit_code, 7) << "not refused (28 = timed out): " << out->output;
}

TEST_F(MeshE2eTest, HostModePortReachesOnlyTheLocalTask) {
  ASSERT_TRUE(ApplyAll({Web(), HostMode()}).ok());
  for (int h = 0; h < 3; ++h) {
    auto seen =
        FromOutside(absl::StrCat("http://", lab_->lab().host(h).ip.ToString(), ":8081/"), 10);
    EXPECT_EQ(Distinct(seen), std::set<std::string>{absl::StrCat("b", h + 1)})
        << "host " << h + 1 << ": " << ::testing::PrintToString(seen);
  }
}

void ExpectError(const absl::Status& st, absl::StatusCode code, const std::string& part) {
  EXPECT_EQ(st.code(), code) << st;
  EXPECT_NE(std::string(st.message()).find(part), std::string::npos) << st;
}

TEST_F(MeshE2eTest, BadInputGetsClearErrorsAndChangesNothing) {
  ASSERT_TRUE(ApplyAll({Web()}).ok());
  Mesh& m = lab_->mesh(0);

  ServiceConfig outside = Web();
  outside.vip = "10.99.0.5";
  ExpectError(m.SetServices({outside}), absl::StatusCode::kInvalidArgument,
              "service web: vip 10.99.0.5 is outside the subnet 10.20.1.0/24 of network app");

  ServiceConfig other = Web();
  other.name = "other";
  other.vip = "10.20.1.101";
  ExpectError(m.SetServices({Web(), other}), absl::StatusCode::kFailedPrecondition,
              "port conflict: ports[0].published_port tcp/8080 of service other (ingress) is "
              "already published by service web (ingress)");
  ServiceConfig host_clash = HostMode();
  host_clash.ports[0].published_port = 8080;
  ExpectError(m.SetServices({Web(), host_clash}), absl::StatusCode::kFailedPrecondition,
              "port conflict");
  ServiceConfig same_vip = Web();
  same_vip.name = "same";
  same_vip.ports = {{Protocol::kTcp, 80, 0}};
  ExpectError(m.SetServices({Web(), same_vip}), absl::StatusCode::kFailedPrecondition,
              "port conflict: service same: vip 10.20.1.100 tcp/80 (ports[0]) is already used by "
              "service web");

  ServiceConfig empty = Web();
  empty.tasks.clear();
  ExpectError(m.SetServices({empty}), absl::StatusCode::kInvalidArgument,
              "service web: tasks: empty backend set");

  ServiceConfig dnsrr = Web();
  dnsrr.endpoint_mode = EndpointMode::kDnsrr;
  dnsrr.vip = "";
  ExpectError(m.SetServices({dnsrr}), absl::StatusCode::kInvalidArgument,
              "service web: ports[0]: a port published in ingress mode cannot be used with "
              "endpoint_mode dnsrr");

  ServiceConfig bad_net = Web();
  bad_net.network_id = "nope";
  ExpectError(m.SetServices({bad_net}), absl::StatusCode::kInvalidArgument,
              "service web: network_id nope: no LB sandbox");

  // None of the rejected changes touched the dataplane: the VIP still reaches all backends.
  auto seen = FromClient(kVip, 80, 30);
  EXPECT_EQ(Distinct(seen), kAll) << ::testing::PrintToString(seen);
}

TEST(MeshE2eTeardownTest, NothingIsLeftBehind) {
  SHOAL_REQUIRE_ROOT();
  std::string dir;
  {
    auto m = MeshLab::Create("shlb-td-", 2);
    ASSERT_TRUE(m.ok()) << m.status();
    dir = (*m)->dir();
    ASSERT_TRUE((*m)->AddContainer(0, "t1", "10.20.1.11", "10.255.0.11", "172.18.0.11").ok());
    ServiceConfig s;
    s.name = "web";
    s.network_id = kApp;
    s.vip = kVip;
    s.ports = {{Protocol::kTcp, 80, 8080, PublishMode::kIngress}};
    s.tasks = {{"t1", "10.20.1.11", "10.255.0.11", true, "t1-eth2", false}};
    ASSERT_TRUE((*m)->mesh(0).SetServices({s}).ok());
    auto tables = lab::RunIn((*m)->lab().host(0).netns.get(), "nft list tables");
    ASSERT_TRUE(tables.ok());
    EXPECT_NE(tables->output.find("shoal-ingress"), std::string::npos) << tables->output;
  }
  EXPECT_FALSE(std::filesystem::exists(dir)) << dir;
  auto r = lab::RunIn(-1, absl::StrCat("ip netns list | grep shlb-td-; ls -d /tmp/shlb-td-ctr-",
                                       ::getpid(), " 2>/dev/null; find /sys/fs/cgroup -maxdepth 2 ",
                                       "-name 'shlb-td-cg-*'; true"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->output, "") << "left behind: namespaces, container dirs, cgroups";
}

}  // namespace
}  // namespace shoal::lb::testing
