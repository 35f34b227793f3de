#include "manager/orchestrator/tasks.h"

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/time_util.h"

namespace shoal::manager::orchestrator {

using google::protobuf::util::TimeUtil;

google::protobuf::Timestamp ToProto(absl::Time t) {
  return TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(t));
}
absl::Time FromProto(const google::protobuf::Timestamp& ts) {
  return absl::FromUnixNanos(TimeUtil::TimestampToNanoseconds(ts));
}
absl::Duration FromProto(const google::protobuf::Duration& d) {
  return absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
}

api::Task NewTask(const api::Service& service, uint64_t slot, const std::string& node_id,
                  Env& env) {
  api::Task t;
  t.set_id(base::NewId(env.random));
  t.set_service_id(service.id());
  t.set_slot(slot);
  t.set_node_id(node_id);
  *t.mutable_spec() = service.spec().task();
  t.set_spec_version(service.spec_version());
  *t.mutable_service_annotations() = service.spec().annotations();
  t.mutable_annotations()->set_name(
      slot > 0 ? absl::StrCat(service.spec().annotations().name(), ".", slot)
               : absl::StrCat(service.spec().annotations().name(), ".", node_id));
  *t.mutable_endpoint() = service.endpoint();
  if (IsJob(service)) t.set_job_iteration(service.spec_version());
  t.set_desired_state(api::TASK_STATE_RUNNING);
  t.mutable_status()->set_state(api::TASK_STATE_NEW);
  t.mutable_status()->set_message("created");
  *t.mutable_status()->mutable_timestamp() = ToProto(env.clock.Now());
  return t;
}

bool Finished(const api::Task& t) { return t.status().state() > api::TASK_STATE_RUNNING; }
bool Runnable(const api::Task& t) { return t.desired_state() <= api::TASK_STATE_RUNNING; }

absl::Duration RestartDelay(const api::Service& service) {
  const auto& r = service.spec().task().restart();
  if (!r.has_delay()) return kDefaultRestartDelay;
  return FromProto(r.delay());
}

bool RestartAllowed(const api::Service& service, const api::Task& finished,
                    const std::vector<std::shared_ptr<const api::Task>>& history, absl::Time now) {
  const auto& policy = service.spec().task().restart();
  switch (policy.condition()) {
    case api::RestartPolicy::CONDITION_NONE:
      return false;
    case api::RestartPolicy::CONDITION_ON_FAILURE:
      if (finished.status().state() == api::TASK_STATE_COMPLETE) return false;
      break;
    default:
      break;
  }
  // Jobs never restart a completed task (RestartOnAny is on-failure for them).
  if (IsJob(service) && finished.status().state() == api::TASK_STATE_COMPLETE) return false;
  if (policy.max_attempts() == 0) return true;
  absl::Duration window = FromProto(policy.window());
  // Attempts so far = earlier tasks of this slot/node that finished within the window.
  uint64_t attempts = 0;
  for (const auto& h : history) {
    if (h->id() == finished.id() || !Finished(*h)) continue;
    if (h->spec_version() != service.spec_version()) continue;  // reset on spec change
    if (window > absl::ZeroDuration() && now - FromProto(h->status().timestamp()) > window) {
      continue;
    }
    ++attempts;
  }
  return attempts < policy.max_attempts();
}

api::Task Replacement(const api::Service& service, const api::Task& old, bool immediate, Env& env) {
  api::Task t = NewTask(service, old.slot(), IsGlobal(service) ? old.node_id() : "", env);
  absl::Duration delay = immediate ? absl::ZeroDuration() : RestartDelay(service);
  if (delay > absl::ZeroDuration()) {
    t.set_desired_state(api::TASK_STATE_READY);
    absl::Time at = env.clock.Now() + delay;
    t.mutable_status()->set_message(absl::StrCat(
        "restart delayed until ", absl::FormatTime(absl::RFC3339_sec, at, absl::UTCTimeZone())));
    *t.mutable_start_after() = ToProto(at);
  }
  return t;
}

}  // namespace shoal::manager::orchestrator
