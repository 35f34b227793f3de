// The embedded DNS seen by real containers on three lab hosts (issue 6 item 3): busybox
// nslookup and ping inside the containers (through their /etc/resolv.conf = 127.0.0.11), dig
// run in the container's network namespace. Topology and teardown: dns_lab.h. Root only.
#include <algorithm>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "tests/e2e/dns/dns_lab.h"
#include "tests/testing/priv.h"

namespace shoal::dns::e2e {
namespace {

constexpr char kVip[] = "10.10.1.100";
constexpr int kBigTasks = 200;  // 200 A records: > 1232 (dig's EDNS size), so UDP truncates

std::vector<std::string> Lines(const std::string& out) {
  std::vector<std::string> lines = absl::StrSplit(out, '\n', absl::SkipWhitespace());
  std::sort(lines.begin(), lines.end());
  return lines;
}

class DnsE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SHOAL_REQUIRE_ROOT();
    auto tools = lab::RunIn(-1, "command -v dig && command -v dnsmasq && command -v conntrack");
    if (!tools.ok() || !tools->ok()) {
      GTEST_SKIP() << "needs dig (dnsutils), dnsmasq and conntrack (scripts/setup)";
    }
    auto l = DnsLab::Create();
    ASSERT_TRUE(l.ok()) << l.status();
    lab_ = std::move(*l);
    // Three tasks of "web", one per host; two clients (hosts 1 and 3) with egress.
    for (int i = 1; i <= 3; ++i) {
      auto c =
          lab_->AddContainer(i - 1, absl::StrCat("web", i), absl::StrCat("10.10.1.1", i), false);
      ASSERT_TRUE(c.ok()) << c.status();
    }
    for (int h : {1, 3}) {
      auto c =
          lab_->AddContainer(h - 1, absl::StrCat("client", h), absl::StrCat("10.10.1.2", h), true);
      ASSERT_TRUE(c.ok()) << c.status();
    }
    // What each node's agent would receive from the manager: the service, its tasks (task
    // name and container name), the clients as plain containers, and a big dnsrr service.
    ASSERT_TRUE(
        lab_->SetService({"web", {"www"}, {*ParseIp(kVip)}, false, {{"http", "tcp", 80}}}).ok());
    for (int i = 1; i <= 3; ++i) {
      ASSERT_TRUE(lab_->SetTask({absl::StrCat("t", i),
                                 "web",
                                 {absl::StrCat("web.", i, ".t", i), absl::StrCat("web", i)},
                                 {*ParseIp(absl::StrCat("10.10.1.1", i))}})
                      .ok());
    }
    for (int h : {1, 3}) {
      ASSERT_TRUE(lab_->SetTask({absl::StrCat("client", h),
                                 "",
                                 {absl::StrCat("client", h)},
                                 {*ParseIp(absl::StrCat("10.10.1.2", h))}})
                      .ok());
    }
    ASSERT_TRUE(lab_->SetService({"big", {}, {}, true, {}}).ok());
    for (int i = 0; i < kBigTasks; ++i) {
      ASSERT_TRUE(
          lab_->SetTask(
                  {absl::StrCat("b", i), "big", {}, {*ParseIp(absl::StrCat("10.10.2.", i + 1))}})
              .ok());
    }
  }
  void TearDown() override { lab_.reset(); }

  // busybox nslookup inside the container (its resolv.conf, port 53 through the redirect).
  lab::CommandResult Nslookup(const std::string& client, const std::string& name) {
    auto r = lab_->container(client).Exec("nslookup " + name);
    return r.ok() ? *r : lab::CommandResult{-1, r.status().ToString()};
  }
  // The host's dig in the container's network namespace, at 127.0.0.11:53.
  std::string Dig(const std::string& client, const std::string& args) {
    auto r = lab_->InNetns(client, "dig @127.0.0.11 +time=3 +tries=1 " + args);
    return r.ok() ? r->output : r.status().ToString();
  }

