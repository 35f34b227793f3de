#include "manager/store/store.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "base/log.h"
#include "base/status.h"

namespace shoal::manager::store {
namespace {

// Upper bound of the InternalRaftRequest encoding around the actions: per action a tag and a
// length prefix (<= 1 + 5 bytes), plus the request id (<= 11 bytes).
size_t EncodedSize(const Tx& tx) { return tx.bytes() + 6 * tx.changes() + 11; }

}  // namespace

MemoryStore::MemoryStore(raft::Proposer* proposer, base::Clock* clock, base::Random* random,
                         StoreOptions options)
    : proposer_(proposer),
      clock_(clock),
      options_(options),
      hub_(std::make_shared<WatchHub>(options.history_commits, options.history_events,
                                      options.watch_queue_limit)),
      root_(std::make_shared<const State>()),
      // Request ids only need to be unique among this manager's in-flight proposals; a random
      // start keeps another manager's entries (same id space) from waking a local waiter.
      next_request_id_(random->Uint64() | 1) {}

MemoryStore::~MemoryStore() { hub_->CloseAll(absl::CancelledError("store shut down")); }

std::shared_ptr<const State> MemoryStore::Current() const {
  std::lock_guard<std::mutex> l(root_mu_);
  return root_;
}

ReadView MemoryStore::View() const { return ReadView(Current()); }

absl::StatusOr<uint64_t> MemoryStore::Update(absl::FunctionRef<absl::Status(Tx&)> fn) {
  std::lock_guard<std::mutex> wl(write_mu_);
  if (!proposer_->IsLeader()) {
    return absl::FailedPreconditionError("store update: this manager is not the raft leader");
  }
  Tx tx(*Current(), clock_->Now());
  RETURN_IF_ERROR(fn(tx));
  return Commit(tx);
}

absl::StatusOr<uint64_t> MemoryStore::BatchUpdate(absl::FunctionRef<absl::Status(Batch&)> fn) {
  std::lock_guard<std::mutex> wl(write_mu_);
  if (!proposer_->IsLeader()) {
    return absl::FailedPreconditionError("store batch: this manager is not the raft leader");
  }
  Batch batch(this);
  absl::Status s = fn(batch);
  if (s.ok()) s = batch.Flush();
  if (!s.ok()) return s;
  return batch.version_ != 0 ? batch.version_ : Current()->version();
}

absl::Status Batch::Update(absl::FunctionRef<absl::Status(Tx&)> fn) {
  const StoreOptions& o = store_->options_;
  if (tx_ == nullptr) tx_ = std::make_unique<Tx>(*store_->Current(), store_->clock_->Now());
  bool had_changes = tx_->changes() > 0;
  tx_->Mark();
  if (absl::Status s = fn(*tx_); !s.ok()) {
    tx_->RollbackToMark();
    return s;
  }
  if (had_changes &&
      (tx_->changes() > o.max_changes_per_tx || EncodedSize(*tx_) > o.max_tx_bytes)) {
    // This sub-update does not fit: commit what came before, then redo it on its own.
    tx_->RollbackToMark();
    RETURN_IF_ERROR(Flush());
    tx_ = std::make_unique<Tx>(*store_->Current(), store_->clock_->Now());
    if (absl::Status s = fn(*tx_); !s.ok()) {
      tx_.reset();
      return s;
    }
  }
  // Commit early at the change limit or at 3/4 of the byte limit (SwarmKit's threshold), so
  // the next sub-update most likely fits.
  if (tx_->changes() >= o.max_changes_per_tx || EncodedSize(*tx_) >= o.max_tx_bytes / 4 * 3) {
    return Flush();
  }
  return absl::OkStatus();
}

absl::Status Batch::Flush() {
  if (tx_ == nullptr) return absl::OkStatus();
  std::unique_ptr<Tx> tx = std::move(tx_);
  if (tx->changes() == 0) return absl::OkStatus();
  ASSIGN_OR_RETURN(version_, store_->Commit(*tx));
  ++transactions_;
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> MemoryStore::Commit(Tx& tx) {
  const size_t changes = tx.changes();
  if (changes == 0) return Current()->version();
  api::InternalRaftRequest request;
  const uint64_t id = next_request_id_++;
  request.set_id(id);
  tx.MoveActionsTo(&request);
  std::string data = request.SerializeAsString();
  if (data.size() > options_.max_tx_bytes) {
    return absl::ResourceExhaustedError(
        absl::StrCat("store transaction of ", data.size(), " bytes (", changes,
                     " changes) exceeds the limit of ", options_.max_tx_bytes,
                     " bytes per raft entry; split it into smaller updates (BatchUpdate does)"));
  }
  {
    std::lock_guard<std::mutex> l(pending_mu_);
    pending_[id] = Pending{};
  }
  absl::StatusOr<uint64_t> proposed = proposer_->ProposeAndWait(data, options_.propose_timeout);

  std::unique_lock<std::mutex> l(pending_mu_);
  auto done = [&] { return pending_.at(id).done; };
  if (proposed.ok()) {
    // The raft node returns once the entry is applied locally; wait anyway in case its apply
    // thread is still publishing.
    pending_cv_.wait_for(l, absl::ToChronoNanoseconds(options_.propose_timeout), done);
  }
  Pending result = pending_.at(id);
  pending_.erase(id);
  if (result.done) {
    if (!result.status.ok()) return result.status;
    return result.index;
  }
  if (!proposed.ok()) {
    return base::Annotate(proposed.status(),
                          absl::StrCat("propose store transaction (", changes, " changes)"));
  }
  return absl::DeadlineExceededError(absl::StrCat(
      "store transaction committed at index ", *proposed, " but not applied within ",
      absl::FormatDuration(options_.propose_timeout), "; outcome unknown, read again"));
}

void MemoryStore::Resolve(uint64_t request_id, absl::Status status, uint64_t index) {
  std::lock_guard<std::mutex> l(pending_mu_);
  auto it = pending_.find(request_id);
  if (it == pending_.end()) return;  // not ours, or the proposer gave up
  it->second = Pending{true, std::move(status), index};
  pending_cv_.notify_all();
}

void MemoryStore::Publish(std::shared_ptr<const State> next, std::vector<Change> changes) {
  const uint64_t version = next->version();
  CommitPtr commit;
  if (!changes.empty()) {
    auto c = std::make_shared<store::Commit>();
    c->version = version;
    c->events.reserve(changes.size());
    for (Change& ch : changes) {
      c->events.push_back(
          Event{ch.type, ch.kind, version, std::move(ch.object), std::move(ch.old)});
    }
    commit = std::move(c);
  }
  hub_->Publish(version, std::move(commit), [&] {
    std::lock_guard<std::mutex> l(root_mu_);
    root_ = std::move(next);
  });
}

void MemoryStore::Apply(uint64_t index, absl::string_view data) {
  std::lock_guard<std::mutex> al(apply_mu_);
  std::shared_ptr<const State> cur = Current();
  if (index <= cur->version()) {
    base::Logger("store")->warn("ignoring raft entry {}: the store is already at version {}", index,
                                cur->version());
    return;
  }
  auto next = std::make_shared<State>(*cur);
  next->set_version(index);
  std::vector<Change> changes;
  absl::Status status;
  uint64_t request_id = 0;
  api::InternalRaftRequest request;
  if (!request.ParseFromArray(data.data(), static_cast<int>(data.size()))) {
    status = absl::DataLossError(
        absl::StrCat("raft entry ", index, ": not a valid InternalRaftRequest"));
  } else {
    request_id = request.id();
    for (api::StoreAction& action : *request.mutable_actions()) {
      Change change;
      status = next->ApplyAction(action, index, &change, /*consume=*/true);
      if (!status.ok()) break;
      changes.push_back(std::move(change));
    }
  }
  if (!status.ok()) {
    // All or nothing: the entry only advances the version.
    base::Logger("store")->warn("raft entry {} rejected: {}", index, std::string(status.message()));
    status = base::Annotate(status, absl::StrCat("store transaction rejected at index ", index));
    next = std::make_shared<State>(*cur);
    next->set_version(index);
    changes.clear();
  }
  Publish(std::move(next), std::move(changes));
  if (request_id != 0) Resolve(request_id, std::move(status), index);
}

absl::StatusOr<std::string> MemoryStore::Snapshot() { return SerializeState(*Current()); }

absl::StatusOr<raft::StateMachine::Serializer> MemoryStore::CaptureSnapshot() {
  std::shared_ptr<const State> s = Current();  // immutable: safe to read from any thread
  return Serializer([s] { return SerializeState(*s); });
}

absl::StatusOr<std::string> MemoryStore::SerializeState(const State& state) {
  const State* s = &state;
  api::StoreSnapshot snapshot;
  for (Kind kind : kAllKinds) {
    s->ForEach(kind, [&](const ObjectPtr& o) {
      AddToSnapshot(kind, *o, &snapshot);
      return true;
    });
  }
  std::string out;
  if (!snapshot.SerializeToString(&out)) {
    return absl::InternalError("store snapshot: serialization failed");
  }
  return out;
}

absl::Status MemoryStore::Restore(uint64_t index, absl::string_view data) {
  std::lock_guard<std::mutex> al(apply_mu_);
  api::StoreSnapshot snapshot;
  if (!snapshot.ParseFromArray(data.data(), static_cast<int>(data.size()))) {
    return absl::DataLossError(
        absl::StrCat("restore store snapshot at index ", index, ": not a valid StoreSnapshot"));
  }
  std::shared_ptr<const State> cur = Current();
  if (index < cur->version()) {
    return absl::FailedPreconditionError(absl::StrCat("restore store snapshot at index ", index,
                                                      ": the store is already at version ",
                                                      cur->version()));
  }
  auto next = std::make_shared<State>();
  next->set_version(index);
  for (Kind kind : kAllKinds) {
    for (int i = 0; i < SnapshotCount(kind, snapshot); ++i) {
      const Message& m = SnapshotObject(kind, snapshot, i);
      // Validate as a create so a damaged snapshot cannot break the index invariants.
      if (absl::Status s = next->CheckCreate(kind, m); !s.ok()) {
        return base::Annotate(s, absl::StrCat("restore store snapshot at index ", index));
      }
      std::shared_ptr<Message> copy(m.New());
      copy->CopyFrom(m);
      next->Put(kind, std::move(copy));
    }
  }
  Publish(next, State::Diff(*cur, *next));
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Watcher>> MemoryStore::Watch(WatchOptions options) {
  return hub_->Subscribe(std::move(options), nullptr);
}

absl::StatusOr<std::unique_ptr<Watcher>> MemoryStore::ViewAndWatch(
    absl::FunctionRef<void(const ReadView&)> fn, WatchOptions options) {
  std::shared_ptr<const State> snap;
  options.from_version.reset();
  // Under the hub lock no commit can be published, so the view and the watcher's start agree.
  ASSIGN_OR_RETURN(std::unique_ptr<Watcher> w,
                   hub_->Subscribe(std::move(options), [&] { snap = Current(); }));
  fn(ReadView(std::move(snap)));
  return w;
}

}  // namespace shoal::manager::store
