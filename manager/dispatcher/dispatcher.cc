#include "manager/dispatcher/dispatcher.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "base/log.h"
#include "base/status.h"
#include "manager/dispatcher/session.h"

namespace shoal::manager::dispatcher {
namespace {

using NodeState = api::NodeStatus;

std::string Fmt(absl::Duration d) { return absl::FormatDuration(d); }

bool SameDataPath(const api::Node* a, const api::Node* b) {
  if (a == nullptr || b == nullptr) return a == b;
  if (a->vtep_addr() != b->vtep_addr() || a->status().addr() != b->status().addr()) return false;
  // The node's ingress sandbox address is an endpoint record of the ingress network.
  if (a->attachments_size() != b->attachments_size()) return false;
  for (int i = 0; i < a->attachments_size(); ++i) {
    if (a->attachments(i).SerializeAsString() != b->attachments(i).SerializeAsString()) {
      return false;
    }
  }
  return true;
}

// What of a task the endpoint records of its networks depend on.
std::string EndpointShape(const api::Task* t) {
  if (t == nullptr) return "";
  std::string out = absl::StrCat(t->node_id(), "|", t->status().state() >= api::TASK_STATE_ASSIGNED,
                                 t->status().state() <= api::TASK_STATE_RUNNING,
                                 t->status().state() == api::TASK_STATE_RUNNING,
                                 t->desired_state() <= api::TASK_STATE_RUNNING, "|",
                                 t->annotations().name(), "|", t->service_annotations().name());
  for (const auto& n : t->networks()) absl::StrAppend(&out, "|", Fingerprint(n));
  return out;
}

}  // namespace

Dispatcher::Dispatcher(store::MemoryStore& store, base::Clock& clock, base::Random& random,
                       DispatcherOptions options)
    : store_(store), clock_(clock), random_(random), options_(std::move(options)) {}

Dispatcher::~Dispatcher() { Stop(); }

bool Dispatcher::running() const {
  std::lock_guard<std::mutex> lock(mu_);
  return running_;
}

absl::Duration Dispatcher::BasePeriod() const {
  absl::Duration period = options_.heartbeat_period;
  store_.View().ForEach<api::Cluster>(store::All(), [&](const auto& c) {
    const auto& p = c->spec().dispatcher().heartbeat_period();
    absl::Duration d = absl::Seconds(p.seconds()) + absl::Nanoseconds(p.nanos());
    if (d > absl::ZeroDuration()) period = d;
    return false;
  });
  return period;
}

absl::Duration Dispatcher::JitteredPeriod() {
  absl::Duration base = BasePeriod();
  int64_t eps = absl::ToInt64Nanoseconds(base / 10);
  if (eps <= 0) return base;
  int64_t offset = static_cast<int64_t>(random_.Uniform(2 * static_cast<uint64_t>(eps))) - eps;
  return base + absl::Nanoseconds(offset);
}

absl::Status Dispatcher::Start() {
  std::lock_guard<std::mutex> lifecycle(lifecycle_mu_);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (running_) return absl::OkStatus();
  }
  absl::Time now = clock_.Now();
  absl::Duration grace = BasePeriod() * options_.leader_grace_periods;
  absl::flat_hash_map<std::string, absl::Time> deadlines, down;
  uint64_t version = 0;
  ASSIGN_OR_RETURN(auto watcher, store_.ViewAndWatch([&](const store::ReadView& view) {
    version = view.version();
    view.ForEach<api::Node>(store::All(), [&](const auto& n) {
      if (n->status().state() != NodeState::STATE_DOWN) {
        deadlines[n->id()] = now + grace;
      } else {
        const auto& at = n->meta().updated_at();
        down[n->id()] = at.seconds() == 0 ? now : absl::FromUnixSeconds(at.seconds());
      }
      return true;
    });
  }));
  std::lock_guard<std::mutex> lock(mu_);
  running_ = true;
  ++epoch_;
  grace_ = std::move(deadlines);
  down_since_ = std::move(down);
  watch_version_ = version;
  uint64_t epoch = epoch_;
  watch_thread_ = std::thread(
      [this, w = std::move(watcher), epoch]() mutable { WatchLoop(std::move(w), epoch); });
  if (options_.timer_interval > absl::ZeroDuration()) {
    timer_thread_ = std::thread([this, epoch] { TimerLoop(epoch); });
  }
  return absl::OkStatus();
}

