#include "manager/store/state.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/check.h"

namespace shoal::manager::store {
namespace {

std::string IndexKey(absl::string_view value, absl::string_view id) {
  return absl::StrCat(value, absl::string_view("\0", 1), id);
}

std::string Describe(Kind kind, absl::string_view id) {
  return absl::StrCat(KindName(kind), " ", id);
}

std::shared_ptr<Message> TakeObject(api::StoreAction& action, Kind kind, bool consume) {
  Message* src = MutableActionObject(&action, kind);
  std::shared_ptr<Message> out(src->New());
  if (consume) {
    out->GetReflection()->Swap(out.get(), src);
  } else {
    out->CopyFrom(*src);
  }
  return out;
}

}  // namespace

absl::string_view EventTypeName(EventType type) {
  switch (type) {
    case EventType::kCreate:
      return "create";
    case EventType::kUpdate:
      return "update";
    case EventType::kDelete:
      return "delete";
  }
  return "unknown";
}

ObjectPtr State::Get(Kind kind, absl::string_view id) const {
  const ObjectPtr* o = tables_[Idx(kind)].by_id.Find(id);
  return o == nullptr ? nullptr : *o;
}

std::string State::NameOwner(Kind kind, absl::string_view name, absl::string_view except_id) const {
  std::string owner;
  if (name.empty()) return owner;
  ForEachByIndex(kind, Index::kName, LowerName(name), [&](const ObjectPtr& o) {
    const std::string& id = ObjectId(kind, *o);
    if (id == except_id) return true;
    owner = id;
    return false;
  });
  return owner;
}

absl::Status State::CheckCreate(Kind kind, const Message& m) const {
  if (absl::Status s = CheckObject(kind, m); !s.ok()) return s;
  const std::string& id = ObjectId(kind, m);
  if (Get(kind, id) != nullptr) {
    return absl::AlreadyExistsError(
        absl::StrCat("create ", Describe(kind, id), ": an object with this id already exists"));
  }
  if (NamesUnique(kind)) {
    const std::string& name = ObjectName(kind, m);
    std::string owner = NameOwner(kind, name, id);
    if (!owner.empty()) {
      return absl::AlreadyExistsError(absl::StrCat("create ", Describe(kind, id), ": name \"", name,
                                                   "\" is already used by ",
                                                   Describe(kind, owner)));
    }
  }
  return absl::OkStatus();
}

absl::Status State::CheckUpdate(Kind kind, const Message& m) const {
  if (absl::Status s = CheckObject(kind, m); !s.ok()) return s;
  const std::string& id = ObjectId(kind, m);
  ObjectPtr cur = Get(kind, id);
  if (cur == nullptr) {
    return absl::NotFoundError(absl::StrCat("update ", Describe(kind, id), ": no such object"));
  }
  uint64_t have = ObjectMeta(kind, *cur).version().index();
  uint64_t based_on = ObjectMeta(kind, m).version().index();
  if (have != based_on) {
    return absl::AbortedError(absl::StrCat(
        "update out of sequence: ", Describe(kind, id), " is at version ", have,
        " but the update was based on version ", based_on, "; read it again and retry"));
  }
  if (NamesUnique(kind)) {
    const std::string& name = ObjectName(kind, m);
    if (LowerName(name) != LowerName(ObjectName(kind, *cur))) {
      std::string owner = NameOwner(kind, name, id);
      if (!owner.empty()) {
        return absl::AlreadyExistsError(absl::StrCat("update ", Describe(kind, id), ": name \"",
                                                     name, "\" is already used by ",
                                                     Describe(kind, owner)));
      }
    }
  }
  return absl::OkStatus();
}

absl::Status State::CheckDelete(Kind kind, absl::string_view id) const {
  if (Get(kind, id) == nullptr) {
    return absl::NotFoundError(absl::StrCat("delete ", Describe(kind, id), ": no such object"));
  }
  return absl::OkStatus();
}

absl::Status State::ApplyAction(api::StoreAction& action, std::optional<uint64_t> new_version,
                                Change* change, bool consume) {
  auto kind_or = ActionKind(action);
  if (!kind_or.ok()) return kind_or.status();
  Kind kind = *kind_or;
  const Message& obj = ActionObject(action);
  const std::string& id = ObjectId(kind, obj);
  change->kind = kind;
  change->old = nullptr;
  switch (action.kind()) {
    case api::StoreAction::KIND_CREATE: {
      if (absl::Status s = CheckCreate(kind, obj); !s.ok()) return s;
      std::shared_ptr<Message> stored = TakeObject(action, kind, consume);
      if (new_version)
        MutableObjectMeta(kind, stored.get())->mutable_version()->set_index(*new_version);
      change->type = EventType::kCreate;
      change->object = stored;
      Put(kind, std::move(stored));
      return absl::OkStatus();
    }
    case api::StoreAction::KIND_UPDATE: {
      if (absl::Status s = CheckUpdate(kind, obj); !s.ok()) return s;
      ObjectPtr cur = Get(kind, id);
      std::shared_ptr<Message> stored = TakeObject(action, kind, consume);
      if (new_version) {
        api::Meta* meta = MutableObjectMeta(kind, stored.get());
        meta->mutable_version()->set_index(*new_version);
        // created_at belongs to the store, not to the writer.
        const api::Meta& cur_meta = ObjectMeta(kind, *cur);
        if (cur_meta.has_created_at()) {
          *meta->mutable_created_at() = cur_meta.created_at();
        } else {
          meta->clear_created_at();
        }
      }
      change->type = EventType::kUpdate;
      change->object = stored;
      change->old = std::move(cur);
      Put(kind, std::move(stored));
      return absl::OkStatus();
    }
    case api::StoreAction::KIND_REMOVE: {
      if (absl::Status s = CheckDelete(kind, id); !s.ok()) return s;
      change->type = EventType::kDelete;
      change->object = Get(kind, id);
      Remove(kind, ObjectId(kind, *change->object));
      return absl::OkStatus();
    }
    default:
      break;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "store action on ", Describe(kind, id), ": unknown kind ", static_cast<int>(action.kind())));
}

