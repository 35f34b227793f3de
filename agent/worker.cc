#include "agent/worker.h"

#include <dirent.h>

#include <filesystem>
#include <set>

#include "absl/strings/str_cat.h"
#include "base/log.h"

namespace shoal::agent {

Worker::Worker(ExecEnv env, StatusReporter& reporter, base::Clock& clock)
    : env_(std::move(env)), reporter_(reporter), clock_(clock) {
  env_.secret = [this](const std::string& id) -> std::optional<api::Secret> {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = secrets_.find(id);
    if (it == secrets_.end()) return std::nullopt;
    return it->second;
  };
  env_.config = [this](const std::string& id) -> std::optional<api::Config> {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = configs_.find(id);
    if (it == configs_.end()) return std::nullopt;
    return it->second;
  };
}

Worker::~Worker() { Close(); }

std::vector<std::string> Worker::AdoptExisting() {
  std::vector<std::string> ids;
  std::set<std::string> seen;
  std::lock_guard<std::mutex> lock(mu_);
  for (const std::string& root :
       {env_.options->exec_root + "/containers", env_.options->state_dir + "/containers"}) {
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(root, ec)) {
      std::string id = entry.path().filename().string();
      if (!seen.insert(id).second) continue;
      auto client = runtime::MonitorClient::Adopt(ExecDir(*env_.options, id));
      // A directory without a container (a launch interrupted by a crash) is adopted as an
      // empty slot so that the first COMPLETE set cleans it up.
      adopted_[id] = client.ok() ? *std::move(client) : nullptr;
      if (client.ok()) ids.push_back(id);
    }
  }
  return ids;
}

void Worker::UpdateTask(const api::Task& task) {
  auto it = tasks_.find(task.id());
  if (it != tasks_.end()) {
    it->second->Update(task);
    return;
  }
  std::unique_ptr<runtime::MonitorClient> adopted;
  if (auto a = adopted_.find(task.id()); a != adopted_.end()) {
    adopted = std::move(a->second);
    adopted_.erase(a);
  }
  tasks_[task.id()] =
      std::make_unique<TaskManager>(env_, reporter_, clock_, task, std::move(adopted));
}

void Worker::RemoveTask(const std::string& id) {
  auto it = tasks_.find(id);
  if (it == tasks_.end()) return;
  it->second->Remove();
  removing_[id] = std::move(it->second);
  tasks_.erase(it);
}

void Worker::RemoveOrphan(const std::string& id, std::unique_ptr<runtime::MonitorClient> client) {
  cleaners_.emplace_back([this, id, client = std::move(client)]() mutable {
    Controller c(env_, id);
    if (client != nullptr) c.Adopt(std::move(client));
    absl::Status s = c.Remove();
    if (!s.ok()) {
      base::Logger("agent")->warn("container {} of a removed task: {}", id,
                                  std::string(s.message()));
    }
  });
}

void Worker::Apply(api::AssignmentsMessage::Type type,
                   const std::vector<api::AssignmentChange>& changes) {
  std::lock_guard<std::mutex> lock(mu_);
  if (closed_) return;
  const bool complete = type == api::AssignmentsMessage::TYPE_COMPLETE;
  if (complete) {
    secrets_.clear();
    configs_.clear();
  }
  // Secrets and configs first: tasks of the same message may reference them.
  for (const auto& c : changes) {
    const auto& a = c.assignment();
    bool remove = c.action() == api::AssignmentChange::ACTION_REMOVE;
    if (a.has_secret()) {
      if (remove) {
        secrets_.erase(a.secret().id());
      } else {
        secrets_[a.secret().id()] = a.secret();
      }
    } else if (a.has_config()) {
      if (remove) {
        configs_.erase(a.config().id());
      } else {
        configs_[a.config().id()] = a.config();
      }
    }
  }
  // Network state next: a task of the same message may be attached to the network.
  if (env_.net != nullptr) env_.net->Apply(complete, changes);
  std::set<std::string> listed;
  for (const auto& c : changes) {
    if (!c.assignment().has_task()) continue;
    const api::Task& t = c.assignment().task();
    if (c.action() == api::AssignmentChange::ACTION_REMOVE) {
      RemoveTask(t.id());
    } else {
      listed.insert(t.id());
      UpdateTask(t);
    }
  }
  if (complete) {
    std::vector<std::string> gone;
    for (const auto& [id, tm] : tasks_) {
      if (!listed.count(id)) gone.push_back(id);
    }
    for (const auto& id : gone) RemoveTask(id);
    // Adopted containers whose task is not assigned any more.
    for (auto& [id, client] : adopted_) RemoveOrphan(id, std::move(client));
    adopted_.clear();
  }
}

void Worker::Reap() {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = removing_.begin(); it != removing_.end();) {
    if (it->second->done()) {
      reporter_.Forget(it->first);
      it = removing_.erase(it);
    } else {
      ++it;
    }
  }
}

void Worker::Close() {
  std::map<std::string, std::unique_ptr<TaskManager>> tasks, removing;
  std::vector<std::thread> cleaners;
  {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
    tasks.swap(tasks_);
    removing.swap(removing_);
    cleaners.swap(cleaners_);
  }
  for (auto& [id, tm] : tasks) tm->Close();
  for (auto& [id, tm] : removing) tm->Close();
  tasks.clear();  // joins
  removing.clear();
  for (auto& t : cleaners) t.join();
}

size_t Worker::tasks() const {
  std::lock_guard<std::mutex> lock(mu_);
  return tasks_.size();
}

}  // namespace shoal::agent
