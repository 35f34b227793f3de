// PMap<V>: a persistent (immutable, structurally shared) ordered map from std::string to V.
//
// Why this structure: the store needs read snapshots that never block writers. A PMap value is
// one root pointer; copying it is O(1) and the copy is a frozen snapshot. Set/Erase copy only
// the O(log n) nodes on the path to the key ("path copying") and share everything else, so a
// writer builds the next version while readers keep walking the old one, and old versions are
// freed by reference counting when the last reader drops them. No locks, no version chains to
// garbage-collect. Ordered (not hashed) so that ids and index keys support prefix scans.
//
// Transient edits: a node reachable only through nodes this map owns exclusively (reference
// count 1 all the way from the root) cannot be seen by any other version or reader, so it is
// modified in place instead of copied. A transaction touching 200 objects therefore copies
// the shared upper levels of the tree once, not 200 times.
//
// Balancing: a treap whose priority is a hash of the key ("hash treap"). The shape is a pure
// function of the key set (no random generator to inject), and the expected depth is
// O(log n) for keys that do not collide adversarially (store keys are random ids).
//
// Thread safety: a const PMap may be read from any number of threads; distinct PMap objects
// that share nodes may be read and modified concurrently (nodes are immutable, reference
// counts are atomic). A single PMap object must not be modified while another thread uses it.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"

namespace shoal::manager::store {

template <typename V>
class PMap {
 public:
  PMap() = default;

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

  // Pointer to the value for `key`, or nullptr. Valid while this PMap (or a copy) is alive.
  const V* Find(absl::string_view key) const {
    const Node* n = root_.get();
    while (n != nullptr) {
      int c = absl::string_view(n->e->key).compare(key);
      if (c == 0) return &n->e->value;
      n = c > 0 ? n->left.get() : n->right.get();
    }
    return nullptr;
  }

  bool Contains(absl::string_view key) const { return Find(key) != nullptr; }

  // Inserts or replaces.
  void Set(absl::string_view key, V value) {
    bool replaced = false;
    Insert(root_, key, Priority(key), std::move(value), &replaced);
    if (!replaced) ++size_;
  }

  // Removes `key`; returns false (and copies nothing) when it is absent.
  bool Erase(absl::string_view key) {
    if (!Contains(key)) return false;
    Remove(root_, key);
    --size_;
    return true;
  }

  // Calls fn(key, value) in key order for keys >= `lower` while fn returns true.
  template <typename F>
  void ForEachFrom(absl::string_view lower, F&& fn) const {
    std::vector<const Node*> stack;
    const Node* n = root_.get();
    while (n != nullptr) {
      if (absl::string_view(n->e->key) >= lower) {
        stack.push_back(n);
        n = n->left.get();
      } else {
        n = n->right.get();
      }
    }
    while (!stack.empty()) {
      const Node* top = stack.back();
      stack.pop_back();
      if (!fn(absl::string_view(top->e->key), top->e->value)) return;
      for (const Node* c = top->right.get(); c != nullptr; c = c->left.get()) stack.push_back(c);
    }
  }

  // Calls fn(key, value) in key order for every key starting with `prefix` while fn returns
  // true.
  template <typename F>
  void ForEachPrefix(absl::string_view prefix, F&& fn) const {
    ForEachFrom(prefix, [&](absl::string_view k, const V& v) {
      if (k.substr(0, prefix.size()) != prefix) return false;
      return static_cast<bool>(fn(k, v));
    });
  }

  template <typename F>
  void ForEach(F&& fn) const {
    ForEachFrom(absl::string_view(), std::forward<F>(fn));
  }

  // True when both maps are the same version (share the root): a cheap "unchanged" test.
  bool SameAs(const PMap& other) const { return root_ == other.root_; }

  // Height of the tree (for tests of the balancing claim).
  size_t Height() const { return HeightOf(root_.get()); }