void Dispatcher::Stop() {
  std::lock_guard<std::mutex> lifecycle(lifecycle_mu_);
  std::thread watch, timer;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (running_) {
      running_ = false;
      ++epoch_;
      for (auto& [id, s] : sessions_) {
        CloseLocked(s, absl::UnavailableError(
                           "dispatcher stopped: this manager is no longer the leader; reconnect"));
      }
      sessions_.clear();
      grace_.clear();
      down_since_.clear();
      registrations_.clear();
      cv_.notify_all();
    }
    watch = std::move(watch_thread_);
    timer = std::move(timer_thread_);
  }
  if (watch.joinable()) watch.join();
  if (timer.joinable()) timer.join();
  std::lock_guard<std::mutex> lock(status_mu_);
  status_.clear();
}

void Dispatcher::CloseLocked(const SessionPtr& s, absl::Status why) {
  if (s->closed) return;
  s->closed = true;
  s->why = std::move(why);
  cv_.notify_all();
}

absl::StatusOr<Dispatcher::SessionPtr> Dispatcher::Current(absl::string_view node_id,
                                                           absl::string_view session_id) {
  if (!running_) {
    return absl::UnavailableError("dispatcher is not running on this manager (not the leader)");
  }
  if (node_id.empty()) return absl::UnauthenticatedError("the call carries no node identity");
  if (session_id.empty()) return absl::InvalidArgumentError("session_id is required");
  auto it = sessions_.find(node_id);
  if (it == sessions_.end()) {
    return absl::NotFoundError(
        absl::StrCat("node ", node_id, " has no session: open one with Session first"));
  }
  if (it->second->id != session_id) {
    return absl::InvalidArgumentError(absl::StrCat("session_id '", session_id,
                                                   "' is not the current session of node ", node_id,
                                                   " (superseded or expired): open a new Session"));
  }
  return it->second;
}

absl::StatusOr<std::unique_ptr<Dispatcher::SessionStream>> Dispatcher::OpenSession(
    absl::string_view node_id, const api::SessionRequest& request, absl::string_view peer) {
  std::string id(node_id);
  SessionPtr s = std::make_shared<Session>();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!running_) {
      return absl::UnavailableError("dispatcher is not running on this manager (not the leader)");
    }
    if (id.empty()) return absl::UnauthenticatedError("the call carries no node identity");
    if (store_.View().Get<api::Node>(id) == nullptr) {
      return absl::NotFoundError(
          absl::StrCat("node ", id, " is not a member of this cluster (join it first)"));
    }
    absl::Time now = clock_.Now();
    auto& times = registrations_[id];
    times.erase(
        std::remove_if(times.begin(), times.end(),
                       [&](absl::Time t) { return t <= now - options_.registration_window; }),
        times.end());
    if (static_cast<int>(times.size()) >= options_.max_registrations) {
      return absl::UnavailableError(absl::StrCat(
          "node ", id, " exceeded the registration rate limit (", options_.max_registrations,
          " per ", Fmt(options_.registration_window), "); retry later"));
    }
    times.push_back(now);
    s->node_id = id;
    s->id = base::NewId(random_);
    s->expires = now + JitteredPeriod() * options_.missed_heartbeats;
    auto it = sessions_.find(id);
    if (it != sessions_.end()) {
      CloseLocked(it->second,
                  absl::AbortedError(absl::StrCat("superseded by a new session of node ", id)));
    }
    sessions_[id] = s;
    grace_.erase(id);
    down_since_.erase(id);
  }
  auto written = store_.Update([&](store::Tx& tx) {
    auto n = tx.Get<api::Node>(id);
    if (n == nullptr) return absl::NotFoundError(absl::StrCat("node ", id, " was removed"));
    api::Node copy = *n;
    copy.mutable_status()->set_state(NodeState::STATE_READY);
    copy.mutable_status()->clear_message();
    copy.mutable_status()->set_addr(std::string(peer));
    if (request.has_description()) *copy.mutable_description() = request.description();
    if (!request.vtep_addr().empty()) copy.set_vtep_addr(request.vtep_addr());
    return tx.Update(copy);
  });
  if (!written.ok()) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = sessions_.find(id);
    if (it != sessions_.end() && it->second == s) sessions_.erase(it);
    CloseLocked(s, written.status());
    return base::Annotate(written.status(), absl::StrCat("register node ", id));
  }
  return std::unique_ptr<SessionStream>(new SessionStream(this, s));
}

