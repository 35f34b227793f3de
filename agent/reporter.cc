#include "agent/reporter.h"

#include <google/protobuf/util/message_differencer.h>

namespace shoal::agent {

void StatusReporter::SetNotify(std::function<void()> notify) {
  std::lock_guard<std::mutex> lock(mu_);
  notify_ = std::move(notify);
}

bool StatusReporter::Report(const std::string& task_id, const api::TaskStatus& status) {
  std::function<void()> notify;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = entries_.find(task_id);
    if (it != entries_.end() && status.state() < it->second.latest.state()) return false;
    Entry& e = entries_[task_id];
    e.latest = status;
    e.pending = true;
    notify = notify_;
  }
  if (notify) notify();
  return true;
}

std::vector<api::TaskStatusUpdate> StatusReporter::TakePending() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<api::TaskStatusUpdate> out;
  for (auto& [id, e] : entries_) {
    if (!e.pending) continue;
    api::TaskStatusUpdate u;
    u.set_task_id(id);
    *u.mutable_status() = e.latest;
    out.push_back(std::move(u));
    e.pending = false;
  }
  return out;
}

void StatusReporter::Sent(const std::vector<api::TaskStatusUpdate>& updates, bool ok) {
  if (ok) return;
  bool any = false;
  std::function<void()> notify;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& u : updates) {
      auto it = entries_.find(u.task_id());
      if (it == entries_.end()) continue;  // forgotten meanwhile
      // A newer status (already pending or sent) supersedes the failed one; otherwise retry.
      if (google::protobuf::util::MessageDifferencer::Equals(it->second.latest, u.status())) {
        it->second.pending = true;
        any = true;
      }
    }
    notify = notify_;
  }
  if (any && notify) notify();
}

void StatusReporter::ResendAll() {
  std::function<void()> notify;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [id, e] : entries_) e.pending = true;
    if (entries_.empty()) return;
    notify = notify_;
  }
  if (notify) notify();
}

void StatusReporter::Forget(const std::string& task_id) {
  std::lock_guard<std::mutex> lock(mu_);
  entries_.erase(task_id);
}

bool StatusReporter::HasPending() const {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [id, e] : entries_) {
    if (e.pending) return true;
  }
  return false;
}

std::optional<api::TaskStatus> StatusReporter::Last(const std::string& task_id) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(task_id);
  if (it == entries_.end()) return std::nullopt;
  return it->second.latest;
}

std::map<std::string, api::TaskState> StatusReporter::States() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::map<std::string, api::TaskState> out;
  for (const auto& [id, e] : entries_) out[id] = e.latest.state();
  return out;
}

}  // namespace shoal::agent
