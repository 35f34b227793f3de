#include "kernel/nft/plan.h"

#include <map>
#include <set>

#include "kernel/nft/codec.h"

namespace shoal::kernel::nft {
namespace {

using internal::PackKey;

std::map<std::string, std::vector<Rule>> RulesByChain(const Table& t) {
  std::map<std::string, std::vector<Rule>> out;
  for (const Rule& r : t.rules) out[r.chain].push_back(r);
  return out;
}

bool SameShape(const Set& a, const Set& b) {
  return a.key == b.key && a.verdict_map == b.verdict_map && a.data == b.data;
}

bool ReferencesSet(const std::vector<Rule>& rules, const std::set<std::string>& sets) {
  for (const Rule& r : rules) {
    for (const Expr& e : r.exprs) {
      if (auto* l = std::get_if<LookupExpr>(&e); l && sets.count(l->set)) return true;
    }
  }
  return false;
}

}  // namespace

Batch PlanTable(const Table& desired, const std::optional<Table>& observed) {
  TableRef t{desired.family, desired.name};
  Batch b;
  Table empty;
  const Table& obs = observed ? *observed : empty;
  if (!observed) b.AddTable(t);

  std::map<std::string, const Chain*> want_chains, have_chains;
  for (const Chain& c : desired.chains) want_chains[c.name] = &c;
  for (const Chain& c : obs.chains) have_chains[c.name] = &c;
  std::map<std::string, const Set*> want_sets, have_sets;
  for (const Set& s : desired.sets) want_sets[s.name] = &s;
  for (const Set& s : obs.sets) have_sets[s.name] = &s;
  auto want_rules = RulesByChain(desired);
  auto have_rules = RulesByChain(obs);

  // Sets to delete (gone or reshaped) and to add.
  std::set<std::string> del_sets, add_sets;
  for (const auto& [name, s] : have_sets) {
    auto w = want_sets.find(name);
    if (w == want_sets.end() || !SameShape(*w->second, *s)) del_sets.insert(name);
  }
  for (const auto& [name, s] : want_sets) {
    auto h = have_sets.find(name);
    if (h == have_sets.end() || del_sets.count(name)) add_sets.insert(name);
  }
  // Chains to delete (gone or re-hooked) and to add.
  std::set<std::string> del_chains, add_chains;
  for (const auto& [name, c] : have_chains) {
    auto w = want_chains.find(name);
    if (w == want_chains.end() || w->second->base != c->base) del_chains.insert(name);
  }
  for (const auto& [name, c] : want_chains) {
    if (!have_chains.count(name) || del_chains.count(name)) add_chains.insert(name);
  }
  // Chains whose rules must be rewritten: differing rules, or rules referencing a set that is
  // being deleted (the kernel refuses to delete a set bound to a rule).
  std::set<std::string> flush, refill;
  for (const auto& [name, rules] : have_rules) {
    auto w = want_rules.find(name);
    bool differs = w == want_rules.end() || w->second != rules;
    if (differs || del_chains.count(name) || ReferencesSet(rules, del_sets)) {
      flush.insert(name);
    }
  }
  for (const auto& [name, rules] : want_rules) {
    auto h = have_rules.find(name);
    if (h == have_rules.end() || flush.count(name) || add_chains.count(name)) refill.insert(name);
  }

  // 1. Remove references: flush chains, delete stale elements from kept sets.
  for (const std::string& c : flush) b.FlushChain(t, c);
  std::map<std::string, std::vector<Element>> add_elems;
  for (const auto& [name, want] : want_sets) {
    if (add_sets.count(name)) continue;
    const Set* have = have_sets.at(name);
    std::map<std::string, const Element*> h, w;
    for (const Element& e : have->elements) h[PackKey(e.key)] = &e;
    for (const Element& e : want->elements) w[PackKey(e.key)] = &e;
    std::vector<Element> del;
    for (const auto& [k, e] : h) {
      auto it = w.find(k);
      if (it == w.end() || !(it->second->verdict == e->verdict && it->second->data == e->data)) {
        del.push_back(*e);
      }
    }
    for (const auto& [k, e] : w) {
      auto it = h.find(k);
      if (it == h.end() || !(it->second->verdict == e->verdict && it->second->data == e->data)) {
        add_elems[name].push_back(*e);
      }
    }
    if (!del.empty()) b.DeleteElements(t, name, std::move(del));
  }
  // 2. Delete sets, then chains (sets first: their elements may jump to those chains).
  for (const std::string& s : del_sets) b.DeleteSet(t, s);
  for (const std::string& c : del_chains) b.DeleteChain(t, c);
  // 3. Create chains, sets (with elements), new elements, then rules.
  for (const Chain& c : desired.chains) {
    if (add_chains.count(c.name)) b.AddChain(t, c);
  }
  for (const Set& s : desired.sets) {
    if (add_sets.count(s.name)) b.AddSet(t, s);
  }
  for (auto& [name, elems] : add_elems) b.AddElements(t, name, std::move(elems));
  for (const Rule& r : desired.rules) {
    if (refill.count(r.chain)) b.AddRule(t, r);
  }
  return b;
}

absl::StatusOr<size_t> SyncTable(Nft& nft, const Table& desired) {
  std::optional<Table> observed;
  absl::StatusOr<Table> got = nft.GetTable({desired.family, desired.name});
  if (got.ok()) {
    observed = std::move(*got);
  } else if (got.status().code() != absl::StatusCode::kNotFound) {
    return got.status();
  }
  Batch b = PlanTable(desired, observed);
  if (b.empty()) return size_t{0};
  absl::Status st = nft.Apply(b);
  if (!st.ok()) return st;
  return b.size();
}

}  // namespace shoal::kernel::nft
