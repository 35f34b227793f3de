// The resolver loop on loopback in the test's own namespace (no root needed); the per-netns
// binding is covered by tests/priv/dns.
#include "dns/resolver.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <set>

#include "base/unique_fd.h"
#include "gtest/gtest.h"

namespace shoal::dns {
namespace {

std::string Query(absl::string_view name, uint16_t id = 0x4242) {
  Message m;
  m.header.id = id;
  m.header.rd = true;
  m.questions.push_back({std::string(name), kTypeA, kClassIn});
  return *BuildMessage(m);
}

sockaddr_in Loopback(uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

// Waits up to `ms` for a datagram.
std::optional<std::string> Recv(int fd, int ms, sockaddr_in* from = nullptr) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, ms) != 1) return std::nullopt;
  char buf[65536];
  socklen_t len = sizeof(sockaddr_in);
  ssize_t n =
      ::recvfrom(fd, buf, sizeof(buf), 0, reinterpret_cast<sockaddr*>(from), from ? &len : nullptr);
  if (n < 0) return std::nullopt;
  return std::string(buf, static_cast<size_t>(n));
}

base::UniqueFd Udp(uint16_t bind_port = 0, bool do_bind = false) {
  base::UniqueFd fd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (do_bind) {
    sockaddr_in a = Loopback(bind_port);
    EXPECT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  }
  return fd;
}

void SendTo(int fd, const sockaddr_in& to, const std::string& wire) {
  ::sendto(fd, wire.data(), wire.size(), 0, reinterpret_cast<const sockaddr*>(&to), sizeof(to));
}

std::optional<Message> AskUdp(uint16_t port, const std::string& q, int ms = 5000) {
  base::UniqueFd c = Udp();
  SendTo(c.get(), Loopback(port), q);
  auto r = Recv(c.get(), ms);
  if (!r) return std::nullopt;
  auto m = ParseMessage(*r);
  if (!m.ok()) return std::nullopt;
  return *m;
}

// Sends a query for `name` from `fd` to the resolver listening on loopback `port`.
void SendQuery(int fd, uint16_t port, absl::string_view name, uint16_t id) {
  SendTo(fd, Loopback(port), Query(name, id));
}

// DNS over TCP: a two-byte big-endian length before each message (RFC 1035 4.2.2).
std::string Framed(const std::string& wire) {
  return std::string(1, static_cast<char>(wire.size() >> 8)) +
         std::string(1, static_cast<char>(wire.size() & 0xff)) + wire;
}

// Reads the next length-prefixed message from a TCP socket (5 s per read); bytes past it stay
// in `*in` for the next call.
std::optional<Message> ReadFramed(int fd, std::string* in) {
  char buf[4096];
  auto want = [&] {
    return (static_cast<size_t>(static_cast<uint8_t>((*in)[0])) << 8) |
           static_cast<uint8_t>((*in)[1]);
  };
  while (in->size() < 2 || in->size() < 2 + want()) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 5000) != 1) return std::nullopt;
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n <= 0) return std::nullopt;
    in->append(buf, static_cast<size_t>(n));
  }
  size_t len = want();
  auto m = ParseMessage(absl::string_view(*in).substr(2, len));
  in->erase(0, 2 + len);
  if (!m.ok()) return std::nullopt;
  return *std::move(m);
}

class ResolverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(table_.SetService("net", {"web", {}, {*ParseIp("10.0.0.2")}, false, {}}).ok());
    ResolverOptions o;
    o.upstream_timeout = std::chrono::milliseconds(300);
    o.max_concurrent_forwards = 2;
    auto r = Resolver::Start(&table_, o);
    ASSERT_TRUE(r.ok()) << r.status();
    resolver_ = *std::move(r);
    upstream_ = Udp(0, true);
    sockaddr_in a{};
    socklen_t len = sizeof(a);
    ::getsockname(upstream_.get(), reinterpret_cast<sockaddr*>(&a), &len);
    upstream_port_ = ntohs(a.sin_port);
    EndpointSpec spec;
    spec.id = "c1";
    spec.listen_ip = "127.0.0.1";
    spec.networks = {"net"};
    spec.upstreams = {"127.0.0.1:" + std::to_string(upstream_port_)};
    auto b = resolver_->AddEndpoint(spec);
    ASSERT_TRUE(b.ok()) << b.status();
    port_ = b->port;
  }

  RecordTable table_;
  std::unique_ptr<Resolver> resolver_;
  base::UniqueFd upstream_;
  uint16_t upstream_port_ = 0;
  uint16_t port_ = 0;
};

