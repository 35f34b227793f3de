// Timing of the node certificate renewal loop (daemon/cert_renewer.h), on a FakeClock, and the
// atomic replacement of the certificate files.
#include "daemon/cert_renewer.h"

#include <stdlib.h>

#include <filesystem>

#include "base/clock.h"
#include "base/file.h"
#include "base/random.h"
#include "daemon/node_state.h"
#include "gtest/gtest.h"
#include "manager/ca/root_ca.h"

namespace shoal::daemon {
namespace {

namespace ca = ::shoal::manager::ca;

// A certificate issued at `issued` for `validity`, backdated as the CA does.
ca::NodeIdentity Issued(absl::Time issued, absl::Duration validity) {
  ca::NodeIdentity id;
  id.node_id = "node1";
  id.not_before = issued - ca::kCertBackdate;
  id.not_after = issued + validity;
  return id;
}

TEST(RenewalSchedule, RenewsAtFiftyToEightyPercentOfTheIssuedLifetime) {
  base::FakeClock clock;
  const absl::Duration life = absl::Hours(24 * 90);
  absl::Duration lo = absl::InfiniteDuration(), hi = absl::ZeroDuration();
  for (uint64_t seed = 0; seed < 200; ++seed) {
    base::FakeRandom random(seed);
    RenewalSchedule s({}, random);
    s.Issued(Issued(clock.Now(), life));
    absl::Duration at = s.next_renewal() - clock.Now();
    // The backdate is not part of the lifetime the fraction applies to.
    ASSERT_GE(at, life * 0.5) << seed;
    ASSERT_LE(at, life * 0.8) << seed;
    lo = std::min(lo, at);
    hi = std::max(hi, at);
    EXPECT_FALSE(s.Due(clock.Now()));
    EXPECT_TRUE(s.Due(clock.Now() + at));
  }
  // Spread, so a fleet issued together does not renew together.
  EXPECT_LT(lo, life * 0.55);
  EXPECT_GT(hi, life * 0.75);
}

TEST(RenewalSchedule, ShortCertificateRenewsWithinItsLifetime) {
  base::FakeClock clock;
  base::FakeRandom random(7);
  RenewalSchedule s({}, random);
  s.Issued(Issued(clock.Now(), absl::Seconds(30)));
  EXPECT_GE(s.next_renewal(), clock.Now() + absl::Seconds(15));
  EXPECT_LE(s.next_renewal(), clock.Now() + absl::Seconds(24));
}

TEST(RenewalSchedule, FailuresBackOffExponentiallyUpToTheCap) {
  base::FakeClock clock;
  base::FakeRandom random(1);
  RenewalOptions o;
  o.retry_initial = absl::Seconds(1);
  o.retry_max = absl::Seconds(60);
  RenewalSchedule s(o, random);
  s.Issued(Issued(clock.Now(), absl::Hours(24 * 90)));
  clock.SetTime(s.next_renewal());
  std::vector<absl::Duration> waits;
  for (int i = 0; i < 9; ++i) {
    s.Failed(clock.Now());
    waits.push_back(s.next_renewal() - clock.Now());
    clock.SetTime(s.next_renewal());
  }
  std::vector<absl::Duration> want = {absl::Seconds(1),  absl::Seconds(2),  absl::Seconds(4),
                                      absl::Seconds(8),  absl::Seconds(16), absl::Seconds(32),
                                      absl::Seconds(60), absl::Seconds(60), absl::Seconds(60)};
  EXPECT_EQ(waits, want);
  EXPECT_EQ(s.failures(), 9);
  // Success: back to the lifetime-based plan, failures forgotten.
  s.Issued(Issued(clock.Now(), absl::Hours(24 * 90)));
  EXPECT_EQ(s.failures(), 0);
  EXPECT_GE(s.next_renewal() - clock.Now(), absl::Hours(24 * 45));
}

TEST(RenewalSchedule, RetriesTightenAsExpiryApproaches) {
  base::FakeClock clock;
  base::FakeRandom random(3);
  RenewalOptions o;
  o.retry_initial = absl::Seconds(1);
  o.retry_max = absl::Minutes(5);
  RenewalSchedule s(o, random);
  s.Issued(Issued(clock.Now(), absl::Seconds(100)));
  // The managers are unreachable from the planned renewal on: count the attempts made before
  // the certificate expires.
  clock.SetTime(s.next_renewal());
  int attempts = 0;
  while (!s.Expired(clock.Now())) {
    ++attempts;
    s.Failed(clock.Now());
    // Never scheduled past the expiry while time is left, except by the 1 s floor.
    EXPECT_LE(s.next_renewal(), std::max(s.not_after(), clock.Now() + o.retry_initial));
    clock.SetTime(s.next_renewal());
  }
  EXPECT_GE(attempts, 5) << "several attempts before the certificate expires";
  // After expiry: retries continue, at the capped backoff.
  s.Failed(clock.Now());
  EXPECT_TRUE(s.Expired(clock.Now()));
  EXPECT_GT(s.next_renewal(), clock.Now());
  EXPECT_LE(s.next_renewal() - clock.Now(), o.retry_max);
}

TEST(RenewalSchedule, RoleChangeRenewsNow) {
  base::FakeClock clock;
  base::FakeRandom random(5);
  RenewalSchedule s({}, random);
  s.Issued(Issued(clock.Now(), absl::Hours(24 * 90)));
  EXPECT_FALSE(s.Due(clock.Now()));
  s.RenewNow(clock.Now());
  EXPECT_TRUE(s.Due(clock.Now()));
}

TEST(ReplaceCertificates, SwapsTheWholeSetAndLeavesNoStaging) {
  char tmpl[] = "/tmp/hA-certs-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  std::string root = tmpl;
  ca::TlsMaterial a{"rootA", "certA", "keyA"};
  ca::TlsMaterial b{"rootA", "certB", "keyB"};
  ASSERT_TRUE(SaveCertificates(root, a).ok());
  // Leftovers of an interrupted replacement are discarded.
  std::filesystem::create_directories(SwarmDir(root) + "/certificates.new");
  ASSERT_TRUE(base::WriteFileAtomic(SwarmDir(root) + "/certificates.new/node.crt", "junk").ok());
  ASSERT_TRUE(ReplaceCertificates(root, b).ok());
  auto got = LoadCertificates(root);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->cert_pem, "certB");
  EXPECT_EQ(got->key_pem, "keyB");
  EXPECT_FALSE(std::filesystem::exists(SwarmDir(root) + "/certificates.new"));
  auto perms = std::filesystem::status(SwarmDir(root) + "/certificates/node.key").permissions();
  EXPECT_EQ(perms & std::filesystem::perms::group_read, std::filesystem::perms::none);
  std::filesystem::remove_all(root);
}

}  // namespace
}  // namespace shoal::daemon
