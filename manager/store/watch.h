// Watch streams over the store's committed transactions.
//
// Contract: a watcher receives every committed transaction with a version above its start
// version, in version order, exactly once (filtered to the kinds / predicate it asked for).
// It never silently loses one: if the consumer falls more than `queue_limit` commits behind,
// the watcher delivers what it has queued and then fails with ResourceExhausted naming
// last_version(); Watch(from_version = last_version()) resumes without a gap as long as the
// store's bounded history still holds the commits after it (OutOfRange otherwise).
//
// Thread safety: WatchHub is thread-safe. A Watcher may be used by one consumer thread while
// writers publish; Close() may be called from any thread.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "manager/store/kinds.h"
#include "manager/store/state.h"

namespace shoal::manager::store {

struct Event {
  EventType type;
  Kind kind;
  uint64_t version;  // raft index of the transaction (== object meta.version for create/update)
  ObjectPtr object;  // new object; for kDelete the object as it was when deleted
  ObjectPtr old;     // previous object for kUpdate, else null

  template <typename T>
  const T* Get() const {
    return kind == KindOf<T>::value ? static_cast<const T*>(object.get()) : nullptr;
  }
  template <typename T>
  const T* Old() const {
    return kind == KindOf<T>::value ? static_cast<const T*>(old.get()) : nullptr;
  }
};

// One committed transaction ("EventCommit" closes the list of its changes).
struct Commit {
  uint64_t version = 0;
  std::vector<Event> events;
};
using CommitPtr = std::shared_ptr<const Commit>;

struct WatchOptions {
  // Deliver every commit with version > from_version. Unset: from the current version on.
  std::optional<uint64_t> from_version;
  // Kinds to deliver; empty = all.
  std::vector<Kind> kinds;
  // Extra predicate on events; runs on the applying thread while it publishes: keep it cheap
  // and do not call back into the store.
  std::function<bool(const Event&)> filter;
  // Commits queued for a slow consumer before the watcher fails; 0 = the store default.
  size_t queue_limit = 0;
};

class WatchHub;

class Watcher {
 public:
  ~Watcher();
  Watcher(const Watcher&) = delete;
  Watcher& operator=(const Watcher&) = delete;

  // The next commit with at least one matching event. Errors: DeadlineExceeded when nothing
  // arrived within `timeout` (the watcher stays usable); ResourceExhausted when the consumer
  // fell behind (after the queued commits were delivered); Cancelled after Close() or when the
  // store shut down.
  absl::StatusOr<Commit> Next(absl::Duration timeout);
  // Non-blocking: a queued commit, or nullopt (also when failed or closed).
  std::optional<Commit> TryNext();

  // Version of the last commit Next/TryNext returned (the start version before that).
  uint64_t last_version() const;
  void Close();

 private:
  friend class WatchHub;
  struct Queue;
  explicit Watcher(std::shared_ptr<Queue> q, std::weak_ptr<WatchHub> hub)
      : q_(std::move(q)), hub_(std::move(hub)) {}
  std::shared_ptr<Queue> q_;
  std::weak_ptr<WatchHub> hub_;
};

// Fan-out of commits to watchers plus a bounded history for subscribe-from-version.
class WatchHub : public std::enable_shared_from_this<WatchHub> {
 public:
  // History keeps at most `history_limit` commits and `history_event_limit` events (the
  // newest commit is always kept).
  WatchHub(size_t history_limit, size_t history_event_limit, size_t default_queue_limit)
      : history_limit_(history_limit),
        history_event_limit_(history_event_limit),
        default_queue_limit_(default_queue_limit) {}

  // Records that the store is at `version` and delivers `commit` (if non-null and non-empty) to
  // every watcher. `before_deliver` runs under the hub lock before delivery (the store swaps its
  // published state there, so ViewAndWatch sees state and stream consistently).
  void Publish(uint64_t version, CommitPtr commit, const std::function<void()>& before_deliver);

  // Registers a watcher. `current` runs under the hub lock (ViewAndWatch reads its view there).
  // Errors: OutOfRange when from_version predates the history, InvalidArgument when it is
  // beyond the current version.
  absl::StatusOr<std::unique_ptr<Watcher>> Subscribe(WatchOptions opts,
                                                     const std::function<void()>& under_lock);

  // Fails every watcher with `reason` (store shutdown).
  void CloseAll(const absl::Status& reason);

  uint64_t version() const;
  // Oldest version from which Subscribe can replay without a gap.
  uint64_t history_floor() const;

 private:
  friend class Watcher;
  void Unsubscribe(const std::shared_ptr<Watcher::Queue>& q);
  static void Deliver(Watcher::Queue& q, const CommitPtr& commit);

  const size_t history_limit_;
  const size_t history_event_limit_;
  const size_t default_queue_limit_;
  mutable std::mutex mu_;
  uint64_t version_ = 0;
  uint64_t floor_ = 0;
  std::deque<CommitPtr> history_;
  size_t history_events_ = 0;
  std::list<std::shared_ptr<Watcher::Queue>> queues_;
};

}  // namespace shoal::manager::store