absl::StatusOr<absl::Duration> Dispatcher::Heartbeat(absl::string_view node_id,
                                                     absl::string_view session_id) {
  std::lock_guard<std::mutex> lock(mu_);
  ASSIGN_OR_RETURN(SessionPtr s, Current(node_id, session_id));
  absl::Time now = clock_.Now();
  if (now >= s->expires) {  // the timer will mark it down
    return absl::NotFoundError(
        absl::StrCat("the session of node ", node_id, " expired (no heartbeat within ",
                     options_.missed_heartbeats, " periods): open a new Session"));
  }
  absl::Duration period = JitteredPeriod();
  s->expires = now + period * options_.missed_heartbeats;
  return period;
}

absl::StatusOr<std::unique_ptr<Dispatcher::AssignmentStream>> Dispatcher::OpenAssignments(
    absl::string_view node_id, absl::string_view session_id) {
  std::lock_guard<std::mutex> lock(mu_);
  ASSIGN_OR_RETURN(SessionPtr s, Current(node_id, session_id));
  return std::unique_ptr<AssignmentStream>(new AssignmentStream(this, s));
}

void Dispatcher::Tick() {
  absl::Time now = clock_.Now();
  std::vector<std::string> expired, graced, orphaned;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!running_) return;
    for (auto it = sessions_.begin(); it != sessions_.end();) {
      auto cur = it++;
      if (cur->second->expires > now) continue;
      expired.push_back(cur->first);
      CloseLocked(cur->second, absl::UnavailableError(absl::StrCat("node ", cur->first, " missed ",
                                                                   options_.missed_heartbeats,
                                                                   " heartbeats: marked down")));
      sessions_.erase(cur);
    }
    for (auto it = grace_.begin(); it != grace_.end();) {
      auto cur = it++;
      if (cur->second > now) continue;
      graced.push_back(cur->first);
      grace_.erase(cur);
    }
    for (auto it = down_since_.begin(); it != down_since_.end();) {
      auto cur = it++;
      if (cur->second + options_.node_down_period > now) continue;
      orphaned.push_back(cur->first);
      down_since_.erase(cur);
    }
  }
  if (!expired.empty()) MarkDown(expired, "heartbeat failure");
  if (!graced.empty()) MarkDown(graced, "heartbeat failure: no session after the leader changed");
  if (!orphaned.empty()) OrphanTasks(orphaned);
  bool due;
  {
    std::lock_guard<std::mutex> lock(status_mu_);
    due = !status_.empty() && now - first_queued_ >= options_.status_batch_interval;
  }
  if (due) {
    absl::Status s = FlushStatus();
    if (!s.ok()) base::Logger("dispatcher")->warn("task status write: {}", s.ToString());
  }
}