 private:
  struct Node;
  using Ptr = std::shared_ptr<Node>;
  // Key and value live in their own immutable block shared by every copy of the node, so
  // copying a node allocates one small block and copies no strings.
  struct Entry {
    std::string key;
    V value;
  };
  using EntryPtr = std::shared_ptr<const Entry>;
  struct Node {
    EntryPtr e;
    uint64_t prio;
    Ptr left, right;
  };
  static EntryPtr NewEntry(absl::string_view key, V value) {
    return std::make_shared<const Entry>(Entry{std::string(key), std::move(value)});
  }

  static uint64_t Priority(absl::string_view key) {
    // std::hash, then a 64-bit finalizer (splitmix64) so that similar keys spread out.
    uint64_t z = std::hash<std::string_view>{}(std::string_view(key.data(), key.size())) +
                 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }

  // Heap order on (priority, key): strict, so equal hashes cannot break the invariant.
  static bool Above(uint64_t prio, absl::string_view key, const Node& n) {
    if (prio != n.prio) return prio > n.prio;
    return key < absl::string_view(n.e->key);
  }

  // Makes `slot` safe to modify: every caller reaches `slot` through nodes it owns (the map's
  // own root pointer, or nodes made writable by this function), so a node with a reference
  // count of 1 is referenced by nothing else and is edited in place; a shared node is copied
  // (its children become shared with the old version).
  static Node& Writable(Ptr& slot) {
    if (slot.use_count() != 1) slot = std::make_shared<Node>(*slot);
    return *slot;
  }

  // Splits `t` (which does not contain `key`) into keys < key and keys > key.
  static std::pair<Ptr, Ptr> Split(Ptr t, absl::string_view key) {
    if (!t) return {nullptr, nullptr};
    Node& n = Writable(t);
    if (absl::string_view(n.e->key) < key) {
      auto [a, b] = Split(std::move(n.right), key);
      n.right = std::move(a);
      return {std::move(t), std::move(b)};
    }
    auto [a, b] = Split(std::move(n.left), key);
    n.left = std::move(b);
    return {std::move(a), std::move(t)};
  }

  // Joins `a` and `b` where every key of `a` is below every key of `b`.
  static Ptr Merge(Ptr a, Ptr b) {
    if (!a) return b;
    if (!b) return a;
    if (Above(a->prio, a->e->key, *b)) {
      Node& n = Writable(a);
      n.right = Merge(std::move(n.right), std::move(b));
      return a;
    }
    Node& n = Writable(b);
    n.left = Merge(std::move(a), std::move(n.left));
    return b;
  }

  static void Insert(Ptr& t, absl::string_view key, uint64_t prio, V value, bool* replaced) {
    if (!t) {
      t = std::make_shared<Node>(Node{NewEntry(key, std::move(value)), prio, {}, {}});
      return;
    }
    int c = absl::string_view(t->e->key).compare(key);
    if (c == 0) {
      *replaced = true;
      Writable(t).e = NewEntry(key, std::move(value));
      return;
    }
    if (Above(prio, key, *t)) {
      // `key` outranks `t`, so it cannot be inside t's subtree: it becomes this subtree's root.
      auto [l, r] = Split(std::move(t), key);
      t = std::make_shared<Node>(
          Node{NewEntry(key, std::move(value)), prio, std::move(l), std::move(r)});
      return;
    }
    Node& n = Writable(t);
    Insert(c > 0 ? n.left : n.right, key, prio, std::move(value), replaced);
  }

  // `key` is present under `t`.
  static void Remove(Ptr& t, absl::string_view key) {
    int c = absl::string_view(t->e->key).compare(key);
    if (c == 0) {
      Ptr l = t->left, r = t->right;  // shared with `t` until `t` is released below
      t = nullptr;                    // if we owned `t`, l and r are now ours alone
      t = Merge(std::move(l), std::move(r));
      return;
    }
    Node& n = Writable(t);
    Remove(c > 0 ? n.left : n.right, key);
  }

  static size_t HeightOf(const Node* n) {
    if (n == nullptr) return 0;
    return 1 + std::max(HeightOf(n->left.get()), HeightOf(n->right.get()));
  }

  Ptr root_;
  size_t size_ = 0;
};

}  // namespace shoal::manager::store
