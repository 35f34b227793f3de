#include "agent/session.h"

#include <google/protobuf/util/time_util.h>

#include <algorithm>
#include <deque>

#include "absl/strings/str_cat.h"
#include "api/dispatcher.grpc.pb.h"
#include "base/log.h"

namespace shoal::agent {

namespace {

absl::Status FromGrpc(const grpc::Status& s, absl::string_view what) {
  if (s.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()),
                      absl::StrCat(what, ": ", s.error_message()));
}

// A stream that ends is a failure of the session even when the server ended it cleanly.
absl::Status StreamEnded(const grpc::Status& s, absl::string_view what) {
  if (s.ok()) return absl::UnavailableError(absl::StrCat(what, ": ended by the manager"));
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()),
                      absl::StrCat(what, ": ", s.error_message()));
}

std::chrono::system_clock::time_point DeadlineIn(absl::Duration d) {
  return std::chrono::system_clock::now() + absl::ToChronoMilliseconds(d);
}

}  // namespace

// One connection's streams. Reader threads only touch it under the loop's mutex.
struct SessionLoop::Conn {
  std::string session_id;
  absl::Status failure;  // set once: the connection is over
  bool resync = false;   // the assignments stream must be reopened
};

SessionLoop::SessionLoop(const AgentOptions& options, base::Clock& clock, base::Random& random,
                         StatusReporter& reporter, Worker& worker)
    : opts_(options),
      clock_(clock),
      random_(random),
      reporter_(reporter),
      worker_(worker),
      managers_(options.managers) {
  reporter_.SetNotify([this] {
    std::lock_guard<std::mutex> lock(mu_);
    status_pending_ = true;
    cv_.notify_all();
  });
}

SessionLoop::~SessionLoop() {
  Stop();
  reporter_.SetNotify(nullptr);
}

void SessionLoop::Start() {
  thread_ = std::thread([this] { Loop(); });
}

void SessionLoop::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
    cv_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
}

void SessionLoop::Fill(AgentStatus* st) const {
  std::lock_guard<std::mutex> lock(mu_);
  st->connected = connected_;
  st->manager = manager_;
  st->node_id = node_id_;
  st->session_id = session_id_;
  st->heartbeat_period = period_;
  st->sessions_opened = sessions_opened_;
  st->last_error = last_error_;
}

std::string SessionLoop::NextManager() {
  std::lock_guard<std::mutex> lock(mu_);
  if (managers_.empty()) return "";
  return managers_[next_manager_++ % managers_.size()];
}

bool SessionLoop::SleepInterruptibly(absl::Duration d) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, absl::ToChronoMilliseconds(d), [&] { return stop_; });
  return !stop_;
}

void SessionLoop::Loop() {
  auto log = base::Logger("agent");
  absl::Duration backoff = absl::ZeroDuration();
  while (true) {
    if (backoff > absl::ZeroDuration()) {
      // A random part of the backoff, so that many agents do not come back at once.
      absl::Duration wait = backoff * (static_cast<double>(random_.Uniform(1000)) / 1000.0);
      if (!SleepInterruptibly(wait)) return;
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stop_) return;
    }
    std::string address = NextManager();
    absl::Status s = address.empty() ? absl::FailedPreconditionError("no manager address known")
                                     : RunSession(address);
    bool was_up;
    {
      std::lock_guard<std::mutex> lock(mu_);
      was_up = connected_;
      connected_ = false;
      if (stop_) return;
      last_error_ = std::string(s.message());
    }
    log->warn("agent: session with {}: {}", address, std::string(s.message()));
    // A session that came up resets the backoff: the next failure starts small again. Once a
    // dispatcher has given its heartbeat period, the backoff never exceeds it: after a leader
    // change the new dispatcher waits `leader_grace_periods` (6) periods for this node before
    // marking it DOWN and replacing its tasks, and waits of up to 8 s would overrun a short
    // period's grace while a leader is being elected (every attempt then fails and doubles).
    absl::Duration cap = opts_.backoff_max;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (period_ > absl::ZeroDuration())
        cap = std::max(opts_.backoff_initial, std::min(cap, period_));
    }
    backoff = was_up ? opts_.backoff_initial : std::min(opts_.backoff_initial + 2 * backoff, cap);
  }
}

