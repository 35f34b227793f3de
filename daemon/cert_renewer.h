// CertRenewer: keeps this node's certificate valid and its role current (DESIGN.md §6 Security;
// reference/swarmkit.md "node certificates").
//
//   renewal     at a uniformly random 50–80 % of the certificate's lifetime (ca::RenewalTime,
//               measured from its issue time, not from the backdated notBefore), the node asks
//               a manager for a new certificate (ca::Renew: new key, same node id, the role the
//               node has now). A failed attempt is retried after 1 s, 2 s, 4 s ... capped at
//               `retry_max` and at a quarter of the time left, so several attempts happen before
//               the certificate expires; every failure is logged, and once the certificate has
//               expired each attempt logs an error saying so (the node cannot reach managers
//               with it any more; a new join is the way out).
//   role        every `role_check_period` the node reads its Node.role (NodeCertificateStatus)
//               and renews at once when it differs from the role the daemon runs (the role in
//               its certificate's OU, unless switching roles failed half-way): the
//               leader's role manager sets Node.role when a promotion is accepted or a demotion
//               is done (raft member removed), and the CA issues the certificate for that role.
//   apply       each new certificate goes to `apply` (the daemon persists it atomically and
//               swaps it into the agent and manager, starting or stopping the manager when the
//               role changed); an apply failure is retried like a failed renewal.
//
// Managers are tried in the order `managers()` gives; the first that answers is used.
//
// RenewalSchedule is the timing alone (pure; tests drive it with a FakeClock). CertRenewer runs
// it on a thread, checking `clock->Now()` at least every `poll` of real time.
//
// Thread safety: RenewalSchedule is not thread-safe. CertRenewer: Start/Stop from one thread;
// the callbacks run on the renewer's thread.
#pragma once

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "api/objects.pb.h"
#include "base/clock.h"
#include "base/random.h"
#include "manager/ca/join.h"

namespace shoal::daemon {

struct RenewalOptions {
  absl::Duration retry_initial = absl::Seconds(1);
  absl::Duration retry_max = absl::Minutes(5);
  absl::Duration role_check_period = absl::Seconds(5);
};

class RenewalSchedule {
 public:
  RenewalSchedule(RenewalOptions options, base::Random& random) : opts_(options), random_(random) {}

  // A certificate is in use (at start or after a renewal): the next renewal is at a random
  // 50–80 % of its lifetime; failures are forgotten.
  void Issued(const manager::ca::NodeIdentity& identity);
  // A renewal attempt at `now` failed: the next one is after the backoff.
  void Failed(absl::Time now);
  // Renew as soon as possible (role change).
  void RenewNow(absl::Time now) { next_ = now; }

  absl::Time next_renewal() const { return next_; }
  bool Due(absl::Time now) const { return now >= next_; }
  bool Expired(absl::Time now) const { return now >= not_after_; }
  absl::Time not_after() const { return not_after_; }
  int failures() const { return failures_; }

 private:
  RenewalOptions opts_;
  base::Random& random_;
  absl::Time next_ = absl::InfiniteFuture();
  absl::Time not_after_ = absl::InfiniteFuture();
  int failures_ = 0;
};

// Reads the node's current role (Node.role) from the manager at `address`.
absl::StatusOr<api::v1::NodeRole> QueryNodeRole(const std::string& address,
                                                const manager::ca::TlsMaterial& tls,
                                                const std::string& node_id,
                                                absl::Duration timeout = absl::Seconds(5));

struct CertRenewerOptions {
  base::Clock* clock = nullptr;    // required
  base::Random* random = nullptr;  // required
  RenewalOptions schedule;
  absl::Duration poll = absl::Milliseconds(500);                      // real time between checks
  std::function<std::vector<std::string>()> managers;                 // required
  std::function<absl::Status(const manager::ca::JoinResult&)> apply;  // required
  std::function<manager::ca::Role()> running_role;  // required: what the daemon runs now
  std::function<void()> each_poll;                  // optional: run every `poll`
};

class CertRenewer {
 public:
  CertRenewer(CertRenewerOptions options, manager::ca::JoinResult current);
  ~CertRenewer();  // Stop()
  CertRenewer(const CertRenewer&) = delete;
  CertRenewer& operator=(const CertRenewer&) = delete;

  void Start();
  void Stop();  // joins the thread; must not be called from `apply`

 private:
  void Loop();
  bool Wait();  // false when stopping
  // One renewal against the managers in order; applies the result.
  absl::Status RenewOnce(const std::string& why);

  CertRenewerOptions opts_;
  manager::ca::JoinResult current_;  // the loop thread only
  RenewalSchedule schedule_;         // the loop thread only
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace shoal::daemon
