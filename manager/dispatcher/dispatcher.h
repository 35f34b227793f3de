// Dispatcher: the leader's end of every agent session (DESIGN.md §6, reference/swarmkit.md §5).
// The gRPC adapter (service.h) maps the four Dispatcher RPCs onto these calls; `node_id` is
// always the authenticated caller (its certificate CN), never a request field.
//
//   sessions      OpenSession registers the node (it must exist in the store), writes it READY
//                 with its description, address and VTEP, and returns a stream that yields the
//                 SessionMessage (session id, node, managers, network keys, root CA) now and
//                 whenever one of those changes. A new session supersedes the node's previous
//                 one (its streams end with ABORTED). At most `max_registrations` per
//                 `registration_window` per node (UNAVAILABLE beyond). A Session stream the
//                 agent drops marks the node DISCONNECTED (the heartbeat deadline still runs).
//   heartbeats    Heartbeat returns the period for the next one: the cluster's
//                 dispatcher.heartbeat_period (else options.heartbeat_period) ± 10 % jitter. A
//                 node that misses `missed_heartbeats` periods is written DOWN ("heartbeat
//                 failure") and its session closed. After Start (a leader change) every node
//                 not already DOWN gets `leader_grace_periods` periods to open a session first.
//                 Tasks of a node DOWN for `node_down_period` become ORPHANED (the down time
//                 of nodes already DOWN at Start is taken from their last update).
//   assignments   OpenAssignments returns a stream whose first message is COMPLETE (the whole
//                 set, assignments.h), then INCREMENTAL diffs, each sent after the set changed
//                 and `assignment_batch_wait` passed to gather more; `results_in` is the store
//                 version the set was computed at and `applies_to` the previous one. A
//                 message over `max_message_bytes` is split into parts (`more` set on all but
//                 the last). A new stream (a reconnecting agent) starts with COMPLETE again.
//   task status   UpdateTaskStatus checks the whole request first: states agents may report
//                 are ACCEPTED..REJECTED (InvalidArgument naming updates[i] otherwise); a task
//                 assigned to another node fails the request with PERMISSION_DENIED; unknown
//                 tasks are ignored. Accepted updates are queued (per task: the furthest state
//                 wins) and written in one store batch when `status_batch_interval` passed
//                 since the first queued one, or at once when `status_batch_items` are queued.
//                 At write time a state lower than the stored one is dropped: a task never
//                 moves backwards.
// Errors: UNAVAILABLE when not started (this manager is not the leader); NOT_FOUND for a node
// unknown to the cluster or without a session; INVALID_ARGUMENT for a session id that is not
// the node's current one.
//
// Time: deadlines use the injected Clock; Tick() runs the timers (heartbeat and grace expiry,
// status flush). With options.timer_interval > 0 a thread calls Tick at that real-time
// interval; tests with a FakeClock set it to 0 and call Tick themselves.
//
// Leader integration: construct once per manager; call Start() when this manager becomes the
// leader and Stop() when it stops being one (the streams of every session end with
// UNAVAILABLE so agents reconnect to the new leader). Queued statuses are dropped on Stop;
// agents keep reporting until the new leader accepts them.
//
// Thread safety: all methods are thread-safe; streams are used by one thread each.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "api/dispatcher.pb.h"
#include "base/clock.h"
#include "base/random.h"
#include "manager/dispatcher/assignments.h"
#include "manager/store/store.h"

namespace shoal::manager::dispatcher {

struct DispatcherOptions {
  absl::Duration heartbeat_period = absl::Seconds(5);
  int missed_heartbeats = 3;
  int leader_grace_periods = 6;  // SwarmKit: 3 x 2 periods after a leader change
  // A node DOWN this long has its tasks in [ASSIGNED, RUNNING] marked ORPHANED (their
  // resources are freed; the tasks stay for the orchestrators and `service ps`).
  absl::Duration node_down_period = absl::Hours(24);
  absl::Duration status_batch_interval = absl::Milliseconds(100);
  size_t status_batch_items = 10000;
  absl::Duration assignment_batch_wait = absl::Milliseconds(100);  // real time
  // Assignment messages are split into parts of about this size (AssignmentsMessage.more).
  size_t max_message_bytes = 1 << 20;
  int max_registrations = 3;
  absl::Duration registration_window = absl::Seconds(8);
  // Send the ingress network (endpoints, services) to every node (routing mesh).
  bool ingress_everywhere = true;
  absl::Duration timer_interval = absl::Milliseconds(50);  // 0: no timer thread
  std::string manager_id;                                  // recorded in task status.applied_by
  // Manager list for SessionMessage.managers (empty when unset). Sessions are re-sent their
  // SessionMessage when a node's manager_status changes (the list is expected to follow it).
  std::function<std::vector<api::WeightedPeer>()> managers;
};

class Dispatcher {
 public:
  Dispatcher(store::MemoryStore& store, base::Clock& clock, base::Random& random,
             DispatcherOptions options = {});
  ~Dispatcher();
  Dispatcher(const Dispatcher&) = delete;
  Dispatcher& operator=(const Dispatcher&) = delete;

