// SessionStream and AssignmentStream (dispatcher.h).
#include "absl/strings/str_cat.h"
#include "manager/dispatcher/dispatcher.h"
#include "manager/dispatcher/session.h"

namespace shoal::manager::dispatcher {
namespace {

// Waits on `cv` until `ready()` or `wait` (real time) passed; returns ready().
template <typename Pred>
bool WaitFor(std::condition_variable& cv, std::unique_lock<std::mutex>& lock, absl::Duration wait,
             Pred ready) {
  return cv.wait_for(lock, absl::ToChronoNanoseconds(wait), ready);
}

}  // namespace

Dispatcher::SessionStream::~SessionStream() = default;

const std::string& Dispatcher::SessionStream::session_id() const { return s_->id; }

void Dispatcher::SessionStream::Disconnected() { d_->Detach(s_); }

absl::StatusOr<std::optional<api::SessionMessage>> Dispatcher::SessionStream::Next(
    absl::Duration wait) {
  {
    std::unique_lock<std::mutex> lock(d_->mu_);
    if (!WaitFor(d_->cv_, lock, wait, [&] { return s_->closed || s_->node_gen != seen_gen_; })) {
      return std::nullopt;
    }
    if (s_->closed) return s_->why;
    seen_gen_ = s_->node_gen;
  }
  api::SessionMessage msg;
  msg.set_session_id(s_->id);
  auto view = d_->store_.View();
  if (auto node = view.Get<api::Node>(s_->node_id)) *msg.mutable_node() = *node;
  if (d_->options_.managers) {
    for (auto& peer : d_->options_.managers()) *msg.add_managers() = std::move(peer);
  }
  view.ForEach<api::Cluster>(store::All(), [&](const auto& c) {
    *msg.mutable_network_bootstrap_keys() = c->network_bootstrap_keys();
    msg.set_root_ca(c->root_ca().ca_cert());
    return false;
  });
  api::SessionMessage compare = msg;
  compare.mutable_node()->clear_meta();
  uint64_t fp = Fingerprint(compare);
  if (fp == sent_fp_) return std::nullopt;
  sent_fp_ = fp;
  return msg;
}

Dispatcher::AssignmentStream::~AssignmentStream() = default;

absl::StatusOr<std::optional<api::AssignmentsMessage>> Dispatcher::AssignmentStream::Next(
    absl::Duration wait) {
  if (!parts_.empty()) {
    api::AssignmentsMessage part = std::move(parts_.front());
    parts_.pop_front();
    return part;
  }
  {
    std::unique_lock<std::mutex> lock(d_->mu_);
    if (!first_) {
      if (!WaitFor(d_->cv_, lock, wait,
                   [&] { return s_->closed || s_->assign_gen != seen_gen_; })) {
        return std::nullopt;
      }
      // Gather what else changes in the batching window into the same message.
      if (!s_->closed && d_->options_.assignment_batch_wait > absl::ZeroDuration()) {
        WaitFor(d_->cv_, lock, d_->options_.assignment_batch_wait, [&] { return s_->closed; });
      }
    }
    if (s_->closed) return s_->why;
    seen_gen_ = s_->assign_gen;
  }
  auto view = d_->store_.View();
  Refs refs;
  SetOptions options{.ingress_everywhere = d_->options_.ingress_everywhere};
  ItemSet set = ComputeSet(view, s_->node_id, options, d_->cache_, &refs);
  {
    std::lock_guard<std::mutex> lock(d_->mu_);
    if (s_->closed) return s_->why;
    s_->networks = {refs.networks.begin(), refs.networks.end()};
    s_->secrets = {refs.secrets.begin(), refs.secrets.end()};
    s_->configs = {refs.configs.begin(), refs.configs.end()};
    // Commits after `view` that the watch processed before these references were recorded may
    // concern them: look again.
    if (d_->watch_version_ > view.version()) ++s_->assign_gen;
  }
  api::AssignmentsMessage msg;
  std::vector<api::AssignmentChange> changes;
  if (first_) {
    msg.set_type(api::AssignmentsMessage::TYPE_COMPLETE);
    changes = Complete(set, sent_);
  } else {
    changes = Diff(set, sent_);
    if (changes.empty()) return std::nullopt;
    msg.set_type(api::AssignmentsMessage::TYPE_INCREMENTAL);
    msg.set_applies_to(last_version_);
  }
  first_ = false;
  last_version_ = absl::StrCat(view.version());
  msg.set_results_in(last_version_);
  // Split into parts of at most max_message_bytes (a single larger change travels alone).
  size_t bytes = 0;
  for (auto& c : changes) {
    size_t size = c.ByteSizeLong();
    if (msg.changes_size() > 0 && bytes + size > d_->options_.max_message_bytes) {
      api::AssignmentsMessage next;
      next.set_type(msg.type());
      next.set_applies_to(msg.applies_to());
      next.set_results_in(msg.results_in());
      msg.set_more(true);
      parts_.push_back(std::move(msg));
      msg = std::move(next);
      bytes = 0;
    }
    bytes += size;
    *msg.add_changes() = std::move(c);
  }
  if (parts_.empty()) return msg;
  parts_.push_back(std::move(msg));
  api::AssignmentsMessage first = std::move(parts_.front());
  parts_.pop_front();
  return first;
}

}  // namespace shoal::manager::dispatcher