void Dispatcher::MarkDown(const std::vector<std::string>& node_ids, absl::string_view message) {
  absl::Time now = clock_.Now();
  std::vector<std::string> marked;
  auto written = store_.Update([&](store::Tx& tx) {
    for (const auto& id : node_ids) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (sessions_.contains(id)) continue;  // it registered again meanwhile
      }
      auto n = tx.Get<api::Node>(id);
      if (n == nullptr || n->status().state() == NodeState::STATE_DOWN) continue;
      api::Node copy = *n;
      copy.mutable_status()->set_state(NodeState::STATE_DOWN);
      copy.mutable_status()->set_message(std::string(message));
      RETURN_IF_ERROR(tx.Update(copy));
      marked.push_back(id);
    }
    return absl::OkStatus();
  });
  if (!written.ok()) {
    base::Logger("dispatcher")->warn("mark nodes down: {}", written.status().ToString());
    return;
  }
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& id : marked) {
    if (!sessions_.contains(id)) down_since_[id] = now;
  }
}

void Dispatcher::OrphanTasks(const std::vector<std::string>& node_ids) {
  auto written = store_.BatchUpdate([&](store::Batch& b) -> absl::Status {
    for (const auto& id : node_ids) {
      auto tasks = store_.View().Find<api::Task>(store::ByNodeId(id));
      for (const auto& t : tasks) {
        RETURN_IF_ERROR(b.Update([&](store::Tx& tx) -> absl::Status {
          auto cur = tx.Get<api::Task>(t->id());
          if (cur == nullptr || cur->node_id() != id) return absl::OkStatus();
          if (cur->status().state() < api::TASK_STATE_ASSIGNED ||
              cur->status().state() > api::TASK_STATE_RUNNING) {
            return absl::OkStatus();
          }
          {
            std::lock_guard<std::mutex> lock(mu_);
            if (sessions_.contains(id)) return absl::OkStatus();  // it came back
          }
          api::Task copy = *cur;
          copy.mutable_status()->set_state(api::TASK_STATE_ORPHANED);
          copy.mutable_status()->set_message(absl::StrCat(
              "node ", id, " has been down for ", Fmt(options_.node_down_period), " or more"));
          copy.mutable_status()->set_applied_by(options_.manager_id);
          return tx.Update(copy);
        }));
      }
    }
    return absl::OkStatus();
  });
  if (!written.ok()) {
    base::Logger("dispatcher")->warn("orphan tasks: {}", written.status().ToString());
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& id : node_ids) {
      down_since_.try_emplace(id, clock_.Now() - options_.node_down_period);  // next Tick
    }
  }
}

void Dispatcher::Detach(const SessionPtr& s) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = sessions_.find(s->node_id);
    if (s->closed || it == sessions_.end() || it->second != s) return;
  }
  auto written = store_.Update([&](store::Tx& tx) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = sessions_.find(s->node_id);
      if (s->closed || it == sessions_.end() || it->second != s) return absl::OkStatus();
    }
    auto n = tx.Get<api::Node>(s->node_id);
    if (n == nullptr || n->status().state() != NodeState::STATE_READY) return absl::OkStatus();
    api::Node copy = *n;
    copy.mutable_status()->set_state(NodeState::STATE_DISCONNECTED);
    copy.mutable_status()->set_message("node is trying to find a new manager (session lost)");
    return tx.Update(copy);
  });
  if (!written.ok()) {
    base::Logger("dispatcher")
        ->warn("mark node {} disconnected: {}", s->node_id, written.status().ToString());
  }
}

void Dispatcher::TimerLoop(uint64_t epoch) {
  std::unique_lock<std::mutex> lock(mu_);
  while (epoch_ == epoch) {
    cv_.wait_for(lock, absl::ToChronoNanoseconds(options_.timer_interval),
                 [&] { return epoch_ != epoch; });
    if (epoch_ != epoch) return;
    lock.unlock();
    Tick();
    lock.lock();
  }
}

void Dispatcher::WatchLoop(std::unique_ptr<store::Watcher> watcher, uint64_t epoch) {
  while (true) {
    auto commit = watcher->Next(absl::Milliseconds(50));
    std::lock_guard<std::mutex> lock(mu_);
    if (epoch_ != epoch) return;
    if (commit.ok()) {
      MarkCommit(*commit);
      watch_version_ = commit->version;
      cv_.notify_all();
      continue;
    }
    if (commit.status().code() == absl::StatusCode::kDeadlineExceeded) continue;
    // Fell behind: everything may have changed; start over from the current version.
    base::Logger("dispatcher")->warn("store watch: {}; resubscribing", commit.status().ToString());
    auto fresh = store_.Watch();
    if (!fresh.ok()) continue;
    watcher = std::move(*fresh);
    watch_version_ = store_.version();
    MarkAll();
    cv_.notify_all();
  }
}