absl::Status SessionLoop::RunSession(const std::string& address) {
  auto log = base::Logger("agent");
  std::shared_ptr<grpc::Channel> channel = opts_.dial(address);
  if (channel == nullptr) return absl::UnavailableError(absl::StrCat("cannot dial ", address));
  std::unique_ptr<api::Dispatcher::Stub> stub = api::Dispatcher::NewStub(channel);
  Conn conn;
  auto fail = [&](absl::Status s) {
    std::lock_guard<std::mutex> lock(mu_);
    if (conn.failure.ok()) conn.failure = std::move(s);
    cv_.notify_all();
  };

  // --- Session stream.
  grpc::ClientContext session_ctx;
  api::SessionRequest req;
  *req.mutable_description() = opts_.description;
  req.set_vtep_addr(opts_.vtep_addr);
  std::unique_ptr<grpc::ClientReader<api::SessionMessage>> session =
      stub->Session(&session_ctx, req);
  std::thread session_thread([&] {
    api::SessionMessage m;
    while (session->Read(&m)) {
      std::lock_guard<std::mutex> lock(mu_);
      if (conn.session_id.empty()) conn.session_id = m.session_id();
      if (m.has_node()) {
        node_id_ = m.node().id();
        worker_.SetNodeId(node_id_);
      }
      std::vector<std::string> peers;
      for (const auto& p : m.managers()) {
        if (!p.addr().empty()) peers.push_back(p.addr());
      }
      if (!peers.empty()) {
        managers_ = std::move(peers);
        next_manager_ = 0;
      }
      cv_.notify_all();
    }
    fail(StreamEnded(session->Finish(), "session stream"));
  });

  // --- Assignments stream (reopened on a sequence gap).
  std::unique_ptr<grpc::ClientContext> assign_ctx;
  std::thread assign_thread;
  auto close_assignments = [&] {
    if (assign_ctx) assign_ctx->TryCancel();
    if (assign_thread.joinable()) assign_thread.join();
    assign_ctx.reset();
  };
  auto open_assignments = [&](const std::string& session_id) {
    assign_ctx = std::make_unique<grpc::ClientContext>();
    api::AssignmentsRequest areq;
    areq.set_session_id(session_id);
    assign_thread = std::thread([&, ctx = assign_ctx.get(), areq] {
      auto reader = stub->Assignments(ctx, areq);
      api::AssignmentsMessage m;
      std::string last;  // results_in of the last applied message
      bool have_last = false;
      std::vector<api::AssignmentChange> parts;
      bool gap = false;
      while (reader->Read(&m)) {
        if (m.type() == api::AssignmentsMessage::TYPE_INCREMENTAL &&
            (!have_last || m.applies_to() != last)) {
          gap = true;
          break;
        }
        for (auto& c : *m.mutable_changes()) parts.push_back(std::move(c));
        if (m.more()) continue;
        worker_.Apply(m.type(), parts);
        parts.clear();
        last = m.results_in();
        have_last = true;
      }
      if (gap) {
        ctx->TryCancel();
        (void)reader->Finish();
        std::lock_guard<std::mutex> lock(mu_);
        conn.resync = true;
        cv_.notify_all();
        return;
      }
      grpc::Status st = reader->Finish();
      if (st.error_code() == grpc::StatusCode::CANCELLED) return;  // we closed it
      fail(StreamEnded(st, "assignments stream"));
    });
  };

  absl::Status result;
  {
    std::unique_lock<std::mutex> lock(mu_);
    bool got = cv_.wait_for(lock, absl::ToChronoMilliseconds(opts_.rpc_timeout), [&] {
      return stop_ || !conn.session_id.empty() || !conn.failure.ok();
    });
    if (!conn.failure.ok()) {
      result = conn.failure;
    } else if (!got) {
      result = absl::DeadlineExceededError("no session message within the RPC timeout");
    }
  }
  std::string session_id;
  {
    std::lock_guard<std::mutex> lock(mu_);
    session_id = conn.session_id;
  }
  absl::Time next_heartbeat = absl::InfinitePast();
  absl::Time next_reap = absl::InfinitePast();
  absl::Time send_at = absl::InfiniteFuture();
  if (result.ok() && !session_id.empty()) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      connected_ = true;
      manager_ = address;
      session_id_ = session_id;
      ++sessions_opened_;
      last_error_.clear();
    }
    log->info("agent: session {} with {}", session_id, address);
    // The previous leader may have lost queued statuses: report every task again.
    reporter_.ResendAll();
    open_assignments(session_id);
  }
  while (result.ok() && !session_id.empty()) {
    absl::Time now = absl::Now();
    if (now >= next_heartbeat) {
      grpc::ClientContext ctx;
      ctx.set_deadline(DeadlineIn(opts_.rpc_timeout));
      api::HeartbeatRequest hreq;
      hreq.set_session_id(session_id);
      api::HeartbeatResponse hresp;
      grpc::Status hs = stub->Heartbeat(&ctx, hreq, &hresp);
      if (!hs.ok()) {
        result = FromGrpc(hs, "heartbeat");
        break;
      }
      absl::Duration period =
          absl::Seconds(hresp.period().seconds()) + absl::Nanoseconds(hresp.period().nanos());
      if (period <= absl::ZeroDuration()) period = absl::Seconds(5);
      {
        std::lock_guard<std::mutex> lock(mu_);
        period_ = period;
      }
      next_heartbeat = absl::Now() + period;
    }
    if (now >= next_reap) {
      worker_.Reap();
      next_reap = now + absl::Seconds(1);
    }
    if (now >= send_at) {
      send_at = absl::InfiniteFuture();
      std::vector<api::TaskStatusUpdate> updates = reporter_.TakePending();
      if (!updates.empty()) {
        grpc::ClientContext ctx;
        ctx.set_deadline(DeadlineIn(opts_.rpc_timeout));
        api::UpdateTaskStatusRequest ureq;
        ureq.set_session_id(session_id);
        for (const auto& u : updates) *ureq.add_updates() = u;
        api::UpdateTaskStatusResponse uresp;
        grpc::Status us = stub->UpdateTaskStatus(&ctx, ureq, &uresp);
        if (us.error_code() == grpc::StatusCode::PERMISSION_DENIED) {
          // A task is assigned to another node now: its status is not ours to report.
          log->warn("agent: status update refused: {}", us.error_message());
          reporter_.Sent(updates, true);
        } else {
          reporter_.Sent(updates, us.ok());
          if (!us.ok()) {
            result = FromGrpc(us, "task status update");
            break;
          }
        }
      }
    }
    std::unique_lock<std::mutex> lock(mu_);
    if (status_pending_) {
      status_pending_ = false;
      if (send_at == absl::InfiniteFuture()) send_at = absl::Now() + opts_.status_batch_wait;
    }
    if (stop_) break;
    if (!conn.failure.ok()) {
      result = conn.failure;
      break;
    }
    if (conn.resync) {
      conn.resync = false;
      lock.unlock();
      close_assignments();
      open_assignments(session_id);
      continue;
    }
    absl::Time wake = std::min({next_heartbeat, next_reap, send_at});
    absl::Duration d = std::max(wake - absl::Now(), absl::ZeroDuration());
    cv_.wait_for(lock, absl::ToChronoMicroseconds(d),
                 [&] { return stop_ || status_pending_ || !conn.failure.ok() || conn.resync; });
  }
  session_ctx.TryCancel();
  close_assignments();
  session_thread.join();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_ && result.ok()) result = absl::CancelledError("agent stopping");
  }
  if (result.ok()) result = absl::UnavailableError("session ended");
  return result;
}

}  // namespace shoal::agent
