// Typed reads over one consistent version of the store.
//
//   ReadTx       reads from a State it does not own (base of Tx and ReadView)
//   ReadView     owns a published version: a read snapshot that stays valid and unchanged for
//                as long as it is held, while writers keep committing (they never wait for it)
//   By*          selectors for Find/ForEach (exact index value, prefix, or all)
//
//   auto view = store.View();
//   for (const auto& t : view.Find<api::Task>(ByServiceId(svc))) ...
//
// Thread safety: a ReadView may be shared by threads (it is immutable). Objects returned are
// shared and immutable: copy before modifying (Tx::Update takes the modified copy).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "manager/store/kinds.h"
#include "manager/store/state.h"

namespace shoal::manager::store {

struct By {
  enum class Type : uint8_t { kAll, kIdPrefix, kIndex, kIndexPrefix };
  Type type = Type::kAll;
  Index index = Index::kName;
  std::string value;
};

inline By All() { return {}; }
inline By ByIdPrefix(absl::string_view p) {
  return {By::Type::kIdPrefix, Index::kName, std::string(p)};
}
// Names compare case-insensitively (as SwarmKit's name index).
inline By ByName(absl::string_view n) { return {By::Type::kIndex, Index::kName, LowerName(n)}; }
inline By ByNamePrefix(absl::string_view p) {
  return {By::Type::kIndexPrefix, Index::kName, LowerName(p)};
}
inline By ByServiceId(absl::string_view id) {
  return {By::Type::kIndex, Index::kService, std::string(id)};
}
inline By ByNodeId(absl::string_view id) {
  return {By::Type::kIndex, Index::kNode, std::string(id)};
}
inline By BySlot(absl::string_view service_id, uint64_t slot) {
  return {By::Type::kIndex, Index::kSlot, SlotValue(service_id, slot)};
}
inline By ByDesiredState(api::TaskState s) {
  return {By::Type::kIndex, Index::kDesiredState, StateValue(s)};
}
inline By ByTaskState(api::TaskState s) { return {By::Type::kIndex, Index::kState, StateValue(s)}; }
inline By ByNetworkId(absl::string_view id) {
  return {By::Type::kIndex, Index::kNetwork, std::string(id)};
}
inline By BySecretId(absl::string_view id) {
  return {By::Type::kIndex, Index::kSecret, std::string(id)};
}
inline By ByConfigId(absl::string_view id) {
  return {By::Type::kIndex, Index::kConfig, std::string(id)};
}

class ReadTx {
 public:
  explicit ReadTx(const State* state) : state_(state) {}

  // Raft index this view reflects.
  uint64_t version() const { return state_->version(); }

  template <typename T>
  std::shared_ptr<const T> Get(absl::string_view id) const {
    return std::static_pointer_cast<const T>(state_->Get(KindOf<T>::value, id));
  }

  // fn(const std::shared_ptr<const T>&) -> bool (false stops). Order: by id for All/IdPrefix
  // and exact index values; by index value, then id, for prefixes.
  template <typename T, typename F>
  void ForEach(const By& by, F&& fn) const {
    Scan(KindOf<T>::value, by, [&](const ObjectPtr& o) {
      return static_cast<bool>(fn(std::static_pointer_cast<const T>(o)));
    });
  }

  template <typename T>
  std::vector<std::shared_ptr<const T>> Find(const By& by) const {
    std::vector<std::shared_ptr<const T>> out;
    ForEach<T>(by, [&](const std::shared_ptr<const T>& o) {
      out.push_back(o);
      return true;
    });
    return out;
  }

  template <typename T>
  size_t Count() const {
    return state_->Count(KindOf<T>::value);
  }

  // Generic (kind-dispatched) access.
  template <typename F>
  void Scan(Kind kind, const By& by, F&& fn) const {
    switch (by.type) {
      case By::Type::kAll:
        state_->ForEach(kind, fn);
        return;
      case By::Type::kIdPrefix:
        state_->ForEachByIdPrefix(kind, by.value, fn);
        return;
      case By::Type::kIndex:
        state_->ForEachByIndex(kind, by.index, by.value, fn);
        return;
      case By::Type::kIndexPrefix:
        state_->ForEachByIndexPrefix(kind, by.index, by.value, fn);
        return;
    }
  }
  ObjectPtr GetObject(Kind kind, absl::string_view id) const { return state_->Get(kind, id); }

 protected:
  const State* state_;
};

class ReadView : public ReadTx {
 public:
  explicit ReadView(std::shared_ptr<const State> s) : ReadTx(s.get()), hold_(std::move(s)) {}
  ReadView(const ReadView& o) : ReadTx(o.hold_.get()), hold_(o.hold_) {}
  ReadView& operator=(const ReadView& o) {
    hold_ = o.hold_;
    state_ = hold_.get();
    return *this;
  }

 private:
  std::shared_ptr<const State> hold_;
};

}  // namespace shoal::manager::store
