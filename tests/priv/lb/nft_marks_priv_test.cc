// The nft pieces the LB adds for IPVS published ports (meta mark set ... map) and for sandbox
// NAT (ct status dnat ... masquerade), on the real kernel in a throwaway namespace: the tables
// load, read back equal to what was planned (a second sync changes nothing), nft(8) prints the
// phrases, and local traffic to a published port really carries the service's fwmark.
#include <arpa/inet.h>
#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <thread>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "kernel/nft/netlink_nft.h"
#include "kernel/nft/plan.h"
#include "lb/ipvs_backend.h"
#include "lb/nft_backend.h"
#include "tests/priv/dns/sh.h"
#include "tests/testing/priv.h"

namespace shoal::lb {
namespace {

namespace nft = kernel::nft;
using dns::testing::Sh;

class NftMarksPrivTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SHOAL_REQUIRE_ROOT();
    ns_ = absl::StrCat("shlb-mk", getpid());
    ASSERT_EQ(Sh("ip netns add " + ns_).code, 0);
    created_ = true;
    ASSERT_EQ(Sh("ip -n " + ns_ + " link set lo up").code, 0);
    fd_ = ::open(("/run/netns/" + ns_).c_str(), O_RDONLY | O_CLOEXEC);
    ASSERT_GE(fd_, 0);
    auto n = nft::OpenNft(fd_);
    ASSERT_TRUE(n.ok()) << n.status();
    nft_ = *std::move(n);
  }
  void TearDown() override {
    nft_.reset();
    if (fd_ >= 0) ::close(fd_);
    if (created_) Sh("ip netns del " + ns_);
  }
  std::string Nft(const std::string& args) {
    return Sh(absl::StrCat("ip netns exec ", ns_, " nft ", args)).out;
  }

  std::string ns_;
  bool created_ = false;
  int fd_ = -1;
  std::unique_ptr<nft::Nft> nft_;
};

Service Published(const std::string& name, uint16_t port) {
  Service s;
  s.name = name;
  s.frontend = Frontend::kPublished;
  s.port = port;
  s.backends = {{"10.0.1.5", 80, 1}};
  return s;
}

TEST_F(NftMarksPrivTest, MarksTableLoadsReadsBackAndMarksLocalTraffic) {
  std::vector<Service> services = {Published("a", 30080), Published("b", 30081)};
  nft::Table t = IpvsBackend::MarksTable(services, {{"a", 256}, {"b", 257}}, {});
  // A counter of packets carrying mark 256, after the marking (input, filter priority 0).
  t.chains.push_back({"count", nft::BaseChain{nft::ChainType::kFilter, nft::Hook::kInput,
                                              nft::kPriorityFilter, false}});
  t.rules.push_back(nft::RuleBuilder(nft::Family::kIp, "count").Mark(256).Counter().Build());
  auto ops = nft::SyncTable(*nft_, t);
  ASSERT_TRUE(ops.ok()) << ops.status();
  EXPECT_GT(*ops, 0u);
  auto again = nft::SyncTable(*nft_, t);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(*again, 0u) << "the kernel's copy decodes differently from the plan";
  std::string listed = Nft("list chain ip shoal-ipvs prerouting");
  EXPECT_NE(listed.find("fib daddr type local meta mark set meta l4proto . th dport map "
                        "@pub-marks"),
            std::string::npos)
      << listed;
  std::string map = Nft("list map ip shoal-ipvs pub-marks");
  // (nft 1.0.6 prints the mark byte-swapped, 0x00010000: the set carries no byte-order udata
  // for its data. The kernel's value is right: the counter below matches mark 256.)
  EXPECT_NE(map.find("tcp . 30080 : "), std::string::npos) << map;

  // Three SYNs to the published port (refused: nothing listens) and one to another port.
  for (uint16_t port : {30080, 30080, 30080, 30090}) {
    std::thread([&] {
      ASSERT_EQ(::setns(fd_, CLONE_NEWNET), 0);
      int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_port = htons(port);
      inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
      EXPECT_NE(::connect(s, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
      ::close(s);
    }).join();
  }
  auto got = nft_->GetTable({nft::Family::kIp, "shoal-ipvs"});
  ASSERT_TRUE(got.ok()) << got.status();
  uint64_t marked = 0;
  for (const nft::Rule& r : got->rules) {
    if (r.chain != "count") continue;
    for (const nft::Expr& e : r.exprs) {
      if (auto* c = std::get_if<nft::CounterExpr>(&e)) marked = c->packets;
    }
  }
  EXPECT_EQ(marked, 3u) << "SYNs to 30080 must carry fwmark 256, the one to 30090 none";
  EXPECT_TRUE(nft::DeleteTableIfExists(*nft_, {nft::Family::kIp, "shoal-ipvs"}).ok());
}

TEST_F(NftMarksPrivTest, SandboxMasqueradeRuleLoadsAndReadsBack) {
  NftBackendOptions o;
  o.table = "shlb-t";
  o.masquerade_oif = "eth0";
  auto t = NftBackend::DesiredTable({}, o);
  ASSERT_TRUE(t.ok()) << t.status();
  auto ops = nft::SyncTable(*nft_, *t);
  ASSERT_TRUE(ops.ok()) << ops.status();
  auto again = nft::SyncTable(*nft_, *t);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(*again, 0u);
  std::string listed = Nft("list chain ip shlb-t postrouting");
  EXPECT_NE(listed.find("ct status dnat oifname \"eth0\" masquerade"), std::string::npos) << listed;
}

}  // namespace
}  // namespace shoal::lb
