#include "agent/task_manager.h"

#include <google/protobuf/util/time_util.h>

#include "absl/strings/str_cat.h"
#include "base/log.h"

namespace shoal::agent {

TaskAction NextAction(api::TaskState observed, api::TaskState desired, bool has_container) {
  if (observed >= api::TASK_STATE_COMPLETE) return TaskAction::kNone;
  if (desired >= api::TASK_STATE_SHUTDOWN) return TaskAction::kShutdown;
  if (observed < api::TASK_STATE_ACCEPTED) return TaskAction::kAccept;
  if (observed < api::TASK_STATE_READY) return TaskAction::kPrepare;
  if (observed == api::TASK_STATE_READY) {
    if (!has_container) return TaskAction::kPrepare;
    return desired >= api::TASK_STATE_RUNNING ? TaskAction::kStart : TaskAction::kNone;
  }
  // STARTING or RUNNING.
  if (!has_container) return TaskAction::kLost;
  return observed == api::TASK_STATE_STARTING ? TaskAction::kStart : TaskAction::kWatch;
}

TaskManager::TaskManager(const ExecEnv& env, StatusReporter& reporter, base::Clock& clock,
                         api::Task task, std::unique_ptr<runtime::MonitorClient> adopted)
    : env_(env),
      reporter_(reporter),
      clock_(clock),
      controller_(env, task.id()),
      id_(task.id()),
      task_(std::move(task)) {
  observed_ = task_.status().state();
  if (auto last = reporter_.Last(id_); last && last->state() > observed_) {
    observed_ = last->state();
  }
  if (adopted != nullptr) {
    controller_.Adopt(std::move(adopted));
    auto ob = controller_.Observe();
    // The previous agent got further than the manager recorded: catch up (never backwards).
    if (ob.ok() && (ob->status == "running" || ob->exited) && observed_ < api::TASK_STATE_RUNNING) {
      observed_ = api::TASK_STATE_RUNNING;
    } else if (ob.ok() && ob->status == "created" && observed_ < api::TASK_STATE_READY) {
      observed_ = api::TASK_STATE_READY;
    }
    if (observed_ >= api::TASK_STATE_READY && observed_ <= api::TASK_STATE_RUNNING) {
      Report(observed_, "adopted after an agent restart");
    }
  }
  thread_ = std::thread([this] { Run(); });
}

TaskManager::~TaskManager() {
  Close();
  if (thread_.joinable()) thread_.join();
}

void TaskManager::Update(const api::Task& task) {
  std::lock_guard<std::mutex> lock(mu_);
  task_ = task;
  changed_ = true;
  cv_.notify_all();
}

void TaskManager::Remove() {
  std::lock_guard<std::mutex> lock(mu_);
  removed_ = true;
  cv_.notify_all();
}

void TaskManager::Close() {
  std::lock_guard<std::mutex> lock(mu_);
  closed_ = true;
  cv_.notify_all();
}

bool TaskManager::done() const {
  std::lock_guard<std::mutex> lock(mu_);
  return done_;
}

api::TaskState TaskManager::observed() const {
  std::lock_guard<std::mutex> lock(mu_);
  return observed_;
}

void TaskManager::Report(api::TaskState state, const std::string& message, const std::string& err,
                         const runtime::ExitStatus* exit) {
  api::TaskStatus st;
  *st.mutable_timestamp() =
      google::protobuf::util::TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(clock_.Now()));
  st.set_state(state);
  st.set_message(message);
  st.set_err(err);
  auto* c = st.mutable_container();
  c->set_container_id(id_);
  if (controller_.exists()) {
    auto ob = controller_.Observe();
    if (ob.ok()) c->set_pid(ob->pid);
  }
  if (exit != nullptr) {
    c->set_exit_code(exit->code);
    c->set_oom_killed(exit->oom_killed);
  }
  reporter_.Report(id_, st);
  std::lock_guard<std::mutex> lock(mu_);
  if (state > observed_) observed_ = state;
}

