// StatusReporter: the agent's outbox of task statuses (reference/swarmkit.md §5 "Status
// reporter: reliable, coalescing"). Keeps, per task, the newest status; a status whose state
// is lower than one already recorded is dropped (a task never moves backwards), an equal state
// replaces the message. Pending statuses are taken in one batch, and put back when the send
// failed (unless a newer one arrived meanwhile). After a reconnect every task's latest status
// is marked pending again: the previous leader may have lost its queue.
// Pure bookkeeping, thread-safe; the session sends.
#pragma once

#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "api/dispatcher.pb.h"

namespace shoal::agent {

namespace api = ::shoal::api::v1;

class StatusReporter {
 public:
  // Called (without the lock held) whenever a status becomes pending.
  void SetNotify(std::function<void()> notify);

  // Records `status` for `task_id`. false (and nothing changes) when its state is lower than
  // the state already recorded.
  bool Report(const std::string& task_id, const api::TaskStatus& status);
  // Every pending status (newest per task), marked in flight.
  std::vector<api::TaskStatusUpdate> TakePending();
  // Result of sending `updates`: on failure each one is pending again unless superseded.
  void Sent(const std::vector<api::TaskStatusUpdate>& updates, bool ok);
  // Marks the latest status of every task pending (a new session).
  void ResendAll();
  // The task left the assignment set: nothing more is reported for it.
  void Forget(const std::string& task_id);

  bool HasPending() const;
  std::optional<api::TaskStatus> Last(const std::string& task_id) const;
  std::map<std::string, api::TaskState> States() const;

 private:
  struct Entry {
    api::TaskStatus latest;
    bool pending = false;
  };
  mutable std::mutex mu_;
  std::map<std::string, Entry> entries_;
  std::function<void()> notify_;
};

}  // namespace shoal::agent