TEST_F(ResolverTest, AnswersOverUdp) {
  auto r = AskUdp(port_, Query("web"));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->header.id, 0x4242);
  ASSERT_EQ(r->answers.size(), 1u);
  EXPECT_EQ(std::get<Ip4>(r->answers[0].data), (Ip4{10, 0, 0, 2}));
}

// A burst from two clients is read and answered in batches; every reply goes to the client
// that asked, with its id.
TEST_F(ResolverTest, BurstsFromSeveralClientsAreAnsweredToEachClient) {
  base::UniqueFd a = Udp(), b = Udp();
  sockaddr_in to = Loopback(port_);
  constexpr int kPerClient = 50;  // 100 datagrams: well within the socket buffers
  for (uint16_t id = 1; id <= kPerClient; ++id) {
    for (int fd : {a.get(), b.get()}) {
      std::string q = Query("web", fd == a.get() ? id : id + 1000);
      ASSERT_GT(::sendto(fd, q.data(), q.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof(to)),
                0);
    }
  }
  for (int fd : {a.get(), b.get()}) {
    std::vector<uint16_t> ids;
    for (int i = 0; i < kPerClient; ++i) {
      auto r = Recv(fd, 5000);
      ASSERT_TRUE(r.has_value()) << "reply " << i << " missing";
      auto m = ParseMessage(*r);
      ASSERT_TRUE(m.ok());
      ASSERT_EQ(m->answers.size(), 1u);
      ids.push_back(m->header.id);
    }
    std::sort(ids.begin(), ids.end());
    uint16_t base = fd == a.get() ? 1 : 1001;
    for (int i = 0; i < kPerClient; ++i) EXPECT_EQ(ids[i], base + i);
  }
}

TEST_F(ResolverTest, AnswersOverTcpWithSeveralQueriesPerConnection) {
  base::UniqueFd c(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in to = Loopback(port_);
  ASSERT_EQ(::connect(c.get(), reinterpret_cast<sockaddr*>(&to), sizeof(to)), 0);
  std::string out;
  for (uint16_t id : {1, 2}) out += Framed(Query(id == 1 ? "web" : "nosuch.net", id));
  ASSERT_EQ(::write(c.get(), out.data(), out.size()), static_cast<ssize_t>(out.size()));
  std::string in;
  std::vector<Message> got;
  while (got.size() < 2) {
    auto m = ReadFramed(c.get(), &in);
    ASSERT_TRUE(m.has_value()) << "reply " << got.size() << " missing";
    got.push_back(*std::move(m));
  }
  EXPECT_EQ(got[0].header.id, 1);
  EXPECT_EQ(got[0].answers.size(), 1u);
  EXPECT_EQ(got[1].header.id, 2);
  EXPECT_EQ(got[1].header.rcode, kNxDomain);
}

TEST_F(ResolverTest, ForwardsUnknownNamesAndRelaysTheAnswer) {
  base::UniqueFd c = Udp();
  SendQuery(c.get(), port_, "example.com", 0x7777);
  sockaddr_in from{};
  auto fwd = Recv(upstream_.get(), 5000, &from);
  ASSERT_TRUE(fwd.has_value());
  auto fq = ParseMessage(*fwd);
  ASSERT_TRUE(fq.ok());
  EXPECT_EQ(fq->questions[0].name, "example.com");
  Message resp = MakeResponse(*fq, kNoError);
  resp.answers.push_back({"example.com", kTypeA, kClassIn, 30, Ip4{192, 0, 2, 1}});
  SendTo(upstream_.get(), from, *BuildMessage(resp));
  auto r = Recv(c.get(), 5000);
  ASSERT_TRUE(r.has_value());
  auto m = ParseMessage(*r);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->header.id, 0x7777);  // the client's id restored
  ASSERT_EQ(m->answers.size(), 1u);
}

// Forwarded queries leave from several source ports (a pool of upstream sockets), not one.
TEST_F(ResolverTest, ForwardedQueriesUseSeveralSourcePorts) {
  base::UniqueFd c = Udp();
  std::set<uint16_t> ports;
  for (uint16_t id = 1; id <= 24; ++id) {
    SendQuery(c.get(), port_, "example.com", id);
    sockaddr_in from{};
    auto fwd = Recv(upstream_.get(), 5000, &from);
    ASSERT_TRUE(fwd.has_value());
    ports.insert(ntohs(from.sin_port));
    SendTo(upstream_.get(), from, *BuildMessage(MakeResponse(*ParseMessage(*fwd), kNoError)));
    auto r = Recv(c.get(), 5000);
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(ParseMessage(*r)->header.id, id);
  }
  // 24 random picks among 4 sockets all landing on one: probability 4^-23.
  EXPECT_GE(ports.size(), 2u);
  EXPECT_LE(ports.size(), 4u);
}

