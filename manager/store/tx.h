// Tx: a write transaction, built by MemoryStore::Update / Batch.
//
// A Tx starts from the latest applied version, reads its own writes (every index included:
// it works on a private copy-on-write State), and records one StoreAction per touched object.
// Every write is validated immediately against the transaction's view, so errors surface at the
// call site: InvalidArgument (missing id / name), AlreadyExists (id or name taken), NotFound,
// and Aborted "update out of sequence" when the object's meta.version is not the version the
// store holds (optimistic concurrency: read, modify a copy, Update; on Aborted read again).
// The same checks run again when the raft entry is applied, on every replica, so a transaction
// that raced with another writer is rejected as a whole there.
//
// Meta is the store's: the Tx stamps meta.updated_at (and created_at on create) with the
// proposer's clock so all replicas store the same time; the applier sets meta.version to the
// raft index and keeps the stored created_at.
//
// Several writes to one object collapse into one action (create+update = create with the last
// content, create+delete = nothing, update+delete = delete, delete+create = update).
// Deletes do not check the version (as in SwarmKit).
//
// Thread safety: a Tx belongs to the thread running the transaction function.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "manager/store/kinds.h"
#include "manager/store/read_tx.h"
#include "manager/store/state.h"

namespace shoal::manager::store {

class Tx : public ReadTx {
 public:
  Tx(const State& base, absl::Time now);
  Tx(const Tx&) = delete;
  Tx& operator=(const Tx&) = delete;

  template <typename T>
  absl::Status Create(const T& object) {
    return Create(KindOf<T>::value, object);
  }
  template <typename T>
  absl::Status Update(const T& object) {
    return Update(KindOf<T>::value, object);
  }
  template <typename T>
  absl::Status Delete(absl::string_view id) {
    return Delete(KindOf<T>::value, id);
  }

  absl::Status Create(Kind kind, const Message& object);
  absl::Status Update(Kind kind, const Message& object);
  absl::Status Delete(Kind kind, absl::string_view id);

  // Number of recorded actions and their serialized size.
  size_t changes() const { return live_; }
  size_t bytes() const { return bytes_; }

  // The recorded actions in order.
  std::vector<api::StoreAction> Actions() const;
  // Moves the recorded actions into `request` (the Tx is spent afterwards).
  void MoveActionsTo(api::InternalRaftRequest* request);

  // Marks a point the transaction can roll back to (cheap: the State is persistent and only
  // actions changed after the mark are saved). Used by Batch to undo a failed or oversized
  // sub-update. One mark at a time; a new Mark() replaces the previous one.
  void Mark();
  void RollbackToMark();

 private:
  static std::string Key(Kind kind, absl::string_view id);
  void Put(const std::string& key, api::StoreAction action);  // append or replace
  void Drop(const std::string& key);

  struct Undo {
    std::string key;
    size_t index;
    std::optional<api::StoreAction> action;
    size_t size;
  };
  void SaveForUndo(const std::string& key, size_t index);

  State state_;
  absl::Time now_;
  struct MarkState {
    State state;
    size_t actions = 0;
    size_t live = 0;
    size_t bytes = 0;
    std::vector<Undo> undo;
  };
  std::optional<MarkState> mark_;
  std::vector<std::optional<api::StoreAction>> actions_;
  std::vector<size_t> sizes_;
  absl::flat_hash_map<std::string, size_t> pos_;  // Key -> index in actions_
  size_t live_ = 0;
  size_t bytes_ = 0;
};

}  // namespace shoal::manager::store
