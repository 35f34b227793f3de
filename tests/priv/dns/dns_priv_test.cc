// The resolver serving a container namespace, observed with dig and busybox nslookup run
// inside it; external names go through a dnsmasq upstream in a second namespace that only the
// container namespace can reach.
//
// Topology (all throwaway, prefix snd-):
//   snd-c<pid>  "container": lo (127.0.0.11 served by Shoal), veth 192.168.231.2/30
//   snd-u<pid>  "upstream":  veth 192.168.231.1/30, dnsmasq on :53
#include <arpa/inet.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "dns/netns_socket.h"
#include "dns/redirect.h"
#include "dns/resolver.h"
#include "gtest/gtest.h"
#include "kernel/nft/netlink_nft.h"
#include "tests/priv/dns/sh.h"
#include "tests/testing/priv.h"

namespace shoal::dns {
namespace {

using testing::Eventually;
using testing::Sh;

class DnsPrivTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SHOAL_REQUIRE_ROOT();
    if (Sh("command -v dig && command -v dnsmasq").code != 0) {
      GTEST_SKIP() << "needs dig (dnsutils) and dnsmasq (scripts/setup)";
    }
    cns_ = absl::StrCat("snd-c", getpid());
    uns_ = absl::StrCat("snd-u", getpid());
    veth_ = absl::StrCat("snd-v", getpid());
    ASSERT_EQ(Sh("ip netns add " + cns_).code, 0);
    created_ = true;
    ASSERT_EQ(Sh("ip netns add " + uns_).code, 0);
    ASSERT_EQ(Sh(absl::StrCat("ip -n ", cns_, " link add ", veth_, "a type veth peer name ", veth_,
                              "b netns ", uns_))
                  .code,
              0);
    for (const auto& [ns, dev, ip] : {std::tuple{cns_, veth_ + "a", "192.168.231.2/30"},
                                      std::tuple{uns_, veth_ + "b", "192.168.231.1/30"}}) {
      ASSERT_EQ(Sh(absl::StrCat("ip -n ", ns, " addr add ", ip, " dev ", dev, " && ip -n ", ns,
                                " link set ", dev, " up && ip -n ", ns, " link set lo up"))
                    .code,
                0);
    }
    StartDnsmasq();
    netns_fd_ = ::open(("/run/netns/" + cns_).c_str(), O_RDONLY | O_CLOEXEC);
    ASSERT_GE(netns_fd_, 0);

    ASSERT_TRUE(
        table_
            .SetService("front",
                        {"web", {"www"}, {*ParseIp("10.0.1.2")}, false, {{"http", "tcp", 80}}})
            .ok());
    for (int i = 1; i <= 3; ++i) {
      ASSERT_TRUE(table_
                      .SetTask("front", {absl::StrCat("t", i),
                                         "web",
                                         {absl::StrCat("web.", i, ".t", i)},
                                         {*ParseIp(absl::StrCat("10.0.1.", 10 + i))}})
                      .ok());
    }
    ASSERT_TRUE(table_.SetService("front", {"big", {}, {}, true, {}}).ok());
    for (int i = 1; i <= 60; ++i) {
      ASSERT_TRUE(
          table_
              .SetTask("front",
                       {absl::StrCat("b", i), "big", {}, {*ParseIp(absl::StrCat("10.0.2.", i))}})
              .ok());
    }
    ResolverOptions opts;
    opts.upstream_timeout = std::chrono::milliseconds(500);
    auto r = Resolver::Start(&table_, opts);
    ASSERT_TRUE(r.ok()) << r.status();
    resolver_ = *std::move(r);
    EndpointSpec spec;
    spec.id = "c1";
    spec.netns_fd = netns_fd_;
    spec.networks = {"front"};
    spec.upstreams = {"192.168.231.1"};
    auto b = resolver_->AddEndpoint(spec);
    ASSERT_TRUE(b.ok()) << b.status();
    port_ = b->port;
  }

