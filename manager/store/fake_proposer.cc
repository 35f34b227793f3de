#include "manager/store/fake_proposer.h"

namespace shoal::manager::store {

void FakeProposer::Attach(raft::StateMachine* sm) {
  std::lock_guard<std::mutex> l(mu_);
  machines_.push_back(sm);
}

bool FakeProposer::IsLeader() const {
  std::lock_guard<std::mutex> l(mu_);
  return leader_;
}

void FakeProposer::SetLeader(bool leader) {
  std::lock_guard<std::mutex> l(mu_);
  leader_ = leader;
}

void FakeProposer::FailNext(absl::Status status, int count) {
  std::lock_guard<std::mutex> l(mu_);
  fail_status_ = std::move(status);
  fail_count_ = count;
}

void FakeProposer::ApplyThenFail(absl::Status status, int count) {
  std::lock_guard<std::mutex> l(mu_);
  after_status_ = std::move(status);
  after_count_ = count;
}

void FakeProposer::SetBeforeAppend(std::function<void()> hook) {
  std::lock_guard<std::mutex> l(mu_);
  before_append_ = std::move(hook);
}

void FakeProposer::SkipIndexes(uint64_t n) {
  std::lock_guard<std::mutex> l(mu_);
  skip_ += n;
}

void FakeProposer::set_keep_log(bool keep) {
  std::lock_guard<std::mutex> l(mu_);
  keep_log_ = keep;
}

uint64_t FakeProposer::AppendLocked(std::string data) {
  last_index_ += 1 + skip_;
  skip_ = 0;
  if (keep_log_) log_.emplace_back(last_index_, data);
  for (raft::StateMachine* sm : machines_) sm->Apply(last_index_, data);
  return last_index_;
}

uint64_t FakeProposer::AppendForeign(std::string data) {
  std::lock_guard<std::mutex> l(mu_);
  return AppendLocked(std::move(data));
}

absl::StatusOr<uint64_t> FakeProposer::ProposeAndWait(absl::string_view data,
                                                      absl::Duration timeout) {
  std::function<void()> hook;
  {
    std::lock_guard<std::mutex> l(mu_);
    ++proposals_;
    if (!leader_) return absl::FailedPreconditionError("not the leader");
    if (fail_count_ > 0) {
      --fail_count_;
      return fail_status_;
    }
    hook = before_append_;
  }
  if (hook) hook();
  std::lock_guard<std::mutex> l(mu_);
  uint64_t index = AppendLocked(std::string(data));
  if (after_count_ > 0) {
    --after_count_;
    return after_status_;
  }
  return index;
}

std::vector<std::pair<uint64_t, std::string>> FakeProposer::Log() const {
  std::lock_guard<std::mutex> l(mu_);
  return log_;
}

uint64_t FakeProposer::last_index() const {
  std::lock_guard<std::mutex> l(mu_);
  return last_index_;
}

int FakeProposer::proposals() const {
  std::lock_guard<std::mutex> l(mu_);
  return proposals_;
}

}  // namespace shoal::manager::store
