// Priv tests for kernel/nft against the real kernel, each in throwaway network namespaces:
// round trip of every expression through the kernel, `nft -j list` agreement, the same error
// semantics as FakeNft, and real traffic through DNAT / LB maps / masquerade / DNS redirect.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>

#include "kernel/nft/netlink_nft.h"
#include "kernel/nft/plan.h"
#include "nlohmann/json.hpp"
#include "tests/priv/nft/netns_fixture.h"
#include "tests/testing/priv.h"
#include "tests/unit/nft/semantics.h"

namespace shoal::kernel::nft {
namespace {

using shoal::testing::Sh;
using shoal::testing::TestNetns;
using shoal::testing::Wire;

std::unique_ptr<Nft> Open(TestNetns& ns) {
  auto nft = OpenNft(ns.fd());
  EXPECT_TRUE(nft.ok()) << nft.status();
  return nft.ok() ? std::move(*nft) : nullptr;
}

sockaddr_in SockAddr(const char* ip, uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  inet_pton(AF_INET, ip, &a.sin_addr);
  return a;
}

std::string PeerOf(const sockaddr_in& a) {
  char buf[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &a.sin_addr, buf, sizeof(buf));
  return absl::StrCat(buf, ":", ntohs(a.sin_port));
}

// A TCP listener inside `ns`; Accept() returns the peer address the server saw ("" on timeout).
class Listener {
 public:
  Listener(TestNetns& ns, const char* ip, uint16_t port) : fd_(ns.Socket(AF_INET, SOCK_STREAM)) {
    int on = 1;
    setsockopt(fd_.get(), SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
    sockaddr_in a = SockAddr(ip, port);
    EXPECT_EQ(bind(fd_.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0) << strerror(errno);
    EXPECT_EQ(listen(fd_.get(), 16), 0);
  }
  std::string Accept(int timeout_ms = 5000) {
    pollfd p{fd_.get(), POLLIN, 0};
    if (poll(&p, 1, timeout_ms) != 1) return "";
    sockaddr_in peer{};
    socklen_t len = sizeof(peer);
    base::UniqueFd c(accept(fd_.get(), reinterpret_cast<sockaddr*>(&peer), &len));
    return c.get() >= 0 ? PeerOf(peer) : "";
  }

 private:
  base::UniqueFd fd_;
};

// Connects from `ns` to ip:port; true when the TCP handshake completes within the timeout.
bool Connect(TestNetns& ns, const char* ip, uint16_t port, int timeout_ms = 3000) {
  base::UniqueFd s = ns.Socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK);
  sockaddr_in a = SockAddr(ip, port);
  int rc = connect(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a));
  if (rc != 0 && errno != EINPROGRESS) return false;
  pollfd p{s.get(), POLLOUT, 0};
  if (poll(&p, 1, timeout_ms) != 1) return false;
  int err = 0;
  socklen_t len = sizeof(err);
  getsockopt(s.get(), SOL_SOCKET, SO_ERROR, &err, &len);
  return err == 0;
}

nlohmann::json NftJson(TestNetns& ns, const std::string& what) {
  std::string out = ns.Exec("nft -j list " + what);
  return nlohmann::json::parse(out, nullptr, false);
}

TEST(NftKernelTest, RoundTripMatchesDesiredAndNftListsIt) {
  SHOAL_REQUIRE_ROOT();
  TestNetns ns;
  auto nft = Open(ns);
  ASSERT_NE(nft, nullptr);
  Table desired = testing::SampleTable("sni-lb");
  NFT_ASSERT_OK(nft->Apply(PlanTable(desired, std::nullopt)));
  auto got = nft->GetTable({desired.family, desired.name});
  ASSERT_TRUE(got.ok()) << got.status();
  // Compare per part for readable failures (desired is in the observed order already).
  EXPECT_EQ(got->chains, desired.chains);
  ASSERT_EQ(got->sets.size(), desired.sets.size());
  for (size_t i = 0; i < desired.sets.size(); ++i) {
    EXPECT_EQ(got->sets[i], desired.sets[i]) << desired.sets[i].name;
  }
  ASSERT_EQ(got->rules.size(), desired.rules.size());
  for (size_t i = 0; i < desired.rules.size(); ++i) {
    EXPECT_TRUE(got->rules[i] == desired.rules[i]) << "\n got:  " << DebugString(got->rules[i]) << "\n want: " << DebugString(desired.rules[i]);
    EXPECT_NE(got->rules[i].handle, 0u);
  }
  EXPECT_TRUE(PlanTable(desired, *got).empty()) << "converged state plans no ops";

  // nft(8) reads the same objects back.
  nlohmann::json j = NftJson(ns, "table inet sni-lb");
  ASSERT_FALSE(j.is_discarded());
  int chains = 0, rules = 0;
  bool saw_concat = false, saw_vmap_numgen = false, saw_masq = false, saw_fib = false;
  for (const auto& obj : j["nftables"]) {
    if (obj.contains("chain")) ++chains;
    if (obj.contains("rule")) {
      ++rules;
      std::string s = obj["rule"]["expr"].dump();
      if (s.find("numgen") != std::string::npos && s.find("vmap") != std::string::npos) {
        saw_vmap_numgen = true;
      }
      if (s.find("masquerade") != std::string::npos) saw_masq = true;
      if (s.find("fib") != std::string::npos) saw_fib = true;
    }
    if (obj.contains("map") && obj["map"]["name"] == "service-ips") {
      EXPECT_EQ(obj["map"]["type"], nlohmann::json({"ipv4_addr", "inet_proto", "inet_service"}));
      EXPECT_EQ(obj["map"]["map"], "verdict");
      saw_concat = true;
    }
  }
  EXPECT_EQ(chains, static_cast<int>(desired.chains.size()));
  EXPECT_EQ(rules, static_cast<int>(desired.rules.size()));
  EXPECT_TRUE(saw_concat && saw_vmap_numgen && saw_masq && saw_fib) << j.dump();
  std::string text = ns.Exec("nft list table inet sni-lb");
  EXPECT_NE(text.find("ip daddr . meta l4proto . th dport vmap @service-ips"), std::string::npos)
      << text;
  EXPECT_NE(text.find("10.200.0.1 . tcp . 80 : goto svc-web"), std::string::npos) << text;
  EXPECT_NE(text.find("comment \"web.0\""), std::string::npos) << text;

  NFT_ASSERT_OK(nft->Apply(Batch().DeleteTable({desired.family, desired.name})));
  EXPECT_EQ(ns.Exec("nft list ruleset"), "");
}

TEST(NftKernelTest, SameSemanticsAsFake) {
  SHOAL_REQUIRE_ROOT();
  TestNetns ns;
  auto nft = Open(ns);
  ASSERT_NE(nft, nullptr);
  testing::CheckSemantics(*nft, "sni-sem");
  EXPECT_EQ(ns.Exec("nft list ruleset"), "");
}

TEST(NftKernelTest, RandomPlanTransitionsAreValidForTheKernel) {
  SHOAL_REQUIRE_ROOT();
  TestNetns ns;
  auto nft = Open(ns);
  ASSERT_NE(nft, nullptr);
  testing::CheckRandomTransitions(*nft, 150);
  EXPECT_EQ(ns.Exec("nft list ruleset"), "");
}

TEST(NftKernelTest, SocketStaysInItsNamespace) {
  SHOAL_REQUIRE_ROOT();
  TestNetns a, b;
  auto na = Open(a);
  ASSERT_NE(na, nullptr);
  TableRef t{Family::kIp, "sni-where"};
  ASSERT_TRUE(na->Apply(Batch().AddTable(t)).ok());
  EXPECT_NE(a.Exec("nft list tables").find("sni-where"), std::string::npos);
  EXPECT_EQ(b.Exec("nft list tables"), "");
  std::string host;
  Sh("nft list tables", &host);
  EXPECT_EQ(host.find("sni-where"), std::string::npos) << "leaked into the host namespace";
  auto tables = na->ListTables();
  ASSERT_TRUE(tables.ok());
  EXPECT_EQ(*tables, std::vector<TableRef>{t});
}

bool HasPrefix(const std::string& s, const std::string& p) { return s.rfind(p, 0) == 0; }

uint64_t CounterPackets(const Table& t, const std::string& chain) {
  uint64_t n = 0;
  for (const Rule& r : t.rules) {
    if (r.chain != chain) continue;
    for (const Expr& e : r.exprs) {
      if (auto* c = std::get_if<CounterExpr>(&e)) n += c->packets;
    }
  }
  return n;
}

// Client (ns c) -> VIP 10.200.0.1:80 routed to ns s, where the LB chain maps
// daddr . proto . dport -> svc chain -> numgen -> endpoint chain -> DNAT to the listener.
TEST(NftKernelTest, ServiceVipAndPublishedPortDnatReachListener) {
  SHOAL_REQUIRE_ROOT();
  TestNetns c, s;
  Wire(c, "sni-c", "10.99.0.1/24", s, "sni-s", "10.99.0.2/24");
  c.Exec("ip route add 10.200.0.1/32 via 10.99.0.2");
  auto nft = Open(s);
  ASSERT_NE(nft, nullptr);
  Listener l(s, "10.99.0.2", 9090);
  EXPECT_FALSE(Connect(c, "10.99.0.2", 8081)) << "nothing listens on 8081 before the rules";

  Table desired = testing::SampleTable("sni-lb");
  NFT_ASSERT_OK(nft->Apply(PlanTable(desired, std::nullopt)));
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(Connect(c, "10.200.0.1", 80)) << "VIP through the service map, try " << i;
    EXPECT_TRUE(HasPrefix(l.Accept(), "10.99.0.1:")) << "DNAT keeps the client address";
  }
  // Published port: fib daddr type local + (proto . dport) map.
  ASSERT_TRUE(Connect(c, "10.99.0.2", 8081));
  EXPECT_TRUE(HasPrefix(l.Accept(), "10.99.0.1:"));
  // Redirect: tcp dport 7070 -> local 9090.
  ASSERT_TRUE(Connect(c, "10.99.0.2", 7070));
  EXPECT_TRUE(HasPrefix(l.Accept(), "10.99.0.1:"));