void TaskManager::Run() {
  auto log = base::Logger("agent");
  absl::Duration retry = env_.options->task_retry;
  while (true) {
    api::Task task;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (closed_) return;
      if (removed_) break;
      task = task_;
      changed_ = false;
    }
    bool progressed = false;
    bool watching = false;
    bool failed_temporarily = false;
    api::TaskState observed = this->observed();
    TaskAction action = NextAction(observed, task.desired_state(), controller_.exists());
    if (observed >= api::TASK_STATE_COMPLETE && controller_.networked()) {
      controller_.DetachNetworks();  // the task ended: its addresses, DNS and LB go
    }
    if ((action == TaskAction::kWatch || action == TaskAction::kStart) &&
        !controller_.networked()) {
      // An adopted container (agent restart): its networks are re-attached first.
      absl::Status s = controller_.EnsureNetworks(task);
      if (!s.ok()) {
        log->warn("task {}: networks: {} (retrying)", id_, std::string(s.message()));
        action = TaskAction::kNone;
        failed_temporarily = true;
      }
    }
    switch (action) {
      case TaskAction::kNone:
        break;
      case TaskAction::kWatch: {
        auto ob = controller_.Observe();
        if (!ob.ok()) {
          Report(api::TASK_STATE_FAILED, "container state unreadable",
                 std::string(ob.status().message()));
        } else if (ob->exited) {
          if (ob->exit.code == 0) {
            Report(api::TASK_STATE_COMPLETE, "finished", "", &ob->exit);
          } else {
            std::string err =
                ob->exit.oom_killed
                    ? absl::StrCat("task: non-zero exit (", ob->exit.code, "): OOM killed")
                    : absl::StrCat("task: non-zero exit (", ob->exit.code, ")");
            Report(api::TASK_STATE_FAILED, "started", err, &ob->exit);
          }
          progressed = true;
        } else if (ob->status == "stopped") {
          Report(api::TASK_STATE_FAILED, "started", "the container's monitor died");
          progressed = true;
        } else {
          watching = true;
        }
        break;
      }
      case TaskAction::kAccept:
        Report(api::TASK_STATE_ACCEPTED, "accepted");
        progressed = true;
        break;
      case TaskAction::kPrepare: {
        if (observed < api::TASK_STATE_PREPARING) Report(api::TASK_STATE_PREPARING, "preparing");
        absl::Status s = controller_.Prepare(task);
        if (s.ok()) {
          Report(api::TASK_STATE_READY, "prepared");
        } else if (s.code() == absl::StatusCode::kUnavailable) {
          log->info("task {}: prepare: {} (retrying)", id_, std::string(s.message()));
          failed_temporarily = true;
        } else {
          log->warn("task {}: rejected: {}", id_, std::string(s.message()));
          (void)controller_.Remove();  // nothing half-built stays
          Report(api::TASK_STATE_REJECTED, "preparing", std::string(s.message()));
        }
        progressed = !failed_temporarily;
        break;
      }
      case TaskAction::kStart: {
        if (observed < api::TASK_STATE_STARTING) Report(api::TASK_STATE_STARTING, "starting");
        absl::Status s = controller_.Start();
        if (s.ok()) {
          Report(api::TASK_STATE_RUNNING, "started");
        } else {
          Report(api::TASK_STATE_FAILED, "starting", std::string(s.message()));
        }
        progressed = true;
        break;
      }
      case TaskAction::kShutdown: {
        auto exit = controller_.Shutdown(task);
        if (exit.ok()) {
          Report(api::TASK_STATE_SHUTDOWN, "shutdown", "", &*exit);
        } else {
          log->warn("task {}: shutdown: {}", id_, std::string(exit.status().message()));
          Report(api::TASK_STATE_SHUTDOWN, "shutdown", std::string(exit.status().message()));
        }
        progressed = true;
        break;
      }
      case TaskAction::kLost:
        Report(api::TASK_STATE_FAILED, "started",
               "container not found (lost while the agent was down)");
        progressed = true;
        break;
    }
    if (progressed) continue;
    std::unique_lock<std::mutex> lock(mu_);
    auto wake = [&] { return changed_ || removed_ || closed_; };
    if (watching) {
      cv_.wait_for(lock, std::chrono::milliseconds(100), wake);
    } else if (failed_temporarily) {
      cv_.wait_for(lock, absl::ToChronoMilliseconds(retry), wake);
    } else {
      cv_.wait(lock, wake);
    }
  }
  // Removed from the assignment set: stop if still running, then delete everything.
  while (true) {
    absl::Status s = controller_.Remove();
    if (s.ok()) break;
    base::Logger("agent")->warn("task {}: remove: {} (retrying)", id_, std::string(s.message()));
    std::unique_lock<std::mutex> lock(mu_);
    if (cv_.wait_for(lock, absl::ToChronoMilliseconds(retry), [&] { return closed_; })) return;
  }
  std::lock_guard<std::mutex> lock(mu_);
  done_ = true;
}

}  // namespace shoal::agent
