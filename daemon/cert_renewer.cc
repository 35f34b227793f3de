#include "daemon/cert_renewer.h"

#include <algorithm>
#include <chrono>

#include "absl/strings/str_cat.h"
#include "api/ca.grpc.pb.h"
#include "base/log.h"
#include "manager/ca/root_ca.h"
#include "manager/ca/tls.h"

namespace shoal::daemon {

namespace api = ::shoal::api::v1;
namespace ca = ::shoal::manager::ca;

void RenewalSchedule::Issued(const ca::NodeIdentity& identity) {
  not_after_ = identity.not_after;
  next_ = ca::RenewalTime(ca::IssuedAt(identity), identity.not_after, random_);
  failures_ = 0;
}

void RenewalSchedule::Failed(absl::Time now) {
  ++failures_;
  absl::Duration delay = opts_.retry_initial;
  for (int i = 1; i < failures_ && delay < opts_.retry_max; ++i) delay *= 2;
  delay = std::min(delay, opts_.retry_max);
  // Before expiry: at most a quarter of the time left, so several attempts fit before it.
  // After expiry nothing is urgent any more (the managers refuse the certificate anyway).
  const absl::Duration left = not_after_ - now;
  if (left > absl::ZeroDuration()) delay = std::min(delay, std::max(opts_.retry_initial, left / 4));
  next_ = now + delay;
}

absl::StatusOr<api::NodeRole> QueryNodeRole(const std::string& address, const ca::TlsMaterial& tls,
                                            const std::string& node_id, absl::Duration timeout) {
  auto stub = api::NodeCA::NewStub(ca::DialManager(address, ca::ChannelCredentials(tls)));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + absl::ToChronoMilliseconds(timeout));
  api::NodeCertificateStatusRequest req;
  req.set_node_id(node_id);
  api::NodeCertificateStatusResponse resp;
  grpc::Status s = stub->NodeCertificateStatus(&ctx, req, &resp);
  if (!s.ok()) {
    return absl::Status(static_cast<absl::StatusCode>(s.error_code()),
                        absl::StrCat("reading the role of node ", node_id, " from ", address, ": ",
                                     s.error_message()));
  }
  return resp.node_role();
}

CertRenewer::CertRenewer(CertRenewerOptions options, ca::JoinResult current)
    : opts_(std::move(options)),
      current_(std::move(current)),
      schedule_(opts_.schedule, *opts_.random) {
  schedule_.Issued(current_.identity);
}

CertRenewer::~CertRenewer() { Stop(); }

void CertRenewer::Start() {
  base::Logger("renewer")->info("node certificate valid until {}; renewal planned at {}",
                                absl::FormatTime(current_.identity.not_after),
                                absl::FormatTime(schedule_.next_renewal()));
  thread_ = std::thread([this] { Loop(); });
}

void CertRenewer::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool CertRenewer::Wait() {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, absl::ToChronoMilliseconds(opts_.poll), [&] { return stop_; });
  return !stop_;
}

absl::Status CertRenewer::RenewOnce(const std::string& why) {
  auto log = base::Logger("renewer");
  absl::Status last = absl::UnavailableError("no manager address known");
  for (const std::string& addr : opts_.managers()) {
    auto renewed = ca::Renew(addr, current_.tls, *opts_.clock);
    if (!renewed.ok()) {
      last = renewed.status();
      continue;
    }
    if (absl::Status s = opts_.apply(*renewed); !s.ok()) {
      return absl::Status(s.code(),
                          absl::StrCat("installing the renewed certificate: ", s.message()));
    }
    log->info("node certificate renewed through {} ({}): role {}, valid until {}", addr, why,
              ca::RoleName(renewed->identity.role), absl::FormatTime(renewed->identity.not_after));
    current_ = *std::move(renewed);
    return absl::OkStatus();
  }
  return last;
}

void CertRenewer::Loop() {
  auto log = base::Logger("renewer");
  absl::Time next_role_check = opts_.clock->Now() + opts_.schedule.role_check_period;
  while (Wait()) {
    if (opts_.each_poll) opts_.each_poll();
    absl::Time now = opts_.clock->Now();
    std::string why;
    if (now >= next_role_check) {
      next_role_check = now + opts_.schedule.role_check_period;
      // The role the daemon runs (normally the certificate's): a switch that failed half-way
      // (say the manager did not start) is retried by renewing again.
      const api::NodeRole have = opts_.running_role() == ca::Role::kManager ? api::NODE_ROLE_MANAGER
                                                                            : api::NODE_ROLE_WORKER;
      for (const std::string& addr : opts_.managers()) {
        auto role = QueryNodeRole(addr, current_.tls, current_.identity.node_id);
        if (!role.ok()) continue;
        if (*role != have) {
          why = absl::StrCat("role change to ",
                             *role == api::NODE_ROLE_MANAGER ? "manager" : "worker");
          schedule_.RenewNow(now);
        }
        break;
      }
    }
    if (!schedule_.Due(now)) continue;
    if (why.empty()) why = "scheduled";
    absl::Status s = RenewOnce(why);
    now = opts_.clock->Now();
    if (s.ok()) {
      schedule_.Issued(current_.identity);
      log->info("next certificate renewal planned at {}",
                absl::FormatTime(schedule_.next_renewal()));
      continue;
    }
    schedule_.Failed(now);
    if (schedule_.Expired(now)) {
      // Loud, and repeated on every attempt: the node is cut off until this succeeds.
      log->error(
          "node certificate EXPIRED at {} and renewal failed (attempt {}): {}; this node cannot "
          "talk to the managers until it renews (retrying at {}; if the node was removed, leave "
          "and join again)",
          absl::FormatTime(schedule_.not_after()), schedule_.failures(), std::string(s.message()),
          absl::FormatTime(schedule_.next_renewal()));
    } else {
      log->warn(
          "node certificate renewal failed (attempt {}, certificate valid until {}): {}; "
          "retrying at {}",
          schedule_.failures(), absl::FormatTime(schedule_.not_after()), std::string(s.message()),
          absl::FormatTime(schedule_.next_renewal()));
    }
  }
}

}  // namespace shoal::daemon