  void StartDnsmasq() {
    dnsmasq_ = ::fork();
    ASSERT_GE(dnsmasq_, 0);
    if (dnsmasq_ == 0) {
      ::execlp("ip", "ip", "netns", "exec", uns_.c_str(), "dnsmasq", "--keep-in-foreground",
               "--no-resolv", "--no-hosts", "--bind-interfaces", "--listen-address=192.168.231.1",
               "--address=/external.test/192.0.2.10", "--local=/test/",
               "--pid-file=", "--user=root", static_cast<char*>(nullptr));
      ::_exit(127);
    }
    ASSERT_TRUE(Eventually([&] {
      return Sh(absl::StrCat("ip netns exec ", uns_,
                             " dig +short +time=1 +tries=1 @192.168.231.1 external.test"))
                 .out.find("192.0.2.10") != std::string::npos;
    })) << "dnsmasq did not come up";
  }

  void StopDnsmasq() {
    if (dnsmasq_ > 0) {
      ::kill(dnsmasq_, SIGTERM);
      ::waitpid(dnsmasq_, nullptr, 0);
      dnsmasq_ = -1;
    }
  }

  void TearDown() override {
    resolver_.reset();
    StopDnsmasq();
    if (netns_fd_ >= 0) ::close(netns_fd_);
    if (created_) {
      Sh("ip netns del " + cns_);
      Sh("ip netns del " + uns_);
    }
  }

  // dig inside the container namespace against the Shoal port.
  std::string Dig(const std::string& args) {
    return Sh(absl::StrCat("ip netns exec ", cns_, " dig -p ", port_,
                           " @127.0.0.11 +time=2 +tries=1 ", args))
        .out;
  }
  std::vector<std::string> Short(const std::string& args) {
    std::string out = Dig("+short " + args);
    std::vector<std::string> lines = absl::StrSplit(out, '\n', absl::SkipWhitespace());
    std::sort(lines.begin(), lines.end());
    return lines;
  }

  std::string cns_, uns_, veth_;
  bool created_ = false;
  int netns_fd_ = -1;
  pid_t dnsmasq_ = -1;
  RecordTable table_;
  std::unique_ptr<Resolver> resolver_;
  uint16_t port_ = 0;
};

TEST_F(DnsPrivTest, ServiceTasksAndNames) {
  EXPECT_EQ(Short("web"), (std::vector<std::string>{"10.0.1.2"}));
  EXPECT_EQ(Short("www.front"), (std::vector<std::string>{"10.0.1.2"}));
  EXPECT_EQ(Short("tasks.web"), (std::vector<std::string>{"10.0.1.11", "10.0.1.12", "10.0.1.13"}));
  EXPECT_EQ(Short("web.2.t2"), (std::vector<std::string>{"10.0.1.12"}));
  EXPECT_EQ(Short("-x 10.0.1.13"), (std::vector<std::string>{"web.3.t3.front."}));
  EXPECT_EQ(Short("SRV _http._tcp.web").size(), 3u);
  EXPECT_EQ(Short("+tcp tasks.web").size(), 3u);
}

TEST_F(DnsPrivTest, NxdomainVersusNodata) {
  std::string out = Dig("nosuch.front");
  EXPECT_NE(out.find("status: NXDOMAIN"), std::string::npos) << out;
  out = Dig("AAAA web");
  EXPECT_NE(out.find("status: NOERROR"), std::string::npos) << out;
  EXPECT_NE(out.find("ANSWER: 0"), std::string::npos) << out;
}

TEST_F(DnsPrivTest, LargeAnswerTruncatesThenTcpFallback) {
  // Without EDNS the 60 addresses do not fit 512 bytes: TC set, dig (with +ignore) shows it.
  std::string out = Dig("+noedns +ignore big");
  EXPECT_NE(out.find(" tc"), std::string::npos) << out;
  // By default dig retries over TCP on TC and gets everything.
  EXPECT_EQ(Short("+noedns big").size(), 60u);
  EXPECT_EQ(Short("+bufsize=4096 big").size(), 60u);
}

TEST_F(DnsPrivTest, ExternalNamesForwardedFromInsideTheNamespace) {
  EXPECT_EQ(Short("external.test"), (std::vector<std::string>{"192.0.2.10"}));
  std::string out = Dig("missing.test");
  EXPECT_NE(out.find("status: NXDOMAIN"), std::string::npos) << out;
  // Over TCP from the client too (forwarded over UDP).
  EXPECT_EQ(Short("+tcp external.test"), (std::vector<std::string>{"192.0.2.10"}));
  // Upstream gone: SERVFAIL after the timeout, and the resolver keeps serving.
  StopDnsmasq();
  out = Dig("external.test");
  EXPECT_NE(out.find("status: SERVFAIL"), std::string::npos) << out;
  EXPECT_EQ(Short("web"), (std::vector<std::string>{"10.0.1.2"}));
}

