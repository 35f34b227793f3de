#include "manager/leader/fake_agents.h"

#include "base/status.h"

namespace shoal::manager::leader {

namespace api = ::shoal::api::v1;

namespace {

bool Placed(const api::Task& t) {
  return !t.node_id().empty() && t.status().state() >= api::TASK_STATE_ASSIGNED &&
         t.status().state() <= api::TASK_STATE_RUNNING;
}

}  // namespace

void FakeAgents::Init(const store::ReadView& view) {
  watched_.clear();
  for (const auto& t : view.Find<api::Task>(store::All())) {
    if (Placed(*t)) watched_.insert(t->id());
  }
}

void FakeAgents::Observe(const store::Commit& commit) {
  for (const auto& e : commit.events) {
    const auto* t = e.Get<api::Task>();
    if (t == nullptr) continue;
    if (e.type != store::EventType::kDelete && Placed(*t)) {
      watched_.insert(t->id());
    } else {
      watched_.erase(t->id());
    }
  }
}

api::TaskState FakeAgents::Next(const api::Task& t) const {
  const api::TaskState s = t.status().state();
  if (t.desired_state() >= api::TASK_STATE_SHUTDOWN) return api::TASK_STATE_SHUTDOWN;
  const Outcome o = outcome ? outcome(t) : Outcome::kRun;
  if (s < api::TASK_STATE_READY) {
    if (o == Outcome::kReject) return api::TASK_STATE_REJECTED;
    if (t.desired_state() == api::TASK_STATE_READY) return api::TASK_STATE_READY;
  }
  if (t.desired_state() != api::TASK_STATE_RUNNING) return s;
  if (s < api::TASK_STATE_RUNNING) {
    return o == Outcome::kFail ? api::TASK_STATE_FAILED : api::TASK_STATE_RUNNING;
  }
  return o == Outcome::kComplete ? api::TASK_STATE_COMPLETE : s;
}

absl::Status FakeAgents::Step(store::MemoryStore& store, absl::Time) {
  if (watched_.empty()) return absl::OkStatus();
  auto view = store.View();
  std::vector<Transition> moves;
  for (const auto& id : watched_) {
    auto t = view.Get<api::Task>(id);
    if (t == nullptr || dead.contains(t->node_id())) continue;
    api::TaskState next = Next(*t);
    if (next != t->status().state()) moves.push_back({id, t->node_id(), next});
  }
  if (moves.empty()) return absl::OkStatus();
  return store
      .BatchUpdate([&](store::Batch& b) -> absl::Status {
        for (const auto& m : moves) {
          RETURN_IF_ERROR(b.Update([&](store::Tx& tx) -> absl::Status {
            auto t = tx.Get<api::Task>(m.task_id);
            // Observed states never move backwards (a concurrent writer may have moved it).
            if (t == nullptr || t->status().state() >= m.state) return absl::OkStatus();
            api::Task copy = *t;
            copy.mutable_status()->set_state(m.state);
            copy.mutable_status()->set_message("fake agent");
            log.push_back(m);
            return tx.Update(copy);
          }));
        }
        return absl::OkStatus();
      })
      .status();
}

}  // namespace shoal::manager::leader