  std::unique_ptr<DnsLab> lab_;
};

TEST_F(DnsE2eTest, ServiceResolvesToVipAndTasksToTheThreeTaskIpsOnEveryNode) {
  const std::vector<std::string> tasks = {"10.10.1.11", "10.10.1.12", "10.10.1.13"};
  for (const char* client : {"client1", "client3"}) {  // served by the resolvers of h1 and h3
    SCOPED_TRACE(client);
    lab::CommandResult r = Nslookup(client, "web");
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find(kVip), std::string::npos) << r.output;
    EXPECT_EQ(Lines(Dig(client, "+short web")), std::vector<std::string>{kVip});
    EXPECT_EQ(Lines(Dig(client, "+short www")), std::vector<std::string>{kVip});  // alias
    EXPECT_EQ(Lines(Dig(client, "+short web.front")), std::vector<std::string>{kVip});
    EXPECT_EQ(Lines(Dig(client, "+short tasks.web")), tasks);
    r = Nslookup(client, "tasks.web");
    for (const std::string& ip : tasks) EXPECT_NE(r.output.find(ip), std::string::npos) << r.output;
  }
  // Task records carry a short TTL (5 s), the VIP a longer one (60 s).
  std::vector<std::string> answer = absl::StrSplit(Dig("client1", "+noall +answer tasks.web"),
                                                   absl::ByAnyChar(" \t\n"), absl::SkipEmpty());
  ASSERT_GE(answer.size(), 5u);
  EXPECT_EQ(answer[1], "5");
  answer = absl::StrSplit(Dig("client1", "+noall +answer web"), absl::ByAnyChar(" \t\n"),
                          absl::SkipEmpty());
  ASSERT_GE(answer.size(), 5u);
  EXPECT_EQ(answer[1], "60");
  // The names lead to the real containers: ping by task name and by container name reaches
  // the task on host 2 over the overlay (a fresh veth forwards after linkwatch: poll).
  auto ping = lab_->container("client1").ExecUntilOk("ping -c1 -W2 web.2.t2");
  ASSERT_TRUE(ping.ok());
  EXPECT_EQ(ping->exit_code, 0) << ping->output;
  EXPECT_NE(ping->output.find("10.10.1.12"), std::string::npos) << ping->output;
  ping = lab_->container("client3").ExecUntilOk("ping -c1 -W2 web1");
  ASSERT_TRUE(ping.ok());
  EXPECT_EQ(ping->exit_code, 0) << ping->output;
  // PTR and SRV.
  EXPECT_EQ(Lines(Dig("client1", "+short -x 10.10.1.12")),
            std::vector<std::string>{"web.2.t2.front."});
  std::vector<std::string> srv = Lines(Dig("client1", "+short SRV _http._tcp.web"));
  EXPECT_EQ(srv,
            (std::vector<std::string>{"0 0 80 web.1.t1.", "0 0 80 web.2.t2.", "0 0 80 web.3.t3."}));
  // A task going away leaves tasks.web on every node at once.
  ASSERT_TRUE(lab_->RemoveTask("t2").ok());
  EXPECT_EQ(Lines(Dig("client3", "+short tasks.web")),
            (std::vector<std::string>{"10.10.1.11", "10.10.1.13"}));
}