TEST_F(DnsPrivTest, BusyboxNslookupThroughPort53Redirect) {
  // The container keeps port 53: dns::InstallRedirect DNATs 127.0.0.11:53 to Shoal's port.
  auto nft = kernel::nft::OpenNft(netns_fd_);
  ASSERT_TRUE(nft.ok()) << nft.status();
  ASSERT_TRUE(InstallRedirect(**nft, "127.0.0.11", port_).ok());
  ASSERT_TRUE(InstallRedirect(**nft, "127.0.0.11", port_).ok());  // idempotent
  auto out = Sh(absl::StrCat("ip netns exec ", cns_, " busybox nslookup web 127.0.0.11"));
  EXPECT_NE(out.out.find("10.0.1.2"), std::string::npos) << out.out;
  out = Sh(absl::StrCat("ip netns exec ", cns_, " busybox nslookup external.test 127.0.0.11"));
  EXPECT_NE(out.out.find("192.0.2.10"), std::string::npos) << out.out;
  out = Sh(absl::StrCat("ip netns exec ", cns_, " busybox nslookup nosuch.front 127.0.0.11"));
  EXPECT_NE(out.code, 0) << out.out;
  EXPECT_NE(out.out.find("NXDOMAIN"), std::string::npos) << out.out;
  // Plain dig on :53 works too, over UDP and TCP.
  EXPECT_NE(Sh(absl::StrCat("ip netns exec ", cns_, " dig +short @127.0.0.11 tasks.web"))
                .out.find("10.0.1.11"),
            std::string::npos);
  EXPECT_NE(Sh(absl::StrCat("ip netns exec ", cns_, " dig +tcp +short @127.0.0.11 web"))
                .out.find("10.0.1.2"),
            std::string::npos);
  // Removing the redirect: :53 is the container's own again (nothing listens there).
  ASSERT_TRUE(RemoveRedirect(**nft).ok());
  EXPECT_EQ(Sh(absl::StrCat("ip netns exec ", cns_, " dig +short +time=1 +tries=1 @127.0.0.11 web"))
                .out.find("10.0.1.2"),
            std::string::npos);
}

TEST_F(DnsPrivTest, MalformedPacketsGetFormerrAndDoNotStopService) {
  auto fd = UdpSocketInNetns(netns_fd_, AF_INET);
  ASSERT_TRUE(fd.ok());
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(port_);
  inet_pton(AF_INET, "127.0.0.11", &to.sin_addr);
  // Header claims one question, followed by a compression pointer to itself.
  std::string bad("\xab\xcd\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\xc0\x0c\x00\x01\x00\x01", 18);
  ASSERT_GT(
      ::sendto(fd->get(), bad.data(), bad.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof(to)),
      0);
  pollfd p{fd->get(), POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, 5000), 1);
  char buf[512];
  ssize_t n = ::recv(fd->get(), buf, sizeof(buf), 0);
  ASSERT_GE(n, 12);
  auto h = ParseHeader(absl::string_view(buf, n));
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->id, 0xabcd);
  EXPECT_EQ(h->rcode, kFormErr);
  EXPECT_EQ(Short("web"), (std::vector<std::string>{"10.0.1.2"}));
}

TEST_F(DnsPrivTest, SocketsLiveInTheContainerNamespaceOnly) {
  // The host namespace has no listener on that port at 127.0.0.11.
  std::string host = Sh(absl::StrCat("dig -p ", port_, " @127.0.0.11 +time=1 +tries=1 web")).out;
  EXPECT_EQ(host.find("10.0.1.2"), std::string::npos) << host;
  // Removing the endpoint closes them.
  ASSERT_TRUE(resolver_->RemoveEndpoint("c1").ok());
  std::string after = Dig("web");
  EXPECT_EQ(after.find("10.0.1.2"), std::string::npos) << after;
}

}  // namespace
}  // namespace shoal::dns