// An upstream reply with the right id from the right address but for another question is
// ignored; the real answer that follows is relayed.
TEST_F(ResolverTest, UpstreamReplyForAnotherQuestionIsIgnored) {
  base::UniqueFd c = Udp();
  SendQuery(c.get(), port_, "example.com", 0x6161);
  sockaddr_in from{};
  auto fwd = Recv(upstream_.get(), 5000, &from);
  ASSERT_TRUE(fwd.has_value());
  auto fq = ParseMessage(*fwd);
  ASSERT_TRUE(fq.ok());
  Message spoof = MakeResponse(*fq, kNoError);
  spoof.questions[0].name = "evil.example";
  spoof.answers.push_back({"evil.example", kTypeA, kClassIn, 30, Ip4{198, 51, 100, 66}});
  Message real = MakeResponse(*fq, kNoError);
  real.answers.push_back({"example.com", kTypeA, kClassIn, 30, Ip4{192, 0, 2, 1}});
  for (const Message& m : {spoof, real}) SendTo(upstream_.get(), from, *BuildMessage(m));
  auto r = Recv(c.get(), 5000);
  ASSERT_TRUE(r.has_value());
  auto m = ParseMessage(*r);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->header.id, 0x6161);
  ASSERT_EQ(m->answers.size(), 1u);
  EXPECT_EQ(std::get<Ip4>(m->answers[0].data), (Ip4{192, 0, 2, 1}));
  EXPECT_FALSE(Recv(c.get(), 100).has_value());  // exactly one reply
}