  absl::Status Start();
  void Stop();
  bool running() const;

  class SessionStream;
  class AssignmentStream;

  // `peer`: the address the call came from ("ipv4:10.0.0.5:41234"), recorded as status.addr.
  absl::StatusOr<std::unique_ptr<SessionStream>> OpenSession(absl::string_view node_id,
                                                             const api::SessionRequest& request,
                                                             absl::string_view peer);
  absl::StatusOr<absl::Duration> Heartbeat(absl::string_view node_id, absl::string_view session_id);
  absl::StatusOr<std::unique_ptr<AssignmentStream>> OpenAssignments(absl::string_view node_id,
                                                                    absl::string_view session_id);
  absl::Status UpdateTaskStatus(absl::string_view node_id,
                                const api::UpdateTaskStatusRequest& request);

  // Runs due timers: heartbeat and leader-grace expiry, status flush.
  void Tick();
  // Writes the queued task statuses now.
  absl::Status FlushStatus();
  // Statuses queued and not yet written.
  size_t queued_statuses() const;

 private:
  struct Session;
  using SessionPtr = std::shared_ptr<Session>;
  struct Queued {
    std::string node_id;
    api::TaskStatus status;
  };

  absl::StatusOr<SessionPtr> Current(absl::string_view node_id, absl::string_view session_id);
  absl::Duration BasePeriod() const;
  absl::Duration JitteredPeriod();
  void MarkDown(const std::vector<std::string>& node_ids, absl::string_view message);
  void OrphanTasks(const std::vector<std::string>& node_ids);
  void Detach(const SessionPtr& s);
  void WatchLoop(std::unique_ptr<store::Watcher> watcher, uint64_t epoch);
  void TimerLoop(uint64_t epoch);
  void MarkCommit(const store::Commit& commit);             // requires mu_
  void MarkAll();                                           // requires mu_
  void CloseLocked(const SessionPtr& s, absl::Status why);  // requires mu_

  store::MemoryStore& store_;
  base::Clock& clock_;
  base::Random& random_;
  const DispatcherOptions options_;
  NetworkCache cache_;

  std::mutex lifecycle_mu_;  // serializes Start/Stop
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool running_ = false;
  uint64_t epoch_ = 0;  // bumped by Start/Stop: threads of an older epoch exit
  absl::flat_hash_map<std::string, SessionPtr> sessions_;    // by node id
  absl::flat_hash_map<std::string, absl::Time> grace_;       // node id -> deadline
  absl::flat_hash_map<std::string, absl::Time> down_since_;  // DOWN nodes with live tasks
  absl::flat_hash_map<std::string, std::vector<absl::Time>> registrations_;
  uint64_t watch_version_ = 0;  // last commit the watch thread processed
  std::thread watch_thread_;
  std::thread timer_thread_;

  mutable std::mutex status_mu_;
  absl::flat_hash_map<std::string, Queued> status_;
  absl::Time first_queued_;
  std::mutex flush_mu_;  // one flush at a time
};

// Yields SessionMessages for one session.
class Dispatcher::SessionStream {
 public:
  ~SessionStream();
  const std::string& session_id() const;
  // The next message: the first at once, later ones when the node, the cluster (root CA,
  // network keys) or the manager list changed. nullopt when nothing changed within `wait` (real
  // time; callers poll their transport for cancellation). Errors end the stream: the session
  // was superseded (ABORTED), the node was marked down or the dispatcher stopped (UNAVAILABLE).
  absl::StatusOr<std::optional<api::SessionMessage>> Next(absl::Duration wait);
  // The agent went away (its stream was cancelled): the node is marked DISCONNECTED.
  void Disconnected();

 private:
  friend class Dispatcher;
  SessionStream(Dispatcher* d, SessionPtr s) : d_(d), s_(std::move(s)) {}
  Dispatcher* d_;
  SessionPtr s_;
  uint64_t seen_gen_ = 0;
  uint64_t sent_fp_ = 0;
};

// Yields AssignmentsMessages for one session.
class Dispatcher::AssignmentStream {
 public:
  ~AssignmentStream();
  // The next message (COMPLETE first, then INCREMENTAL when the set changed); nullopt when
  // nothing changed within `wait`. Errors as SessionStream::Next.
  absl::StatusOr<std::optional<api::AssignmentsMessage>> Next(absl::Duration wait);

 private:
  friend class Dispatcher;
  AssignmentStream(Dispatcher* d, SessionPtr s) : d_(d), s_(std::move(s)) {}
  Dispatcher* d_;
  SessionPtr s_;
  bool first_ = true;
  uint64_t seen_gen_ = 0;
  std::string last_version_;
  SentSet sent_;
  std::deque<api::AssignmentsMessage> parts_;  // the rest of a split message
};

}  // namespace shoal::manager::dispatcher
