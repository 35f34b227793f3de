#include "manager/store/testing/store_cluster.h"

#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/status.h"
#include "manager/raft/deferred_proposer.h"

namespace shoal::manager::store::testing {

// The member's Raft service on its server. Servers exist before the raft nodes (a new
// cluster's bootstrap list needs every member's port), so calls are forwarded to whichever
// node currently runs; UNAVAILABLE while there is none (the sender retries).
class StoreCluster::Forwarder final : public api::Raft::Service {
 public:
  void Set(api::Raft::Service* target) { target_.store(target); }
  grpc::Status ProcessRaftMessage(grpc::ServerContext* ctx, const api::RaftMessage* m,
                                  api::ProcessRaftMessageResponse* r) override {
    api::Raft::Service* t = target_.load();
    if (t == nullptr) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "raft node not running");
    return t->ProcessRaftMessage(ctx, m, r);
  }
  grpc::Status StreamRaftMessage(grpc::ServerContext* ctx,
                                 grpc::ServerReader<api::RaftMessage>* reader,
                                 api::ProcessRaftMessageResponse* r) override {
    api::Raft::Service* t = target_.load();
    if (t == nullptr) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "raft node not running");
    return t->StreamRaftMessage(ctx, reader, r);
  }

 private:
  std::atomic<api::Raft::Service*> target_{nullptr};
};

struct StoreCluster::Member {
  // One run of the member (destroyed node first, then store, then proposer).
  struct Incarnation {
    std::unique_ptr<raft::DeferredProposer> proposer;
    std::unique_ptr<MemoryStore> store;
    std::unique_ptr<raft::RaftNode> node;
  };
  uint64_t id = 0;
  std::string dir;
  int port = 0;
  std::string addr;
  Forwarder forwarder;
  Incarnation live;
  // Stopped incarnations stay allocated until the cluster is destroyed, so a thread that still
  // holds a store pointer gets Unavailable instead of a use-after-free.
  std::vector<Incarnation> retired;
  std::unique_ptr<grpc::Server> server;
};

absl::StatusOr<std::unique_ptr<StoreCluster>> StoreCluster::Start(StoreClusterOptions options) {
  if (options.managers < 1) return absl::InvalidArgumentError("store cluster: managers must be >= 1");
  std::unique_ptr<StoreCluster> c(new StoreCluster(std::move(options)));
  if (c->opts_.dir.empty()) {
    char tmpl[] = "/tmp/shoal-store-cluster-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) return base::ErrnoStatus(errno, "mkdtemp ", tmpl);
    c->opts_.dir = tmpl;
    c->own_dir_ = true;
  }
  for (uint64_t id = 1; id <= static_cast<uint64_t>(c->opts_.managers); ++id) {
    auto m = std::make_unique<Member>();
    m->id = id;
    m->dir = absl::StrCat(c->opts_.dir, "/m", id);
    RETURN_IF_ERROR(c->StartServer(*m));
    c->members_[id] = std::move(m);
  }
  std::vector<api::RaftMember> all = c->Members();
  for (auto& [id, m] : c->members_) RETURN_IF_ERROR(c->StartMember(*m, all, {}));
  return c;
}

StoreCluster::StoreCluster(StoreClusterOptions options) : opts_(std::move(options)) {}

StoreCluster::~StoreCluster() {
  for (auto& [id, m] : members_) StopMember(*m);
  members_.clear();
  if (own_dir_) {
    std::error_code ec;
    std::filesystem::remove_all(opts_.dir, ec);
  }
}

absl::Status StoreCluster::StartServer(Member& m) {
  grpc::ServerBuilder b;
  int selected = 0;
  b.AddListeningPort(absl::StrCat("127.0.0.1:", m.port), grpc::InsecureServerCredentials(),
                     &selected);
  b.RegisterService(&m.forwarder);
  if (opts_.add_services) opts_.add_services(m.id, b);
  m.server = b.BuildAndStart();
  if (m.server == nullptr || selected == 0) {
    m.server.reset();
    return absl::UnavailableError(
        absl::StrCat("store cluster: manager ", m.id, " cannot listen on 127.0.0.1:", m.port));
  }
  m.port = selected;
  m.addr = absl::StrCat("127.0.0.1:", selected);
  return absl::OkStatus();
}

