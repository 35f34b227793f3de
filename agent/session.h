// SessionLoop: the agent's connection to the leader's dispatcher (reference/swarmkit.md §5).
// One background thread: pick a manager (the configured ones, then the list the dispatcher
// pushes), open Session and wait (rpc_timeout) for the session id, heartbeat at once and then
// every period the dispatcher returns, open Assignments and hand each complete message (all
// `more` parts) to the Worker, send the reporter's pending statuses in batches. Any failure
// (stream ended, heartbeat or status call failed, session superseded) closes the connection
// and the next manager is tried after backoff = min(initial + 2 x backoff, max, the last
// heartbeat period), waiting a random part of it. A gap in applies_to/results_in reopens only the assignments stream.
#pragma once

#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "agent/agent.h"
#include "agent/reporter.h"
#include "agent/worker.h"

namespace shoal::agent {

class SessionLoop {
 public:
  SessionLoop(const AgentOptions& options, base::Clock& clock, base::Random& random,
              StatusReporter& reporter, Worker& worker);
  ~SessionLoop();  // Stop()

  void Start();
  void Stop();  // idempotent
  // The session part of AgentStatus.
  void Fill(AgentStatus* status) const;

 private:
  struct Conn;
  void Loop();
  absl::Status RunSession(const std::string& address);
  std::string NextManager();
  bool SleepInterruptibly(absl::Duration d);  // false when stopping

  const AgentOptions& opts_;
  base::Clock& clock_;
  base::Random& random_;
  StatusReporter& reporter_;
  Worker& worker_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  bool status_pending_ = false;
  std::vector<std::string> managers_;
  size_t next_manager_ = 0;
  // Status.
  bool connected_ = false;
  std::string manager_;
  std::string node_id_;
  std::string session_id_;
  absl::Duration period_;
  int sessions_opened_ = 0;
  std::string last_error_;
  std::thread thread_;
};

}  // namespace shoal::agent
