// RaftNode: the published status snapshot, per-peer reachability and stage latencies.
#include <algorithm>

#include "base/check.h"
#include "base/log.h"
#include "base/status.h"
#include "manager/raft/node_internal.h"

namespace shoal::manager::raft {

std::string RaftNode::StageStats(bool reset) {
  std::lock_guard<std::mutex> l(stats_mu_);
  std::string out;
  auto line = [&](const char* name, const LatencyHistogram& h) {
    out += std::string(name) + ": " + h.Summary() + "\n";
  };
  line("inbox_wait", stages_.inbox_wait);
  line("wal_save", stages_.wal_save);
  line("ready", stages_.ready);
  line("leader_first_ack", stages_.first_ack);
  line("leader_commit", stages_.commit);
  line("follower_ack", stages_.follower_ack);
  if (reset) stages_ = StageTimes();
  return out + transport_.Stats(reset);
}

NodeStatus RaftNode::Status() const {
  std::lock_guard<std::mutex> l(status_mu_);
  return status_;
}

const char* ReachabilityName(Reachability r) {
  switch (r) {
    case Reachability::kUnknown:
      return "unknown";
    case Reachability::kReachable:
      return "reachable";
    case Reachability::kUnreachable:
      return "unreachable";
  }
  return "?";
}

std::vector<PeerStatus> RaftNode::Peers() const {
  const auto now = std::chrono::steady_clock::now();
  const auto timeout = absl::ToChronoNanoseconds(opts_.tick * opts_.raft.election_tick);
  std::map<uint64_t, std::chrono::steady_clock::time_point> contact;
  {
    std::lock_guard<std::mutex> l(contact_mu_);
    contact = last_contact_;
  }
  std::vector<PeerStatus> out;
  std::lock_guard<std::mutex> l(status_mu_);
  const bool leader = status_.role == Role::kLeader;
  const bool led_long_enough = leader && now - leader_since_ >= timeout;
  for (const api::RaftMember& m : status_.members) {
    PeerStatus p;
    p.raft_id = m.raft_id();
    p.addr = m.addr();
    p.self = p.raft_id == opts_.id;
    p.is_leader = p.raft_id == status_.leader;
    p.learner = std::find(status_.learners.begin(), status_.learners.end(), p.raft_id) !=
                status_.learners.end();
    if (leader) {
      auto it = match_.find(p.raft_id);
      if (it != match_.end()) p.match = it->second;
    }
    auto c = contact.find(p.raft_id);
    const bool recent = c != contact.end() && now - c->second < timeout;
    if (c != contact.end()) p.since_contact = absl::FromChrono(now - c->second);
    if (p.self) {
      p.reachability = Reachability::kReachable;
      p.since_contact = absl::ZeroDuration();
    } else if (recent && (leader || p.is_leader)) {
      p.reachability = Reachability::kReachable;
    } else if (led_long_enough || (!leader && p.is_leader)) {
      p.reachability = Reachability::kUnreachable;
    }
    out.push_back(std::move(p));
  }
  return out;
}

void RaftNode::PublishStatus() {
  NodeStatus s;
  s.id = opts_.id;
  s.term = core_->term();
  s.leader = core_->lead();
  s.role = core_->role();
  s.commit = core_->log().committed();
  s.applied = applied_;
  for (auto& [id, m] : members_) s.members.push_back(m);
  s.learners.assign(core_->learners().begin(), core_->learners().end());
  const bool leader = s.role == Role::kLeader;
  std::lock_guard<std::mutex> l(status_mu_);
  if (leader && status_.role != Role::kLeader) leader_since_ = std::chrono::steady_clock::now();
  match_.clear();
  if (leader) {
    for (const api::RaftMember& m : s.members) {
      if (const Progress* pr = core_->progress(m.raft_id())) match_[m.raft_id()] = pr->match;
    }
  }
  status_ = std::move(s);
  is_leader_ = leader;
}

}  // namespace shoal::manager::raft
