// Worker: the assignment set applied to this host (reference/swarmkit.md §5 "Assign()
// (COMPLETE) removes anything not listed; Update() (INCREMENTAL) applies diffs"). Owns one
// TaskManager per assigned task, the secrets and configs the tasks reference, and the
// containers re-adopted at start: an adopted container whose task is in the first COMPLETE set
// is handed to its task manager; any other is stopped and deleted (its task was removed while
// the agent was down). Thread-safe.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "agent/controller.h"
#include "agent/reporter.h"
#include "agent/task_manager.h"
#include "api/dispatcher.pb.h"
#include "base/clock.h"

namespace shoal::agent {

class Worker {
 public:
  // `env.secret`/`env.config` are replaced by the worker's own lookups.
  Worker(ExecEnv env, StatusReporter& reporter, base::Clock& clock);
  ~Worker();  // Close()

  // Finds containers a previous agent left in <exec_root>/containers; returns their ids.
  std::vector<std::string> AdoptExisting();
  // Applies one assignments message (all its parts, concatenated).
  void Apply(api::AssignmentsMessage::Type type, const std::vector<api::AssignmentChange>& changes);
  // Forgets task managers that finished removing their task.
  void Reap();
  // Stops every task manager, leaving containers running (agent stop).
  void Close();

  size_t tasks() const;
  // The node id the session registered as (networking needs it for the routing mesh).
  void SetNodeId(const std::string& node_id) {
    if (env_.net != nullptr) env_.net->SetNodeId(node_id);
  }

 private:
  void UpdateTask(const api::Task& task);  // requires mu_
  void RemoveTask(const std::string& id);  // requires mu_
  void RemoveOrphan(const std::string& id, std::unique_ptr<runtime::MonitorClient> client);

  ExecEnv env_;
  StatusReporter& reporter_;
  base::Clock& clock_;
  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<TaskManager>> tasks_;
  std::map<std::string, std::unique_ptr<TaskManager>> removing_;
  std::map<std::string, std::unique_ptr<runtime::MonitorClient>> adopted_;
  std::map<std::string, api::Secret> secrets_;
  std::map<std::string, api::Config> configs_;
  std::vector<std::thread> cleaners_;
  bool closed_ = false;
};

}  // namespace shoal::agent
