// State: one immutable-by-convention version of the whole store (every kind, every index).
//
// A State is a value: copying it is cheap (7 kinds x 10 persistent-map roots) and the copy is
// independent, so the store publishes each applied version as shared_ptr<const State> and a
// transaction works on its own private copy. Index entries are keys "<value>\0<id>" in a
// PMap, so a lookup by value is one prefix scan.
//
// Thread safety: const methods may run concurrently on a shared State; mutation needs
// exclusive access to that State object (other States sharing nodes are unaffected).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "manager/store/kinds.h"
#include "manager/store/pmap.h"

namespace shoal::manager::store {

enum class EventType : uint8_t { kCreate, kUpdate, kDelete };
absl::string_view EventTypeName(EventType type);

// One object change. `object` is the new object (for kDelete: the deleted object); `old` is
// the previous object for kUpdate and null otherwise.
struct Change {
  EventType type;
  Kind kind;
  ObjectPtr object;
  ObjectPtr old;
};

class State {
 public:
  // Raft index of the last applied entry this state reflects (0 = empty store).
  uint64_t version() const { return version_; }
  void set_version(uint64_t v) { version_ = v; }

  ObjectPtr Get(Kind kind, absl::string_view id) const;
  size_t Count(Kind kind) const { return tables_[Idx(kind)].by_id.size(); }

  // fn(const ObjectPtr&) -> bool (false stops). Objects come in id order.
  template <typename F>
  void ForEach(Kind kind, F&& fn) const {
    tables_[Idx(kind)].by_id.ForEach([&](absl::string_view, const ObjectPtr& o) { return fn(o); });
  }
  template <typename F>
  void ForEachByIdPrefix(Kind kind, absl::string_view prefix, F&& fn) const {
    tables_[Idx(kind)].by_id.ForEachPrefix(
        prefix, [&](absl::string_view, const ObjectPtr& o) { return fn(o); });
  }
  // Objects whose `index` value equals `value` exactly (id order).
  template <typename F>
  void ForEachByIndex(Kind kind, Index index, absl::string_view value, F&& fn) const {
    std::string prefix(value);
    prefix.push_back('\0');
    ForEachIndexKey(kind, index, prefix, fn);
  }
  // Objects with an `index` value starting with `prefix` (index-key order).
  template <typename F>
  void ForEachByIndexPrefix(Kind kind, Index index, absl::string_view prefix, F&& fn) const {
    ForEachIndexKey(kind, index, prefix, fn);
  }

  // Id of the object of `kind` named `name` (case-insensitive) other than `except_id`, or "".
  std::string NameOwner(Kind kind, absl::string_view name, absl::string_view except_id) const;

  // Validates a create/update/delete against this state. Errors name the object and reason:
  //   create: InvalidArgument (bad object), AlreadyExists (id or unique name taken);
  //   update: NotFound, Aborted "update out of sequence" (meta.version is not the stored
  //           version), AlreadyExists (renamed onto a taken name);
  //   delete: NotFound.
  absl::Status CheckCreate(Kind kind, const Message& m) const;
  absl::Status CheckUpdate(Kind kind, const Message& m) const;
  absl::Status CheckDelete(Kind kind, absl::string_view id) const;

  // Validates and applies one store action. With `new_version` set (the raft index being
  // applied), stored objects get meta.version = *new_version and created_at is taken from the
  // stored object on update. Without it (a transaction's private preview), versions are left as
  // they are so later checks in the same transaction compare against the committed version.
  // With `consume`, the action's object is moved into the store instead of copied (the
  // action is left with an empty object). On error the state is unchanged.
  absl::Status ApplyAction(api::StoreAction& action, std::optional<uint64_t> new_version,
                           Change* change, bool consume = false);

  // Unchecked writes that keep every index consistent.
  void Put(Kind kind, ObjectPtr object);
  void Remove(Kind kind, absl::string_view id);

  // The changes that turn `from` into `to` (create/update/delete per object). Objects with the
  // same meta.version are unchanged: a version is the raft index of the entry that wrote it.
  static std::vector<Change> Diff(const State& from, const State& to);

 private:
  struct Table {
    PMap<ObjectPtr> by_id;
    std::array<PMap<bool>, kNumIndexes> indexes;
  };
  static size_t Idx(Kind k) { return static_cast<size_t>(k); }

  template <typename F>
  void ForEachIndexKey(Kind kind, Index index, absl::string_view prefix, F& fn) const {
    const Table& t = tables_[Idx(kind)];
    t.indexes[static_cast<size_t>(index)].ForEachPrefix(prefix, [&](absl::string_view key, bool) {
      absl::string_view id = key.substr(key.rfind('\0') + 1);
      const ObjectPtr* o = t.by_id.Find(id);
      return o == nullptr ? true : static_cast<bool>(fn(*o));
    });
  }

  uint64_t version_ = 0;
  std::array<Table, kNumKinds> tables_;
};

}  // namespace shoal::manager::store