  auto got = nft->GetTable({desired.family, desired.name});
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(CounterPackets(*got, "ep-web-0") + CounterPackets(*got, "ep-web-1"), 5u)
      << "one NAT decision (first packet) per connection: 4 VIP + 1 published";

  // Incremental change: a second service is a handful of ops, not a rewrite.
  Table next = desired;
  next.chains.push_back({"svc-api", std::nullopt});
  std::sort(next.chains.begin(), next.chains.end(),
            [](const Chain& a, const Chain& b) { return a.name < b.name; });
  for (Set& set : next.sets) {
    if (set.name == "service-ips") {
      set.elements.push_back({{Ipv4("10.200.0.2"), Proto(6), Port(443)}, Goto("svc-api"), {}});
    }
  }
  next.rules.push_back(RuleBuilder(next.family, "svc-api").Dnat(*ParseAddr("10.99.0.2"), 9090));
  Batch delta = PlanTable(next, *got);
  EXPECT_EQ(delta.size(), 3u) << "add chain, add element, add rule";
  c.Exec("ip route add 10.200.0.2/32 via 10.99.0.2");
  NFT_ASSERT_OK(nft->Apply(delta));
  ASSERT_TRUE(Connect(c, "10.200.0.2", 443));
  EXPECT_TRUE(HasPrefix(l.Accept(), "10.99.0.1:"));
  got = nft->GetTable({desired.family, desired.name});
  ASSERT_TRUE(got.ok());
  EXPECT_TRUE(PlanTable(next, *got).empty());
  // And back: removing the service removes exactly its objects.
  NFT_ASSERT_OK(nft->Apply(PlanTable(desired, *got)));
  EXPECT_FALSE(Connect(c, "10.200.0.2", 443, 500)) << "no service at the removed VIP";
  got = nft->GetTable({desired.family, desired.name});
  ASSERT_TRUE(got.ok());
  EXPECT_TRUE(PlanTable(desired, *got).empty());

