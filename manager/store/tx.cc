#include "manager/store/tx.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "base/check.h"
#include "google/protobuf/descriptor.h"

namespace shoal::manager::store {
namespace {

void SetTimestamp(absl::Time t, google::protobuf::Timestamp* ts) {
  int64_t secs = absl::ToUnixSeconds(t);
  ts->set_seconds(secs);
  ts->set_nanos(static_cast<int32_t>(absl::ToInt64Nanoseconds(t - absl::FromUnixSeconds(secs))));
}

api::StoreAction MakeAction(api::StoreAction::Kind op, Kind kind, const Message& object) {
  api::StoreAction a;
  a.set_kind(op);
  MutableActionObject(&a, kind)->CopyFrom(object);
  return a;
}

// A delete carries only id and meta: the appliers have the object.
api::StoreAction MakeDelete(Kind kind, absl::string_view id, const api::Meta& meta) {
  api::StoreAction a;
  a.set_kind(api::StoreAction::KIND_REMOVE);
  Message* m = MutableActionObject(&a, kind);
  const auto* field = m->GetDescriptor()->FindFieldByName("id");
  CHECK(field != nullptr) << "object without id field";
  m->GetReflection()->SetString(m, field, std::string(id));
  *MutableObjectMeta(kind, m) = meta;
  return a;
}

}  // namespace

Tx::Tx(const State& base, absl::Time now) : ReadTx(&state_), state_(base), now_(now) {}

std::string Tx::Key(Kind kind, absl::string_view id) {
  return absl::StrCat(static_cast<int>(kind), ":", id);
}

void Tx::Put(const std::string& key, api::StoreAction action) {
  size_t size = action.ByteSizeLong();
  auto it = pos_.find(key);
  if (it == pos_.end()) {
    pos_.emplace(key, actions_.size());
    actions_.push_back(std::move(action));
    sizes_.push_back(size);
    ++live_;
  } else {
    SaveForUndo(key, it->second);
    bytes_ -= sizes_[it->second];
    actions_[it->second] = std::move(action);
    sizes_[it->second] = size;
  }
  bytes_ += size;
}

void Tx::Drop(const std::string& key) {
  auto it = pos_.find(key);
  if (it == pos_.end()) return;
  SaveForUndo(key, it->second);
  bytes_ -= sizes_[it->second];
  sizes_[it->second] = 0;
  actions_[it->second].reset();
  pos_.erase(it);
  --live_;
}

absl::Status Tx::Create(Kind kind, const Message& object) {
  api::StoreAction action = MakeAction(api::StoreAction::KIND_CREATE, kind, object);
  Message* obj = MutableActionObject(&action, kind);
  api::Meta* meta = MutableObjectMeta(kind, obj);
  meta->Clear();
  SetTimestamp(now_, meta->mutable_created_at());
  SetTimestamp(now_, meta->mutable_updated_at());
  Change change;
  if (absl::Status s = state_.ApplyAction(action, std::nullopt, &change); !s.ok()) return s;

  std::string key = Key(kind, ObjectId(kind, *obj));
  auto it = pos_.find(key);
  if (it != pos_.end() && actions_[it->second]->kind() == api::StoreAction::KIND_REMOVE) {
    // Deleted earlier in this transaction: the pair is a replacement of the committed object.
    uint64_t committed = ObjectMeta(kind, ActionObject(*actions_[it->second])).version().index();
    action.set_kind(api::StoreAction::KIND_UPDATE);
    meta->mutable_version()->set_index(committed);
    std::shared_ptr<Message> preview(obj->New());
    preview->CopyFrom(*obj);
    state_.Put(kind, std::move(preview));
  }
  Put(key, std::move(action));
  return absl::OkStatus();
}

absl::Status Tx::Update(Kind kind, const Message& object) {
  api::StoreAction action = MakeAction(api::StoreAction::KIND_UPDATE, kind, object);
  Message* obj = MutableActionObject(&action, kind);
  SetTimestamp(now_, MutableObjectMeta(kind, obj)->mutable_updated_at());
  Change change;
  if (absl::Status s = state_.ApplyAction(action, std::nullopt, &change); !s.ok()) return s;

  std::string key = Key(kind, ObjectId(kind, *obj));
  auto it = pos_.find(key);
  if (it != pos_.end() && actions_[it->second]->kind() == api::StoreAction::KIND_CREATE) {
    // Still a create, with the latest content.
    action.set_kind(api::StoreAction::KIND_CREATE);
    api::Meta* meta = MutableObjectMeta(kind, obj);
    meta->clear_version();
    SetTimestamp(now_, meta->mutable_created_at());
  }
  Put(key, std::move(action));
  return absl::OkStatus();
}

absl::Status Tx::Delete(Kind kind, absl::string_view id) {
  if (absl::Status s = state_.CheckDelete(kind, id); !s.ok()) return s;
  std::string key = Key(kind, id);
  auto it = pos_.find(key);
  api::Meta meta = ObjectMeta(kind, *state_.Get(kind, id));
  if (it != pos_.end() && actions_[it->second]->kind() == api::StoreAction::KIND_UPDATE) {
    meta = ObjectMeta(kind, ActionObject(*actions_[it->second]));
  }
  api::StoreAction action = MakeDelete(kind, id, meta);
  Change change;
  if (absl::Status s = state_.ApplyAction(action, std::nullopt, &change); !s.ok()) return s;
  if (it != pos_.end() && actions_[it->second]->kind() == api::StoreAction::KIND_CREATE) {
    Drop(key);  // created and deleted in this transaction: nothing to replicate
    return absl::OkStatus();
  }
  Put(key, std::move(action));
  return absl::OkStatus();
}

std::vector<api::StoreAction> Tx::Actions() const {
  std::vector<api::StoreAction> out;
  out.reserve(live_);
  for (const auto& a : actions_) {
    if (a) out.push_back(*a);
  }
  return out;
}

void Tx::MoveActionsTo(api::InternalRaftRequest* request) {
  request->mutable_actions()->Reserve(static_cast<int>(live_));
  for (auto& a : actions_) {
    if (a) request->add_actions()->Swap(&*a);
  }
  actions_.clear();
  sizes_.clear();
  pos_.clear();
  live_ = 0;
  bytes_ = 0;
}

void Tx::Mark() { mark_ = MarkState{state_, actions_.size(), live_, bytes_, {}}; }

void Tx::SaveForUndo(const std::string& key, size_t index) {
  // Entries appended after the mark are simply truncated on rollback.
  if (!mark_ || index >= mark_->actions) return;
  mark_->undo.push_back({key, index, actions_[index], sizes_[index]});
}

void Tx::RollbackToMark() {
  CHECK(mark_.has_value()) << "RollbackToMark without Mark";
  for (size_t i = mark_->actions; i < actions_.size(); ++i) {
    if (actions_[i]) {
      pos_.erase(Key(*ActionKind(*actions_[i]),
                     ObjectId(*ActionKind(*actions_[i]), ActionObject(*actions_[i]))));
    }
  }
  actions_.resize(mark_->actions);
  sizes_.resize(mark_->actions);
  for (auto it = mark_->undo.rbegin(); it != mark_->undo.rend(); ++it) {
    actions_[it->index] = std::move(it->action);
    sizes_[it->index] = it->size;
    if (actions_[it->index]) {
      pos_[it->key] = it->index;
    } else {
      pos_.erase(it->key);
    }
  }
  state_ = std::move(mark_->state);
  live_ = mark_->live;
  bytes_ = mark_->bytes;
  mark_.reset();
}

}  // namespace shoal::manager::store
