#include "kernel/nft/fake_nft.h"

#include <algorithm>
#include <memory>

#include "absl/strings/str_cat.h"
#include "kernel/nft/codec.h"

namespace shoal::kernel::nft {
namespace {

using internal::PackKey;

// Chains a rule or element jumps to, sets a rule looks up.
std::vector<std::string> ChainRefs(const Rule& r) {
  std::vector<std::string> out;
  for (const Expr& e : r.exprs) {
    if (auto* i = std::get_if<ImmediateExpr>(&e); i && i->verdict && !i->verdict->chain.empty()) {
      out.push_back(i->verdict->chain);
    }
  }
  return out;
}

std::vector<std::string> SetRefs(const Rule& r) {
  std::vector<std::string> out;
  for (const Expr& e : r.exprs) {
    if (auto* l = std::get_if<LookupExpr>(&e)) out.push_back(l->set);
  }
  return out;
}

}  // namespace

absl::Status FakeNft::ApplyOp(const Op& op, Undo& undo) {
  auto key = std::make_pair(op.table.family, op.table.name);
  auto it = tables_.find(key);
  std::string tname = absl::StrCat("table ", FamilyName(op.table.family), " ", op.table.name);
  if (op.kind == OpKind::kAddTable || op.kind == OpKind::kCreateTable) {
    if (it != tables_.end()) {
      if (op.kind == OpKind::kCreateTable) return absl::AlreadyExistsError(tname + " exists");
      return absl::OkStatus();
    }
    tables_.emplace(key, FTable{});
    undo.push_back([this, key] { tables_.erase(key); });
    return absl::OkStatus();
  }
  if (it == tables_.end()) return absl::NotFoundError(tname + " not found");
  FTable& t = it->second;

  auto ref = [&undo](std::map<std::string, int>& refs, const std::string& name, int delta) {
    refs[name] += delta;
    undo.push_back([&refs, name, delta] { refs[name] -= delta; });
  };
  auto unref_rules = [&](const std::vector<Rule>& rules) {
    for (const Rule& r : rules) {
      for (const std::string& c : ChainRefs(r)) ref(t.chain_refs, c, -1);
      for (const std::string& x : SetRefs(r)) ref(t.set_refs, x, -1);
    }
  };
  auto flush_chain = [&](const std::string& chain) {
    auto rit = t.rules.find(chain);
    if (rit == t.rules.end() || rit->second.empty()) return;
    unref_rules(rit->second);
    std::vector<Rule> old = std::move(rit->second);
    rit->second.clear();
    undo.push_back([&t, chain, old = std::move(old)]() mutable { t.rules[chain] = std::move(old); });
  };
  auto check_target = [&](const Verdict& v) -> absl::Status {
    if (v.code != VerdictCode::kJump && v.code != VerdictCode::kGoto) return absl::OkStatus();
    auto c = t.chains.find(v.chain);
    if (c == t.chains.end()) return absl::NotFoundError(absl::StrCat("chain ", v.chain, " not found"));
    if (c->second.base) {
      return absl::InvalidArgumentError(absl::StrCat("cannot jump to base chain ", v.chain));
    }
    return absl::OkStatus();
  };

  switch (op.kind) {
    case OpKind::kAddTable:
    case OpKind::kCreateTable: break;
    case OpKind::kDeleteTable: {
      // extract() keeps the node (and every address the undo log holds into it) alive.
      auto node = std::make_shared<decltype(tables_)::node_type>(tables_.extract(it));
      undo.push_back([this, node] { tables_.insert(std::move(*node)); });
      break;
    }
    case OpKind::kFlushTable:
      for (auto& [chain, rules] : t.rules) flush_chain(chain);
      break;
    case OpKind::kAddChain:
    case OpKind::kCreateChain: {
      auto c = t.chains.find(op.chain.name);
      if (c != t.chains.end()) {
        if (op.kind == OpKind::kCreateChain) {
          return absl::AlreadyExistsError(absl::StrCat("chain ", op.chain.name, " exists"));
        }
        const auto& have = c->second.base;
        const auto& want = op.chain.base;
        bool same_hook = have.has_value() == want.has_value() &&
                         (!have || (have->hook == want->hook && have->type == want->type &&
                                    have->priority == want->priority));
        if (!same_hook) {
          return absl::AlreadyExistsError(
              absl::StrCat("chain ", op.chain.name, " exists with a different hook"));
        }
        Chain old = c->second;
        c->second.base = want;  // policy update
        undo.push_back([&t, old] { t.chains[old.name] = old; });
        break;
      }
      t.chains.emplace(op.chain.name, op.chain);
      undo.push_back([&t, name = op.chain.name] { t.chains.erase(name); });
      break;
    }
    case OpKind::kFlushChain:
    case OpKind::kDeleteChain: {
      auto c = t.chains.find(op.chain.name);
      if (c == t.chains.end()) {
        return absl::NotFoundError(absl::StrCat("chain ", op.chain.name, " not found"));
      }
      if (op.kind == OpKind::kFlushChain) {
        flush_chain(op.chain.name);
        break;
      }
      auto rit = t.rules.find(op.chain.name);
      bool has_rules = rit != t.rules.end() && !rit->second.empty();
      if (has_rules || t.chain_refs[op.chain.name] > 0) {
        return absl::FailedPreconditionError(
            absl::StrCat("chain ", op.chain.name, " is not empty or still referenced"));
      }
      Chain old = c->second;
      t.chains.erase(c);
      undo.push_back([&t, old] { t.chains.emplace(old.name, old); });
      break;
    }
    case OpKind::kAddSet:
    case OpKind::kCreateSet: {
      if (op.set.key.empty()) return absl::InvalidArgumentError("set key has no fields");
      auto x = t.sets.find(op.set.name);
      if (x != t.sets.end()) {
        const Set& have = x->second.shape;
        if (op.kind == OpKind::kCreateSet || have.key != op.set.key ||
            have.verdict_map != op.set.verdict_map || have.data != op.set.data) {
          return absl::AlreadyExistsError(absl::StrCat("set ", op.set.name, " exists"));
        }
        break;
      }
      FSet fs;
      fs.shape = op.set;
      fs.shape.elements.clear();
      t.sets.emplace(op.set.name, std::move(fs));
      undo.push_back([&t, name = op.set.name] { t.sets.erase(name); });
      break;
    }
    case OpKind::kDeleteSet:
    case OpKind::kFlushSet: {
      auto x = t.sets.find(op.set.name);
      if (x == t.sets.end()) {
        return absl::NotFoundError(absl::StrCat("set ", op.set.name, " not found"));
      }
      if (op.kind == OpKind::kDeleteSet && t.set_refs[op.set.name] > 0) {
        return absl::FailedPreconditionError(absl::StrCat("set ", op.set.name, " is in use"));
      }
      for (const auto& [k, e] : x->second.elements) {
        if (e.verdict && !e.verdict->chain.empty()) ref(t.chain_refs, e.verdict->chain, -1);
      }
      if (op.kind == OpKind::kFlushSet) {
        auto old = std::move(x->second.elements);
        x->second.elements.clear();
        undo.push_back([&t, name = op.set.name, old = std::move(old)]() mutable {
          t.sets[name].elements = std::move(old);
        });
      } else {
        auto node = std::make_shared<decltype(t.sets)::node_type>(t.sets.extract(x));
        undo.push_back([&t, node] { t.sets.insert(std::move(*node)); });
      }
      break;
    }
    case OpKind::kAddElements:
    case OpKind::kDeleteElements: {
      auto x = t.sets.find(op.set.name);
      if (x == t.sets.end()) {
        return absl::NotFoundError(absl::StrCat("set ", op.set.name, " not found"));
      }
      FSet& fs = x->second;
      const Set& shape = fs.shape;
      bool add = op.kind == OpKind::kAddElements;
      for (const Element& e : op.set.elements) {
        if (e.key.size() != shape.key.size()) {
          return absl::InvalidArgumentError(absl::StrCat("element key has ", e.key.size(),
                                                         " fields, set ", shape.name, " has ",
                                                         shape.key.size()));
        }
        for (size_t i = 0; i < e.key.size(); ++i) {
          if (static_cast<int>(e.key[i].bytes.size()) != FieldLen(shape.key[i])) {
            return absl::InvalidArgumentError(
                absl::StrCat("element key field ", i, " has ", e.key[i].bytes.size(),
                             " bytes, expected ", FieldLen(shape.key[i])));
          }
        }
        std::string k = PackKey(e.key);
        auto pos = fs.elements.find(k);
        if (!add) {
          if (pos == fs.elements.end()) {
            return absl::NotFoundError(absl::StrCat("element not found in ", shape.name));
          }
          if (pos->second.verdict && !pos->second.verdict->chain.empty()) {
            ref(t.chain_refs, pos->second.verdict->chain, -1);
          }
          Element old = std::move(pos->second);
          fs.elements.erase(pos);
          undo.push_back([&fs, k, old = std::move(old)]() mutable {
            fs.elements.emplace(k, std::move(old));
          });
          continue;
        }
        if (shape.verdict_map) {
          if (!e.verdict) return absl::InvalidArgumentError("verdict map element without a verdict");
          if (absl::Status st = check_target(*e.verdict); !st.ok()) return st;
        } else if (!shape.data.empty() && e.data.size() != shape.data.size()) {
          return absl::InvalidArgumentError("map element data does not match the map's data type");
        } else if (shape.data.empty() && (e.verdict || !e.data.empty())) {
          return absl::InvalidArgumentError(absl::StrCat("set ", shape.name, " is not a map"));
        }
        if (pos != fs.elements.end()) {
          if (!(pos->second.verdict == e.verdict && pos->second.data == e.data)) {
            return absl::AlreadyExistsError(
                absl::StrCat("element exists in ", shape.name, " with different data"));
          }
          continue;
        }
        fs.elements.emplace(k, e);
        undo.push_back([&fs, k] { fs.elements.erase(k); });
        if (e.verdict && !e.verdict->chain.empty()) ref(t.chain_refs, e.verdict->chain, 1);
      }
      break;
    }
    case OpKind::kAddRule: {
      auto c = t.chains.find(op.rule.chain);
      if (c == t.chains.end()) {
        return absl::NotFoundError(absl::StrCat("chain ", op.rule.chain, " not found"));
      }
      const Chain& chain = c->second;
      for (const Expr& e : op.rule.exprs) {
        if (auto* i = std::get_if<ImmediateExpr>(&e); i && i->verdict) {
          if (absl::Status st = check_target(*i->verdict); !st.ok()) return st;
        }
        if (auto* l = std::get_if<LookupExpr>(&e)) {
          auto x = t.sets.find(l->set);
          if (x == t.sets.end()) return absl::NotFoundError(absl::StrCat("set ", l->set, " not found"));
          const Set& shape = x->second.shape;
          if (l->dreg && *l->dreg == kRegVerdict && !shape.verdict_map) {
            return absl::InvalidArgumentError(absl::StrCat("set ", l->set, " is not a verdict map"));
          }
          if (l->dreg && *l->dreg != kRegVerdict && shape.data.empty()) {
            return absl::InvalidArgumentError(absl::StrCat("set ", l->set, " is not a data map"));
          }
        }
        bool nat = std::holds_alternative<NatExpr>(e) || std::holds_alternative<MasqExpr>(e) ||
                   std::holds_alternative<RedirExpr>(e);
        if (nat && chain.base) {
          // nft_nat_validate / nft_masq_validate / nft_redir_validate: hook restrictions.
          Hook h = chain.base->hook;
          bool ok = chain.base->type == ChainType::kNat;
          if (auto* n = std::get_if<NatExpr>(&e)) {
            ok = ok && (n->type == NatType::kSnat ? (h == Hook::kPostrouting || h == Hook::kInput)
                                                  : (h == Hook::kPrerouting || h == Hook::kOutput));
          } else if (std::holds_alternative<MasqExpr>(e)) {
            ok = ok && h == Hook::kPostrouting;
          } else {
            ok = ok && (h == Hook::kPrerouting || h == Hook::kOutput);
          }
          if (!ok) {
            return absl::UnimplementedError(absl::StrCat("NAT statement not supported in chain ",
                                                         chain.name, " (", HookName(h), ")"));
          }
        }
        if (std::holds_alternative<OtherExpr>(e)) {
          return absl::InvalidArgumentError("unsupported expression");
        }
      }
      Rule r = op.rule;
      r.handle = next_handle_++;
      for (Expr& e : r.exprs) {
        if (auto* ctr = std::get_if<CounterExpr>(&e)) *ctr = CounterExpr{};
      }
      for (const std::string& x : ChainRefs(r)) ref(t.chain_refs, x, 1);
      for (const std::string& x : SetRefs(r)) ref(t.set_refs, x, 1);
      std::vector<Rule>& rules = t.rules[r.chain];
      rules.push_back(std::move(r));
      undo.push_back([&rules] { rules.pop_back(); });
      break;
    }
    case OpKind::kDeleteRule: {
      auto rit = t.rules.find(op.rule.chain);
      std::vector<Rule>* rules = rit == t.rules.end() ? nullptr : &rit->second;
      size_t idx = 0;
      while (rules && idx < rules->size() && (*rules)[idx].handle != op.rule.handle) ++idx;
      if (!rules || idx == rules->size()) {
        return absl::NotFoundError(absl::StrCat("rule handle ", op.rule.handle, " not found"));
      }
      unref_rules({(*rules)[idx]});
      Rule old = std::move((*rules)[idx]);
      rules->erase(rules->begin() + static_cast<long>(idx));
      undo.push_back([rules, idx, old = std::move(old)]() mutable {
        rules->insert(rules->begin() + static_cast<long>(idx), std::move(old));
      });
      break;
    }
  }
  return absl::OkStatus();
}

absl::Status FakeNft::Apply(const Batch& batch) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!fail_next_.ok()) {
    absl::Status st = fail_next_;
    fail_next_ = absl::OkStatus();
    return st;
  }
  if (batch.empty()) return absl::OkStatus();
  Undo undo;
  uint64_t handle = next_handle_;
  for (size_t i = 0; i < batch.ops().size(); ++i) {
    absl::Status st = ApplyOp(batch.ops()[i], undo);
    if (!st.ok()) {
      for (auto u = undo.rbegin(); u != undo.rend(); ++u) (*u)();
      next_handle_ = handle;
      return absl::Status(st.code(), absl::StrCat("nft op ", i, " (", DescribeOp(batch.ops()[i]),
                                                  "): ", st.message()));
    }
  }
  ++applies_;
  ops_applied_ += batch.size();
  return absl::OkStatus();
}