  NFT_ASSERT_OK(DeleteTableIfExists(*nft, {desired.family, desired.name}));
  EXPECT_EQ(s.Exec("nft list ruleset"), "");
}

// The chain-free LB layout: one rule `dnat to ip daddr . meta l4proto . th dport . numgen random
// mod 2 map @backends`, services and backends being only map elements.
TEST(NftKernelTest, DnatMapWithSlotsSpreadsOverBackends) {
  SHOAL_REQUIRE_ROOT();
  TestNetns c, s;
  Wire(c, "sni-c", "10.99.0.1/24", s, "sni-s", "10.99.0.2/24");
  c.Exec("ip route add 10.200.0.1/32 via 10.99.0.2");
  auto nft = Open(s);
  ASSERT_NE(nft, nullptr);
  Table t;
  t.family = Family::kIp;
  t.name = "sni-map";
  t.chains = {{"prerouting", BaseChain{ChainType::kNat, Hook::kPrerouting, kPriorityDstNat}}};
  Set m{"backends",
        {FieldType::kIpv4Addr, FieldType::kInetProto, FieldType::kInetService, FieldType::kInteger},
        false, {FieldType::kIpv4Addr, FieldType::kInetService}, {}};
  m.elements.push_back({{Ipv4("10.200.0.1"), Proto(6), Port(80), U32(0)}, std::nullopt,
                        {Ipv4("10.99.0.2"), Port(9090)}});
  m.elements.push_back({{Ipv4("10.200.0.1"), Proto(6), Port(80), U32(1)}, std::nullopt,
                        {Ipv4("10.99.0.2"), Port(9091)}});
  t.sets = {m};
  RuleBuilder::Slot slot{RuleBuilder::Slot::kRandom, 2, {}, 0};
  t.rules = {RuleBuilder(t.family, "prerouting")
                 .DnatMap({Field::kDaddr4, Field::kL4Proto, Field::kDport}, slot, "backends")};
  NFT_ASSERT_OK(nft->Apply(PlanTable(t, std::nullopt)));
  auto got = nft->GetTable({t.family, t.name});
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->sets, t.sets);
  ASSERT_EQ(got->rules.size(), 1u);
  EXPECT_TRUE(got->rules[0] == t.rules[0]) << "\n got:  " << DebugString(got->rules[0])
                                           << "\n want: " << DebugString(t.rules[0]);
  Listener a(s, "10.99.0.2", 9090), b(s, "10.99.0.2", 9091);
  int on_a = 0, on_b = 0;
  for (int i = 0; i < 24; ++i) {
    ASSERT_TRUE(Connect(c, "10.200.0.1", 80)) << i;
    std::string pa = a.Accept(0), pb = pa.empty() ? b.Accept() : "";
    if (!pa.empty()) ++on_a;
    if (!pb.empty()) ++on_b;
  }
  EXPECT_EQ(on_a + on_b, 24);
  EXPECT_GT(on_a, 0) << "random slots reach both backends (p(fail) = 2^-23)";
  EXPECT_GT(on_b, 0);
  NFT_ASSERT_OK(DeleteTableIfExists(*nft, {t.family, t.name}));
}

