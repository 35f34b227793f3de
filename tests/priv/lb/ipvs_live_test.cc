// IPVS programmed for real in a throwaway namespace. The development kernel has no IPVS, so
// this skips there with the reason; the VM lab (a Debian kernel with ip_vs) runs it as a plain
// gtest binary: ./ipvs_live_test
#include <arpa/inet.h>
#include <fcntl.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "kernel/ipvs/ipvs.h"
#include "tests/priv/dns/sh.h"
#include "tests/testing/priv.h"

// Prints the status on failure so a VM-lab log names the kernel's reason.
#define ASSERT_OK_LIVE(expr)                       \
  do {                                             \
    absl::Status st_ = (expr);                     \
    ASSERT_TRUE(st_.ok()) << #expr << ": " << st_; \
  } while (0)

namespace shoal::kernel::ipvs {
namespace {

using dns::testing::Sh;

class IpvsLiveTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SHOAL_REQUIRE_ROOT();
    ns_ = absl::StrCat("snd-ipvs", getpid());
    ASSERT_EQ(Sh("ip netns add " + ns_).code, 0);
    created_ = true;
    // IPVS refuses a destination whose address type is not unicast or local, and in a netns
    // without any address the local routing table does not exist yet, so every address looks
    // like broadcast (inet_addr_type) and AddDest fails with EINVAL. Bringing lo up creates it.
    ASSERT_EQ(Sh("ip -n " + ns_ + " link set lo up").code, 0);
    fd_ = ::open(("/run/netns/" + ns_).c_str(), O_RDONLY | O_CLOEXEC);
    ASSERT_GE(fd_, 0);
    auto ipvs = OpenIpvs(fd_);
    if (absl::IsUnavailable(ipvs.status())) {
      GTEST_SKIP() << ipvs.status().message() << " — run this binary in the VM lab";
    }
    ASSERT_TRUE(ipvs.ok()) << ipvs.status();
    ipvs_ = *std::move(ipvs);
  }
  void TearDown() override {
    ipvs_.reset();
    if (fd_ >= 0) ::close(fd_);
    if (created_) Sh("ip netns del " + ns_);
  }

  std::string ns_;
  bool created_ = false;
  int fd_ = -1;
  std::unique_ptr<Ipvs> ipvs_;
};

DestSpec Dest(const char* ip, uint16_t port, uint32_t weight) {
  DestSpec d;
  d.addr.resize(4);
  inet_pton(AF_INET, ip, d.addr.data());
  d.port = port;
  d.weight = weight;
  return d;
}

TEST_F(IpvsLiveTest, FwmarkServiceDestinationsDrainAndDelete) {
  ServiceSpec s;
  s.key.fwmark = 256;
  s.scheduler = "rr";
  ASSERT_OK_LIVE(ipvs_->AddService(s));
  EXPECT_EQ(ipvs_->AddService(s).code(), absl::StatusCode::kAlreadyExists);
  ASSERT_OK_LIVE(ipvs_->AddDest(s.key, Dest("10.0.1.5", 80, 1)));
  ASSERT_OK_LIVE(ipvs_->AddDest(s.key, Dest("10.0.1.6", 80, 1)));
  auto list = ipvs_->List();
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].spec.key.fwmark, 256u);
  EXPECT_EQ((*list)[0].spec.scheduler, "rr");
  EXPECT_EQ((*list)[0].dests.size(), 2u);
  ASSERT_OK_LIVE(ipvs_->UpdateDest(s.key, Dest("10.0.1.6", 80, 0)));  // drain
  list = ipvs_->List();
  for (const DestSpec& d : (*list)[0].dests) {
    EXPECT_EQ(d.weight, d.addr == Dest("10.0.1.6", 80, 0).addr ? 0u : 1u);
  }
  // ipvsadm (when installed) sees the same state.
  if (Sh("command -v ipvsadm").code == 0) {
    auto out = Sh(absl::StrCat("ip netns exec ", ns_, " ipvsadm -Ln"));
    EXPECT_NE(out.out.find("FWM  256 rr"), std::string::npos) << out.out;
  }
  ASSERT_OK_LIVE(ipvs_->DeleteDest(s.key, Dest("10.0.1.6", 80, 0)));
  EXPECT_EQ(ipvs_->DeleteDest(s.key, Dest("10.0.1.6", 80, 0)).code(), absl::StatusCode::kNotFound);
  ASSERT_OK_LIVE(ipvs_->DeleteService(s.key));
  EXPECT_TRUE(ipvs_->List()->empty());
  ASSERT_OK_LIVE(ipvs_->Flush());
}

}  // namespace
}  // namespace shoal::kernel::ipvs