absl::StatusOr<std::vector<TableRef>> FakeNft::ListTables() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<TableRef> out;
  for (const auto& [k, t] : tables_) out.push_back({k.first, k.second});
  return out;
}

absl::StatusOr<Table> FakeNft::GetTable(const TableRef& ref) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = tables_.find({ref.family, ref.name});
  if (it == tables_.end()) {
    return absl::NotFoundError(absl::StrCat("table ", FamilyName(ref.family), " ", ref.name,
                                            ": No such file or directory"));
  }
  const FTable& f = it->second;
  Table t;
  t.family = ref.family;
  t.name = ref.name;
  for (const auto& [name, c] : f.chains) t.chains.push_back(c);
  for (const auto& [name, s] : f.sets) {
    Set out = s.shape;
    for (const auto& [k, e] : s.elements) out.elements.push_back(e);
    t.sets.push_back(std::move(out));
  }
  for (const auto& [chain, rules] : f.rules) {
    for (const Rule& r : rules) t.rules.push_back(r);
  }
  return t;
}

int FakeNft::applies() const {
  std::lock_guard<std::mutex> lock(mu_);
  return applies_;
}

size_t FakeNft::ops_applied() const {
  std::lock_guard<std::mutex> lock(mu_);
  return ops_applied_;
}

void FakeNft::FailNextApply(absl::Status status) {
  std::lock_guard<std::mutex> lock(mu_);
  fail_next_ = std::move(status);
}

}  // namespace shoal::kernel::nft