// IPv6 through an inet table: (ip6 daddr . l4proto . dport) vmap -> chain -> dnat [v6]:port.
TEST(NftKernelTest, Ipv6VipDnatInInetTable) {
  SHOAL_REQUIRE_ROOT();
  TestNetns c, s;
  std::string out;
  ASSERT_EQ(Sh(absl::StrCat("ip link add sni-c netns ", c.name(), " type veth peer name sni-s netns ",
                            s.name()), &out), 0) << out;
  c.Exec("ip addr add fd00:99::1/64 dev sni-c nodad");
  s.Exec("ip addr add fd00:99::2/64 dev sni-s nodad");
  c.Exec("ip link set sni-c up");
  s.Exec("ip link set sni-s up");
  c.Exec("ip -6 route add fd00:200::1/128 via fd00:99::2");
  auto nft = Open(s);
  ASSERT_NE(nft, nullptr);
  Table t;
  t.family = Family::kInet;
  t.name = "sni-v6";
  t.chains = {{"prerouting", BaseChain{ChainType::kNat, Hook::kPrerouting, kPriorityDstNat}},
              {"svc", std::nullopt}};
  Set m{"svc6", {FieldType::kIpv6Addr, FieldType::kInetProto, FieldType::kInetService}, true, {}, {}};
  m.elements.push_back({{Ipv6("fd00:200::1"), Proto(6), Port(80)}, Goto("svc"), {}});
  t.sets = {m};
  t.rules = {RuleBuilder(t.family, "prerouting").Vmap({Field::kDaddr6, Field::kL4Proto, Field::kDport}, "svc6"),
             RuleBuilder(t.family, "svc").Counter().Dnat(*ParseAddr("fd00:99::2"), 9090)};
  auto n = SyncTable(*nft, t);
  ASSERT_TRUE(n.ok()) << n.status();
  auto got = nft->GetTable({t.family, t.name});
  ASSERT_TRUE(got.ok());
  EXPECT_TRUE(PlanTable(t, *got).empty()) << "IPv6 expressions round-trip";
  base::UniqueFd l = s.Socket(AF_INET6, SOCK_STREAM);
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  a.sin6_port = htons(9090);
  inet_pton(AF_INET6, "fd00:99::2", &a.sin6_addr);
  ASSERT_EQ(bind(l.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0) << strerror(errno);
  ASSERT_EQ(listen(l.get(), 4), 0);
  base::UniqueFd cs = c.Socket(AF_INET6, SOCK_STREAM);
  sockaddr_in6 vip{};
  vip.sin6_family = AF_INET6;
  vip.sin6_port = htons(80);
  inet_pton(AF_INET6, "fd00:200::1", &vip.sin6_addr);
  ASSERT_EQ(connect(cs.get(), reinterpret_cast<sockaddr*>(&vip), sizeof(vip)), 0) << strerror(errno);
  pollfd p{l.get(), POLLIN, 0};
  EXPECT_EQ(poll(&p, 1, 5000), 1) << "connection reached the IPv6 backend";
  NFT_ASSERT_OK(DeleteTableIfExists(*nft, {t.family, t.name}));
}

// c (10.98.0.1) -> router r -> outside o (10.97.0.1) that has no route back to 10.98.0.0/24:
// the connection works only because r masquerades, and o sees r's address.
TEST(NftKernelTest, MasqueradeRewritesSourceToEgressAddress) {
  SHOAL_REQUIRE_ROOT();
  TestNetns c, r, o;
  Wire(c, "sni-c", "10.98.0.1/24", r, "sni-ra", "10.98.0.2/24");
  Wire(r, "sni-rb", "10.97.0.2/24", o, "sni-o", "10.97.0.1/24");
  c.Exec("ip route add default via 10.98.0.2");
  r.Exec("sysctl -qw net.ipv4.ip_forward=1");
  auto nft = Open(r);
  ASSERT_NE(nft, nullptr);
  TableRef t{Family::kIp, "sni-gw"};
  Batch b;
  b.AddTable(t);
  b.AddChain(t, {"postrouting", BaseChain{ChainType::kNat, Hook::kPostrouting, kPrioritySrcNat}});
  b.AddRule(t, RuleBuilder(t.family, "postrouting")
                   .Saddr(*ParsePrefix("10.98.0.0/24"))
                   .OifName("sni-ra", false)
                   .Counter()
                   .Masquerade());
  NFT_ASSERT_OK(nft->Apply(b));
  Listener l(o, "10.97.0.1", 9000);
  ASSERT_TRUE(Connect(c, "10.97.0.1", 9000));
  EXPECT_TRUE(HasPrefix(l.Accept(), "10.97.0.2:")) << "source masqueraded to r's egress address";
  NFT_ASSERT_OK(DeleteTableIfExists(*nft, t));
  EXPECT_EQ(r.Exec("nft list ruleset"), "");
}

// DNS-style DNAT in the output hook: a client in the namespace queries 127.0.0.11:53 and the
// server bound to 127.0.0.11:5353 answers; the reply comes back from 127.0.0.11:53.
TEST(NftKernelTest, LocalDnsDnatKeepsPort53ForTheClient) {
  SHOAL_REQUIRE_ROOT();
  TestNetns ns;
  auto nft = Open(ns);
  ASSERT_NE(nft, nullptr);
  TableRef t{Family::kInet, "sni-dns"};
  Batch b;
  b.AddTable(t);
  b.AddChain(t, {"output", BaseChain{ChainType::kNat, Hook::kOutput, kPriorityDstNat}});
  b.AddRule(t, RuleBuilder(t.family, "output")
                   .Daddr(*ParsePrefix("127.0.0.11"))
                   .L4Proto(IPPROTO_UDP)
                   .Dport(53)
                   .Dnat(*ParseAddr("127.0.0.11"), 5353));
  NFT_ASSERT_OK(nft->Apply(b));
  base::UniqueFd server = ns.Socket(AF_INET, SOCK_DGRAM);
  sockaddr_in sa = SockAddr("127.0.0.11", 5353);
  ASSERT_EQ(bind(server.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)), 0);
  base::UniqueFd client = ns.Socket(AF_INET, SOCK_DGRAM);
  sockaddr_in dst = SockAddr("127.0.0.11", 53);
  ASSERT_EQ(sendto(client.get(), "q", 1, 0, reinterpret_cast<sockaddr*>(&dst), sizeof(dst)), 1);
  pollfd p{server.get(), POLLIN, 0};
  ASSERT_EQ(poll(&p, 1, 5000), 1);
  char buf[16];
  sockaddr_in from{};
  socklen_t len = sizeof(from);
  ASSERT_EQ(recvfrom(server.get(), buf, sizeof(buf), 0, reinterpret_cast<sockaddr*>(&from), &len), 1);
  ASSERT_EQ(sendto(server.get(), "a", 1, 0, reinterpret_cast<sockaddr*>(&from), len), 1);
  pollfd pc{client.get(), POLLIN, 0};
  ASSERT_EQ(poll(&pc, 1, 5000), 1);
  len = sizeof(from);
  ASSERT_EQ(recvfrom(client.get(), buf, sizeof(buf), 0, reinterpret_cast<sockaddr*>(&from), &len), 1);
  EXPECT_EQ(PeerOf(from), "127.0.0.11:53") << "reply un-NATed to the address the client asked";
  NFT_ASSERT_OK(DeleteTableIfExists(*nft, t));
}

}  // namespace
}  // namespace shoal::kernel::nft