void State::Put(Kind kind, ObjectPtr object) {
  Table& t = tables_[Idx(kind)];
  const std::string id = ObjectId(kind, *object);
  const ObjectPtr* old = t.by_id.Find(id);
  for (size_t i = 0; i < kNumIndexes; ++i) {
    std::vector<std::string> now = IndexValues(kind, static_cast<Index>(i), *object);
    std::vector<std::string> before;
    if (old != nullptr) before = IndexValues(kind, static_cast<Index>(i), **old);
    if (now == before) continue;  // the common case (status updates) touches few indexes
    for (const std::string& v : before) {
      if (std::find(now.begin(), now.end(), v) == now.end()) t.indexes[i].Erase(IndexKey(v, id));
    }
    for (const std::string& v : now) {
      if (std::find(before.begin(), before.end(), v) == before.end()) {
        t.indexes[i].Set(IndexKey(v, id), true);
      }
    }
  }
  t.by_id.Set(id, std::move(object));
}

void State::Remove(Kind kind, absl::string_view id) {
  Table& t = tables_[Idx(kind)];
  const ObjectPtr* old = t.by_id.Find(id);
  if (old == nullptr) return;
  ObjectPtr keep = *old;  // `old` points into the map we are about to change
  for (size_t i = 0; i < kNumIndexes; ++i) {
    for (const std::string& v : IndexValues(kind, static_cast<Index>(i), *keep)) {
      t.indexes[i].Erase(IndexKey(v, id));
    }
  }
  t.by_id.Erase(id);
}

std::vector<Change> State::Diff(const State& from, const State& to) {
  std::vector<Change> out;
  for (Kind kind : kAllKinds) {
    const Table& a = from.tables_[Idx(kind)];
    const Table& b = to.tables_[Idx(kind)];
    if (a.by_id.SameAs(b.by_id)) continue;
    // Merge-join of two id-ordered sequences.
    std::vector<std::pair<std::string, ObjectPtr>> left;
    left.reserve(a.by_id.size());
    a.by_id.ForEach([&](absl::string_view id, const ObjectPtr& o) {
      left.emplace_back(std::string(id), o);
      return true;
    });
    size_t i = 0;
    b.by_id.ForEach([&](absl::string_view id, const ObjectPtr& o) {
      while (i < left.size() && left[i].first < id) {
        out.push_back({EventType::kDelete, kind, left[i].second, nullptr});
        ++i;
      }
      if (i < left.size() && left[i].first == id) {
        const ObjectPtr& prev = left[i].second;
        // meta.version is the raft index of the entry that wrote the object, and every
        // replica applies the same entries, so an equal version means an equal object.
        bool same = prev == o || ObjectMeta(kind, *prev).version().index() ==
                                     ObjectMeta(kind, *o).version().index();
        if (!same) out.push_back({EventType::kUpdate, kind, o, prev});
        ++i;
      } else {
        out.push_back({EventType::kCreate, kind, o, nullptr});
      }
      return true;
    });
    for (; i < left.size(); ++i) out.push_back({EventType::kDelete, kind, left[i].second, nullptr});
  }
  return out;
}

}  // namespace shoal::manager::store