absl::Status StoreCluster::StartMember(Member& m, const std::vector<api::RaftMember>& bootstrap,
                                       const std::vector<api::RaftMember>& peers) {
  Member::Incarnation inc;
  inc.proposer = std::make_unique<raft::DeferredProposer>();
  inc.store = std::make_unique<MemoryStore>(inc.proposer.get(), &clock_, &random_, opts_.store);
  raft::NodeOptions o;
  o.id = m.id;
  o.addr = m.addr;
  o.dir = m.dir;
  o.tick = opts_.tick;
  o.raft.election_tick = opts_.election_tick;
  o.bootstrap = bootstrap;
  o.peers = peers;
  o.snapshot_interval = opts_.snapshot_interval;
  o.snapshot_keep = opts_.snapshot_keep;
  if (opts_.node_options) opts_.node_options(m.id, o);
  ASSIGN_OR_RETURN(inc.node, raft::RaftNode::Create(std::move(o), inc.store.get()));
  inc.proposer->Set(inc.node.get());
  m.forwarder.Set(inc.node->service());
  inc.node->Start();
  m.live = std::move(inc);
  return absl::OkStatus();
}

void StoreCluster::StopMember(Member& m) {
  if (m.server != nullptr) {
    m.server->Shutdown(std::chrono::system_clock::now());
    m.server.reset();
  }
  m.forwarder.Set(nullptr);
  if (m.live.node != nullptr) {
    m.live.node->Stop();
    m.retired.push_back(std::move(m.live));
    m.live = Member::Incarnation{};
  }
}

std::vector<api::RaftMember> StoreCluster::Members() const {
  std::vector<api::RaftMember> out;
  for (auto& [id, m] : members_) {
    api::RaftMember r;
    r.set_raft_id(id);
    r.set_addr(m->addr);
    out.push_back(std::move(r));
  }
  return out;
}

StoreCluster::Member* StoreCluster::Find(uint64_t id) const {
  auto it = members_.find(id);
  return it == members_.end() ? nullptr : it->second.get();
}

std::vector<uint64_t> StoreCluster::ids() const {
  std::vector<uint64_t> out;
  for (auto& [id, m] : members_) out.push_back(id);
  return out;
}

std::vector<uint64_t> StoreCluster::running() const {
  std::vector<uint64_t> out;
  for (auto& [id, m] : members_) {
    if (m->live.node != nullptr) out.push_back(id);
  }
  return out;
}

bool StoreCluster::is_running(uint64_t id) const {
  Member* m = Find(id);
  return m != nullptr && m->live.node != nullptr;
}

MemoryStore* StoreCluster::store(uint64_t id) const {
  Member* m = Find(id);
  return m == nullptr ? nullptr : m->live.store.get();
}

raft::RaftNode* StoreCluster::node(uint64_t id) const {
  Member* m = Find(id);
  return m == nullptr ? nullptr : m->live.node.get();
}

std::string StoreCluster::addr(uint64_t id) const {
  Member* m = Find(id);
  return m == nullptr ? "" : m->addr;
}

std::string StoreCluster::dir(uint64_t id) const {
  Member* m = Find(id);
  return m == nullptr ? "" : m->dir;
}

absl::StatusOr<uint64_t> StoreCluster::WaitLeader(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    for (uint64_t id : running()) {
      raft::RaftNode* n = node(id);
      if (!n->IsLeader()) continue;
      // A leader's read barrier completes once it committed and applied an entry of its term.
      absl::Duration left = std::min(deadline - absl::Now(), absl::Seconds(1));
      if (left > absl::ZeroDuration() && n->ReadBarrier(left).ok() && n->IsLeader()) return id;
    }
    absl::SleepFor(absl::Milliseconds(5));
  }
  return absl::DeadlineExceededError(
      absl::StrCat("store cluster: no leader ready within ", absl::FormatDuration(timeout)));
}

std::vector<uint64_t> StoreCluster::Followers(uint64_t leader) const {
  std::vector<uint64_t> out;
  for (uint64_t id : running()) {
    if (id != leader) out.push_back(id);
  }
  return out;
}

absl::Status StoreCluster::WaitVersion(uint64_t version, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    uint64_t lagging = 0;
    for (uint64_t id : running()) {
      if (store(id)->version() < version) {
        lagging = id;
        break;
      }
    }
    if (lagging == 0) return absl::OkStatus();
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("store cluster: manager ", lagging, " at version ",
                       store(lagging)->version(), ", not ", version, " within ",
                       absl::FormatDuration(timeout)));
    }
    absl::SleepFor(absl::Milliseconds(5));
  }
}