// A forwarded answer that comes back truncated over UDP is fetched again over TCP for a TCP
// client (RFC 7766); a UDP client gets the truncated answer and retries over TCP itself.
TEST_F(ResolverTest, TruncatedUpstreamAnswerIsRetriedOverTcpForTcpClients) {
  base::UniqueFd listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  int one = 1;
  ::setsockopt(listener.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in a = Loopback(upstream_port_);
  ASSERT_EQ(::bind(listener.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  ASSERT_EQ(::listen(listener.get(), 4), 0);

  base::UniqueFd c(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in to = Loopback(port_);
  ASSERT_EQ(::connect(c.get(), reinterpret_cast<sockaddr*>(&to), sizeof(to)), 0);
  std::string framed = Framed(Query("big.example", 0x5151));
  ASSERT_EQ(::write(c.get(), framed.data(), framed.size()), static_cast<ssize_t>(framed.size()));

  // 1. The UDP attempt: answer with TC set and no records.
  sockaddr_in from{};
  auto fwd = Recv(upstream_.get(), 5000, &from);
  ASSERT_TRUE(fwd.has_value());
  auto fq = ParseMessage(*fwd);
  ASSERT_TRUE(fq.ok());
  Message tc = MakeResponse(*fq, kNoError);
  tc.header.tc = true;
  SendTo(upstream_.get(), from, *BuildMessage(tc));
  // 2. The TCP retry: answer in full.
  pollfd lp{listener.get(), POLLIN, 0};
  ASSERT_EQ(::poll(&lp, 1, 5000), 1);
  base::UniqueFd up(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
  std::string up_in;
  auto tq = ReadFramed(up.get(), &up_in);
  ASSERT_TRUE(tq.has_value());
  EXPECT_EQ(tq->questions[0].name, "big.example");
  Message full = MakeResponse(*tq, kNoError);
  for (int i = 0; i < 50; ++i) {
    full.answers.push_back(
        {"big.example", kTypeA, kClassIn, 30, Ip4{192, 0, 2, static_cast<uint8_t>(i)}});
  }
  std::string fframed = Framed(*BuildMessage(full));
  ASSERT_EQ(::write(up.get(), fframed.data(), fframed.size()),
            static_cast<ssize_t>(fframed.size()));
  // 3. The client gets the full answer with its own id.
  std::string in;
  auto m = ReadFramed(c.get(), &in);
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->header.id, 0x5151);
  EXPECT_FALSE(m->header.tc);
  EXPECT_EQ(m->answers.size(), 50u);
}

TEST_F(ResolverTest, SilentUpstreamGivesServfail) {
  auto r = AskUdp(port_, Query("example.com"));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->header.rcode, kServFail);
}

TEST_F(ResolverTest, ConcurrencyCapAnswersServfailImmediately) {
  base::UniqueFd c = Udp();
  for (uint16_t id = 1; id <= 3; ++id) SendQuery(c.get(), port_, "example.com", id);
  // Two are in flight (cap 2); the third is refused at once, before any upstream timeout.
  auto first = Recv(c.get(), 250);
  ASSERT_TRUE(first.has_value());
  auto m = ParseMessage(*first);
  EXPECT_EQ(m->header.id, 3);
  EXPECT_EQ(m->header.rcode, kServFail);
}

// One endpoint at its own cap gets SERVFAIL; another endpoint of the same resolver still
// forwards (a noisy container cannot starve the node's other containers).
TEST_F(ResolverTest, PerEndpointForwardCap) {
  ResolverOptions o;
  o.upstream_timeout = std::chrono::milliseconds(2000);
  o.max_concurrent_forwards = 8;
  o.max_concurrent_forwards_per_endpoint = 1;
  auto r = Resolver::Start(&table_, o);
  ASSERT_TRUE(r.ok()) << r.status();
  uint16_t ports[2];
  for (int i = 0; i < 2; ++i) {
    EndpointSpec spec;
    spec.id = i == 0 ? "a" : "b";
    spec.listen_ip = "127.0.0.1";
    spec.networks = {"net"};
    spec.upstreams = {"127.0.0.1:" + std::to_string(upstream_port_)};
    auto b = (*r)->AddEndpoint(spec);
    ASSERT_TRUE(b.ok()) << b.status();
    ports[i] = b->port;
  }
  base::UniqueFd c = Udp();
  auto ask = [&](uint16_t port, const std::string& name, uint16_t id) {
    SendQuery(c.get(), port, name, id);
  };
  ask(ports[0], "one.example", 1);
  ask(ports[0], "two.example", 2);
  auto refused = Recv(c.get(), 1000);  // well before the 2 s upstream timeout
  ASSERT_TRUE(refused.has_value());
  EXPECT_EQ(ParseMessage(*refused)->header.id, 2);
  EXPECT_EQ(ParseMessage(*refused)->header.rcode, kServFail);
  ask(ports[1], "three.example", 3);
  std::vector<std::string> seen;
  for (int i = 0; i < 2; ++i) {
    auto fwd = Recv(upstream_.get(), 5000);
    ASSERT_TRUE(fwd.has_value());
    seen.push_back(ParseMessage(*fwd)->questions[0].name);
  }
  std::sort(seen.begin(), seen.end());
  EXPECT_EQ(seen, (std::vector<std::string>{"one.example", "three.example"}));
}

TEST_F(ResolverTest, EndpointLifecycle) {
  EndpointSpec dup;
  dup.id = "c1";
  dup.listen_ip = "127.0.0.1";
  EXPECT_EQ(resolver_->AddEndpoint(dup).status().code(), absl::StatusCode::kAlreadyExists);
  EndpointSpec bad;
  bad.id = "c2";
  bad.listen_ip = "127.0.0.1";
  bad.upstreams = {"not-an-ip"};
  EXPECT_EQ(resolver_->AddEndpoint(bad).status().code(), absl::StatusCode::kInvalidArgument);
  bad.upstreams = {"10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"};
  absl::Status four = resolver_->AddEndpoint(bad).status();
  EXPECT_EQ(four.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(four.message().find("upstreams: 4 given, at most 3"), absl::string_view::npos) << four;
  ASSERT_TRUE(resolver_->RemoveEndpoint("c1").ok());
  EXPECT_EQ(resolver_->RemoveEndpoint("c1").code(), absl::StatusCode::kNotFound);
  // The port is closed: binding it again works.
  base::UniqueFd again = Udp(port_, true);
}

TEST(UpstreamTest, Parses) {
  EXPECT_TRUE(ParseUpstream("10.1.2.3")->len > 0);
  EXPECT_FALSE(ParseUpstream("10.1.2.3")->loopback);
  EXPECT_TRUE(ParseUpstream("127.0.0.53")->loopback);
  EXPECT_TRUE(ParseUpstream("[::1]:5353")->loopback);
  EXPECT_TRUE(ParseUpstream("fd00::1").ok());
  EXPECT_FALSE(ParseUpstream("10.1.2.3:0").ok());
  EXPECT_FALSE(ParseUpstream("10.1.2.3:99999").ok());
  EXPECT_FALSE(ParseUpstream("[::1").ok());
}

}  // namespace
}  // namespace shoal::dns
