#include "manager/leader/loop.h"

#include "base/log.h"
#include "base/status.h"

namespace shoal::manager::leader {

LeaderLoop::LeaderLoop(store::MemoryStore& store, base::Clock& clock,
                       std::vector<Component*> components, absl::Duration tick)
    : store_(store), clock_(clock), components_(std::move(components)), tick_(tick) {}

LeaderLoop::~LeaderLoop() { Stop(); }

absl::Status LeaderLoop::Reinit() {
  ASSIGN_OR_RETURN(watcher_, store_.ViewAndWatch([&](const store::ReadView& view) {
    for (Component* c : components_) c->Init(view);
  }));
  return absl::OkStatus();
}

absl::Status LeaderLoop::RunOnce(absl::Duration wait) {
  if (watcher_ == nullptr) RETURN_IF_ERROR(Reinit());
  auto first = watcher_->Next(wait);
  if (first.ok()) {
    for (Component* c : components_) c->Observe(*first);
    while (auto more = watcher_->TryNext()) {
      for (Component* c : components_) c->Observe(*more);
    }
  } else if (first.status().code() != absl::StatusCode::kDeadlineExceeded) {
    // Fell behind or closed: start over from a fresh view.
    watcher_.reset();
    return first.status();
  }
  absl::Status result;
  for (Component* c : components_) {
    absl::Status s = c->Step(store_, clock_.Now());
    if (!s.ok()) {
      base::Logger("leader")->warn("{}: {}", c->name(), s.ToString());
      result.Update(s);
    }
  }
  return result;
}

void LeaderLoop::Run() {
  while (!stop_.load()) {
    absl::Status s = RunOnce(tick_);
    if (!s.ok() && watcher_ == nullptr && !stop_.load()) {
      base::Logger("leader")->warn("watch failed ({}); re-initialising", s.ToString());
    }
  }
}

void LeaderLoop::Start() {
  stop_ = false;
  thread_ = std::thread([this] { Run(); });
}

void LeaderLoop::Stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  watcher_.reset();
}

}  // namespace shoal::manager::leader