void Dispatcher::MarkAll() {
  for (auto& [id, s] : sessions_) {
    ++s->node_gen;
    ++s->assign_gen;
  }
}

void Dispatcher::MarkCommit(const store::Commit& commit) {
  auto mark_node = [&](const std::string& node_id, bool assign, bool node) {
    auto it = sessions_.find(node_id);
    if (it == sessions_.end()) return;
    if (assign) ++it->second->assign_gen;
    if (node) ++it->second->node_gen;
  };
  auto mark_if = [&](auto&& pred) {
    for (auto& [id, s] : sessions_) {
      if (pred(*s)) ++s->assign_gen;
    }
  };
  for (const store::Event& e : commit.events) {
    switch (e.kind) {
      case store::Kind::kTask: {
        const auto* t = static_cast<const api::Task*>(e.object.get());
        const auto* old = e.Old<api::Task>();
        mark_node(t->node_id(), true, false);
        if (old != nullptr && old->node_id() != t->node_id())
          mark_node(old->node_id(), true, false);
        if (e.type == store::EventType::kUpdate && EndpointShape(t) == EndpointShape(old)) break;
        absl::flat_hash_set<std::string> nets;
        for (const auto& n : t->networks()) nets.insert(n.network_id());
        if (old != nullptr) {
          for (const auto& n : old->networks()) nets.insert(n.network_id());
        }
        if (nets.empty()) break;
        mark_if([&](const Session& s) {
          for (const auto& n : nets) {
            if (s.networks.contains(n)) return true;
          }
          return false;
        });
        break;
      }
      case store::Kind::kSecret: {
        const std::string& id = static_cast<const api::Secret*>(e.object.get())->id();
        mark_if([&](const Session& s) { return s.secrets.contains(id); });
        break;
      }
      case store::Kind::kConfig: {
        const std::string& id = static_cast<const api::Config*>(e.object.get())->id();
        mark_if([&](const Session& s) { return s.configs.contains(id); });
        break;
      }
      case store::Kind::kNetwork: {
        const auto* n = static_cast<const api::Network*>(e.object.get());
        const auto* old = e.Old<api::Network>();
        bool ingress = n->spec().ingress() || (old != nullptr && old->spec().ingress());
        mark_if([&](const Session& s) { return ingress || s.networks.contains(n->id()); });
        break;
      }
      case store::Kind::kService:
        mark_if([](const Session& s) { return !s.networks.empty(); });
        break;
      case store::Kind::kNode: {
        const auto* n = static_cast<const api::Node*>(e.object.get());
        if (e.type == store::EventType::kDelete) {
          auto it = sessions_.find(n->id());
          if (it != sessions_.end()) {
            CloseLocked(it->second, absl::NotFoundError(absl::StrCat(
                                        "node ", n->id(), " was removed from the cluster")));
            sessions_.erase(it);
          }
        } else {
          mark_node(n->id(), false, true);
          // Every session lists the managers (SessionMessage.managers, from manager_status).
          const auto* old = e.Old<api::Node>();
          if (old == nullptr || old->manager_status().SerializeAsString() !=
                                    n->manager_status().SerializeAsString()) {
            for (auto& [id, s] : sessions_) ++s->node_gen;
          }
        }
        if (e.type != store::EventType::kUpdate || !SameDataPath(n, e.Old<api::Node>())) {
          mark_if([](const Session& s) { return !s.networks.empty(); });
        }
        break;
      }
      case store::Kind::kCluster:
        for (auto& [id, s] : sessions_) ++s->node_gen;
        break;
    }
  }
}

}  // namespace shoal::manager::dispatcher