absl::Status StoreCluster::WaitConverged(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  ASSIGN_OR_RETURN(uint64_t leader, WaitLeader(timeout));
  while (true) {
    const uint64_t v = store(leader)->version();
    bool same = true;
    for (uint64_t id : running()) same = same && store(id)->version() == v;
    if (same) return absl::OkStatus();
    if (absl::Now() >= deadline) {
      std::string versions;
      for (uint64_t id : running()) absl::StrAppend(&versions, " m", id, "=", store(id)->version());
      return absl::DeadlineExceededError(
          absl::StrCat("store cluster: not converged within ", absl::FormatDuration(timeout),
                       ":", versions));
    }
    absl::SleepFor(absl::Milliseconds(5));
  }
}

absl::Status StoreCluster::Stop(uint64_t id) {
  Member* m = Find(id);
  if (m == nullptr) return absl::NotFoundError(absl::StrCat("store cluster: no manager ", id));
  StopMember(*m);
  return absl::OkStatus();
}

absl::Status StoreCluster::Restart(uint64_t id) {
  Member* m = Find(id);
  if (m == nullptr) return absl::NotFoundError(absl::StrCat("store cluster: no manager ", id));
  if (m->live.node != nullptr) {
    return absl::FailedPreconditionError(absl::StrCat("store cluster: manager ", id, " runs"));
  }
  RETURN_IF_ERROR(StartServer(*m));
  return StartMember(*m, {}, Members());
}

absl::Status StoreCluster::Disconnect(uint64_t id) {
  Member* m = Find(id);
  if (m == nullptr || m->server == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("store cluster: manager ", id, " has no server to disconnect"));
  }
  m->server->Shutdown(std::chrono::system_clock::now());
  m->server.reset();
  return absl::OkStatus();
}

absl::Status StoreCluster::Reconnect(uint64_t id) {
  Member* m = Find(id);
  if (m == nullptr || m->server != nullptr || m->live.node == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("store cluster: manager ", id, " is not a disconnected running member"));
  }
  return StartServer(*m);
}

absl::StatusOr<uint64_t> StoreCluster::AddManager(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  ASSIGN_OR_RETURN(uint64_t leader, WaitLeader(timeout));
  const uint64_t id = members_.empty() ? 1 : members_.rbegin()->first + 1;
  auto owned = std::make_unique<Member>();
  Member& m = *owned;
  m.id = id;
  m.dir = absl::StrCat(opts_.dir, "/m", id);
  RETURN_IF_ERROR(StartServer(m));
  std::vector<api::RaftMember> peers = Members();
  if (absl::Status s = StartMember(m, {}, peers); !s.ok()) {
    StopMember(m);
    return s;
  }
  members_[id] = std::move(owned);
  api::RaftMember me;
  me.set_raft_id(id);
  me.set_addr(m.addr);
  absl::Status s = node(leader)->AddMember(me, deadline - absl::Now());
  // Promoted to voter by the leader once caught up; then its store matches the leader's.
  while (s.ok()) {
    raft::NodeStatus st = node(leader)->Status();
    bool voter = std::any_of(st.members.begin(), st.members.end(),
                             [&](const api::RaftMember& r) { return r.raft_id() == id; }) &&
                 std::find(st.learners.begin(), st.learners.end(), id) == st.learners.end();
    if (voter && store(id)->version() >= store(leader)->version()) return id;
    if (absl::Now() >= deadline) {
      s = absl::DeadlineExceededError(absl::StrCat("store cluster: manager ", id,
                                                   " did not become a caught-up voter in time"));
      break;
    }
    absl::SleepFor(absl::Milliseconds(5));
  }
  StopMember(m);
  return base::Annotate(s, absl::StrCat("add manager ", id));
}

absl::Status StoreCluster::RemoveManager(uint64_t id, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  Member* m = Find(id);
  if (m == nullptr) return absl::NotFoundError(absl::StrCat("store cluster: no manager ", id));
  ASSIGN_OR_RETURN(uint64_t leader, WaitLeader(timeout));
  if (leader == id) {
    std::vector<uint64_t> others = Followers(leader);
    if (others.empty()) return absl::FailedPreconditionError("cannot remove the only manager");
    RETURN_IF_ERROR(node(leader)->TransferLeadership(others.front(), deadline - absl::Now()));
    ASSIGN_OR_RETURN(leader, WaitLeader(deadline - absl::Now()));
  }
  RETURN_IF_ERROR(node(leader)->RemoveMember(id, deadline - absl::Now()));
  StopMember(*m);
  // Keep the stopped incarnations alive until the cluster goes (see Member::retired).
  retired_members_.push_back(std::move(members_[id]));
  members_.erase(id);
  return absl::OkStatus();
}

}  // namespace shoal::manager::store::testing
