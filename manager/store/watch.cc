#include "manager/store/watch.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace shoal::manager::store {

struct Watcher::Queue {
  // Immutable after Subscribe.
  uint32_t kinds_mask = 0;  // bit per Kind; 0 = all
  std::function<bool(const Event&)> filter;
  size_t limit = 0;

  std::mutex mu;
  std::condition_variable cv;
  std::deque<CommitPtr> items;
  uint64_t last_version = 0;  // of the last commit handed to the consumer
  absl::Status failure;       // set once; reported after the queued items are drained
};

// Filters `commit` for `q`: shares the commit when everything matches, copies otherwise;
// null when nothing matches.
static CommitPtr FilterFor(uint32_t kinds_mask, const std::function<bool(const Event&)>& filter,
                           const CommitPtr& commit) {
  if (kinds_mask == 0 && !filter) return commit;
  auto out = std::make_shared<Commit>();
  out->version = commit->version;
  for (const Event& e : commit->events) {
    if (kinds_mask != 0 && (kinds_mask & (1u << static_cast<unsigned>(e.kind))) == 0) continue;
    if (filter && !filter(e)) continue;
    out->events.push_back(e);
  }
  if (out->events.empty()) return nullptr;
  if (out->events.size() == commit->events.size()) return commit;
  return out;
}

void WatchHub::Deliver(Watcher::Queue& q, const CommitPtr& commit) {
  CommitPtr mine = FilterFor(q.kinds_mask, q.filter, commit);
  if (mine == nullptr) return;
  std::lock_guard<std::mutex> l(q.mu);
  if (!q.failure.ok()) return;
  if (q.items.size() >= q.limit) {
    q.failure = absl::ResourceExhaustedError(
        absl::StrCat("watcher fell behind by more than ", q.limit,
                     " commits; resume with Watch(from_version = last_version())"));
  } else {
    q.items.push_back(std::move(mine));
  }
  q.cv.notify_all();
}

void WatchHub::Publish(uint64_t version, CommitPtr commit,
                       const std::function<void()>& before_deliver) {
  std::lock_guard<std::mutex> l(mu_);
  if (before_deliver) before_deliver();
  version_ = version;
  if (commit == nullptr || commit->events.empty()) return;
  history_.push_back(commit);
  history_events_ += commit->events.size();
  while (history_.size() > 1 &&
         (history_.size() > history_limit_ || history_events_ > history_event_limit_)) {
    floor_ = history_.front()->version;
    history_events_ -= history_.front()->events.size();
    history_.pop_front();
  }
  for (const auto& q : queues_) Deliver(*q, commit);
}

absl::StatusOr<std::unique_ptr<Watcher>> WatchHub::Subscribe(
    WatchOptions opts, const std::function<void()>& under_lock) {
  auto q = std::make_shared<Watcher::Queue>();
  for (Kind k : opts.kinds) q->kinds_mask |= 1u << static_cast<unsigned>(k);
  q->filter = std::move(opts.filter);
  q->limit = opts.queue_limit != 0 ? opts.queue_limit : default_queue_limit_;

  std::lock_guard<std::mutex> l(mu_);
  if (under_lock) under_lock();
  uint64_t from = opts.from_version.value_or(version_);
  if (from > version_) {
    return absl::InvalidArgumentError(
        absl::StrCat("watch from version ", from, ": the store is only at version ", version_));
  }
  if (from < floor_) {
    return absl::OutOfRangeError(absl::StrCat(
        "watch from version ", from, ": too old, the watch history starts after version ", floor_,
        " (it keeps the last ", history_limit_, " commits / ", history_event_limit_,
        " events); read a fresh view and watch from its version"));
  }
  q->last_version = from;
  // Replay the history after `from` (binary search: history is in version order).
  auto it = std::upper_bound(history_.begin(), history_.end(), from,
                             [](uint64_t v, const CommitPtr& c) { return v < c->version; });
  for (; it != history_.end(); ++it) {
    CommitPtr mine = FilterFor(q->kinds_mask, q->filter, *it);
    if (mine != nullptr) q->items.push_back(std::move(mine));
  }
  // A replay longer than the queue limit is allowed: it is bounded by the history limit.
  queues_.push_back(q);
  return std::unique_ptr<Watcher>(new Watcher(q, weak_from_this()));
}

void WatchHub::Unsubscribe(const std::shared_ptr<Watcher::Queue>& q) {
  std::lock_guard<std::mutex> l(mu_);
  queues_.remove(q);
}

void WatchHub::CloseAll(const absl::Status& reason) {
  std::lock_guard<std::mutex> l(mu_);
  for (const auto& q : queues_) {
    std::lock_guard<std::mutex> ql(q->mu);
    if (q->failure.ok()) q->failure = reason;
    q->cv.notify_all();
  }
  queues_.clear();
}

uint64_t WatchHub::version() const {
  std::lock_guard<std::mutex> l(mu_);
  return version_;
}

uint64_t WatchHub::history_floor() const {
  std::lock_guard<std::mutex> l(mu_);
  return floor_;
}

Watcher::~Watcher() { Close(); }

void Watcher::Close() {
  if (auto hub = hub_.lock()) hub->Unsubscribe(q_);
  std::lock_guard<std::mutex> l(q_->mu);
  if (q_->failure.ok()) q_->failure = absl::CancelledError("watcher closed");
  q_->cv.notify_all();
}

uint64_t Watcher::last_version() const {
  std::lock_guard<std::mutex> l(q_->mu);
  return q_->last_version;
}

absl::StatusOr<Commit> Watcher::Next(absl::Duration timeout) {
  std::unique_lock<std::mutex> l(q_->mu);
  auto ready = [&] { return !q_->items.empty() || !q_->failure.ok(); };
  if (!q_->cv.wait_for(l, absl::ToChronoNanoseconds(timeout), ready)) {
    return absl::DeadlineExceededError(absl::StrCat("no commit after version ", q_->last_version,
                                                    " within ", absl::FormatDuration(timeout)));
  }
  if (q_->items.empty()) {
    return absl::Status(q_->failure.code(), absl::StrCat(q_->failure.message(), " (last_version ",
                                                         q_->last_version, ")"));
  }
  CommitPtr c = std::move(q_->items.front());
  q_->items.pop_front();
  q_->last_version = c->version;
  return *c;
}

std::optional<Commit> Watcher::TryNext() {
  std::lock_guard<std::mutex> l(q_->mu);
  if (q_->items.empty()) return std::nullopt;
  CommitPtr c = std::move(q_->items.front());
  q_->items.pop_front();
  q_->last_version = c->version;
  return *c;
}

}  // namespace shoal::manager::store
