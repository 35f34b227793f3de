// TaskManager: drives one assigned task on its own thread, level-triggered from (observed
// state, desired state, container state) — reference/swarmkit.md §2 "Agent driver":
//   desired >= SHUTDOWN           stop the container (if any) -> SHUTDOWN (exit code kept)
//   <= ASSIGNED                   -> ACCEPTED
//   ACCEPTED / PREPARING          Prepare (image, files, container created) -> READY;
//                                 fatal error -> REJECTED, temporary -> retried
//   READY and desired >= RUNNING  -> STARTING, Start -> RUNNING (error -> FAILED)
//   RUNNING                       watch: exit 0 -> COMPLETE, else FAILED "non-zero exit (N)"
//   terminal states               nothing (the manager restarts by creating a new task)
// Every state change goes to the StatusReporter (monotonic). Remove() (the task left the
// assignment set) stops and deletes the container; Close() (agent stop) leaves it running.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "agent/controller.h"
#include "agent/reporter.h"
#include "api/objects.pb.h"
#include "base/clock.h"

namespace shoal::agent {

// What to do next, as a pure function of the states (unit-tested).
enum class TaskAction {
  kNone,   // wait for a change
  kWatch,  // running: poll the container
  kAccept,
  kPrepare,
  kStart,
  kShutdown,
  kLost,  // STARTING/RUNNING but no container: FAILED
};
TaskAction NextAction(api::TaskState observed, api::TaskState desired, bool has_container);

class TaskManager {
 public:
  // `adopted`: the container a previous agent left for this task, if any.
  TaskManager(const ExecEnv& env, StatusReporter& reporter, base::Clock& clock, api::Task task,
              std::unique_ptr<runtime::MonitorClient> adopted);
  ~TaskManager();  // Close() + join

  void Update(const api::Task& task);  // newer version of the task from the manager
  void Remove();                       // shut down and delete; done() once finished
  void Close();                        // stop driving; the container is left as it is
  bool done() const;
  api::TaskState observed() const;

 private:
  void Run();
  // One step; true when something changed (run again at once).
  bool Step(const api::Task& task);
  void Report(api::TaskState state, const std::string& message, const std::string& err = "",
              const runtime::ExitStatus* exit = nullptr);

  const ExecEnv& env_;
  StatusReporter& reporter_;
  base::Clock& clock_;
  Controller controller_;
  const std::string id_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  api::Task task_;
  bool changed_ = false;
  bool removed_ = false;
  bool closed_ = false;
  bool done_ = false;
  api::TaskState observed_;
  std::thread thread_;
};

}  // namespace shoal::agent
