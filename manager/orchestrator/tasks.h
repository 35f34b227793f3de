// Task creation and the restart policy, shared by the replicated and global orchestrators.
//
// Thread safety: pure functions (Env's clock and random must be thread-safe if shared).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "api/objects.pb.h"
#include "base/clock.h"
#include "base/random.h"

namespace shoal::manager::orchestrator {

namespace api = ::shoal::api::v1;

struct Env {
  base::Clock& clock;
  base::Random& random;
};

inline bool IsJob(const api::Service& s) {
  return s.spec().has_replicated_job() || s.spec().has_global_job();
}
inline bool IsGlobal(const api::Service& s) {
  return s.spec().has_global() || s.spec().has_global_job();
}

// A new task for `service`: spec and endpoint copied, state NEW, desired RUNNING. Replicated
// tasks have a slot >= 1; global tasks have slot 0 and `node_id` preset. Job tasks carry the
// job iteration (= the service's spec version: every update of a job re-runs it).
api::Task NewTask(const api::Service& service, uint64_t slot, const std::string& node_id, Env& env);

// Observed state past RUNNING: the task's process is gone (COMPLETE, SHUTDOWN, FAILED,
// REJECTED, ORPHANED).
bool Finished(const api::Task& t);
// Desired state at or below RUNNING (READY = restart-delayed, still wanted).
bool Runnable(const api::Task& t);

// Whether a finished task of `service` may be replaced, from its restart policy: condition
// (none / on-failure / any) and max_attempts within window, counted over `history` (the other
// tasks of the same slot, or of the same node for global services).
bool RestartAllowed(const api::Service& service, const api::Task& finished,
                    const std::vector<std::shared_ptr<const api::Task>>& history, absl::Time now);

// The replacement of `old` after it finished or lost its node. With a restart delay (default
// 5 s; none when `immediate`), the replacement is created with desired READY and a
// status.message naming the time it will be started; StartDelayedTasks promotes it. The delay
// lives in the store, so it survives a leader change.
api::Task Replacement(const api::Service& service, const api::Task& old, bool immediate, Env& env);

inline constexpr absl::Duration kDefaultRestartDelay = absl::Seconds(5);

google::protobuf::Timestamp ToProto(absl::Time t);
absl::Time FromProto(const google::protobuf::Timestamp& ts);
absl::Duration FromProto(const google::protobuf::Duration& d);
absl::Duration RestartDelay(const api::Service& service);

}  // namespace shoal::manager::orchestrator