TEST_F(DnsE2eTest, UnknownIsNxdomainKnownWithoutTypeIsNodataExternalGoesUpstream) {
  // Ours and unknown: answered NXDOMAIN by the resolver itself (never leaked upstream).
  lab::CommandResult r = Nslookup("client1", "tasks.nosuch");
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("NXDOMAIN"), std::string::npos) << r.output;
  EXPECT_NE(Dig("client1", "nosuch.front").find("status: NXDOMAIN"), std::string::npos);
  // Unknown elsewhere: forwarded; the upstream says NXDOMAIN.
  r = Nslookup("client1", "nosuch.test");
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("NXDOMAIN"), std::string::npos) << r.output;
  // Known name, no record of that type: NODATA (NOERROR, no answer), not NXDOMAIN.
  std::string nodata = Dig("client1", "AAAA web");
  EXPECT_NE(nodata.find("status: NOERROR"), std::string::npos) << nodata;
  EXPECT_NE(nodata.find("ANSWER: 0"), std::string::npos) << nodata;
  // External names through the dnsmasq upstream on the outside host, from both nodes.
  for (const char* client : {"client1", "client3"}) {
    r = Nslookup(client, "external.test");
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("192.0.2.10"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("2001:db8::10"), std::string::npos) << r.output;
    EXPECT_EQ(Lines(Dig(client, "+short external.test")), std::vector<std::string>{"192.0.2.10"});
  }
  // The forwarded query left from inside the container's namespace: its conntrack table (one
  // per namespace) holds the flow to the upstream, and dnsmasq saw it arrive from node 1's
  // underlay address (masqueraded by node 1's gwbridge).
  auto ct = lab_->InNetns("client1", absl::StrCat("conntrack -L -p udp --orig-dst ", kUpstream,
                                                  " --dport 53 2>/dev/null"));
  ASSERT_TRUE(ct.ok());
  EXPECT_NE(ct->output.find(absl::StrCat("dst=", kUpstream)), std::string::npos) << ct->output;
  std::string log = lab_->dnsmasq_log();
  EXPECT_NE(log.find("query[A] external.test from 192.168.77.1"), std::string::npos) << log;
  EXPECT_NE(log.find("query[A] external.test from 192.168.77.3"), std::string::npos) << log;
  EXPECT_EQ(log.find("tasks.nosuch"), std::string::npos) << log;
}

TEST_F(DnsE2eTest, LargeAnswerSetsTcOverUdpAndIsCompleteOverTcp) {
  std::string udp = Dig("client1", "+notcp +ignore tasks.big");
  EXPECT_NE(udp.find(" tc"), std::string::npos) << udp;  // ";; flags: qr aa tc rd ra;"
  EXPECT_NE(udp.find("ANSWER: 0"), std::string::npos) << udp;
  EXPECT_EQ(Lines(Dig("client1", "+tcp +short tasks.big")).size(), size_t{kBigTasks});
  // dig's default: UDP first, then TCP on TC.
  std::string fallback = Dig("client3", "tasks.big");
  EXPECT_NE(fallback.find("Truncated, retrying in TCP mode"), std::string::npos) << fallback;
  EXPECT_NE(fallback.find(absl::StrCat("ANSWER: ", kBigTasks)), std::string::npos) << fallback;
}

TEST_F(DnsE2eTest, ContainerCanStillServePort53Itself) {
  // client1 runs its own TCP server on *:53 (which includes 127.0.0.11:53).
  auto server = lab_->container("client1").Spawn("nc -ll -p 53 -e /bin/echo own-port-53");
  ASSERT_TRUE(server.ok()) << server.status();
  // Other containers reach it on the overlay...
  auto r =
      lab_->container("client3").ExecUntilOk("nc -w 2 10.10.1.21 53 </dev/null | grep own-port-53");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->exit_code, 0) << r->output;
  // ...and so does client1 itself on loopback,
  r = lab_->container("client1").Exec("nc -w 2 127.0.0.1 53 </dev/null");
  ASSERT_TRUE(r.ok());
  EXPECT_NE(r->output.find("own-port-53"), std::string::npos) << r->output;
  // while its DNS at 127.0.0.11:53, UDP and TCP, still reaches the node's resolver.
  EXPECT_EQ(Lines(Dig("client1", "+tcp +short web")), std::vector<std::string>{kVip});
  EXPECT_EQ(Lines(Dig("client1", "+notcp +short web")), std::vector<std::string>{kVip});
  lab::CommandResult n = Nslookup("client1", "web");
  EXPECT_NE(n.output.find(kVip), std::string::npos) << n.output;
}

}  // namespace
}  // namespace shoal::dns::e2e
