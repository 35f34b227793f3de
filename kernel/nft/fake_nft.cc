#include "kernel/nft/fake_nft.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "kernel/nft/codec.h"

namespace shoal::kernel::nft {
namespace {

using internal::PackKey;

Chain* FindChain(Table& t, const std::string& name) {
  for (Chain& c : t.chains) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

Set* FindSet(Table& t, const std::string& name) {
  for (Set& s : t.sets) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

bool RuleReferencesChain(const Rule& r, const std::string& chain) {
  for (const Expr& e : r.exprs) {
    if (auto* i = std::get_if<ImmediateExpr>(&e)) {
      if (i->verdict && i->verdict->chain == chain) return true;
    }
  }
  return false;
}

bool RuleReferencesSet(const Rule& r, const std::string& set) {
  for (const Expr& e : r.exprs) {
    if (auto* l = std::get_if<LookupExpr>(&e)) {
      if (l->set == set) return true;
    }
  }
  return false;
}

bool ChainInUse(const Table& t, const std::string& chain) {
  for (const Rule& r : t.rules) {
    if (RuleReferencesChain(r, chain)) return true;
  }
  for (const Set& s : t.sets) {
    for (const Element& e : s.elements) {
      if (e.verdict && e.verdict->chain == chain) return true;
    }
  }
  return false;
}

absl::Status CheckVerdictTarget(Table& t, const Verdict& v) {
  if (v.code != VerdictCode::kJump && v.code != VerdictCode::kGoto) return absl::OkStatus();
  Chain* c = FindChain(t, v.chain);
  if (c == nullptr) return absl::NotFoundError(absl::StrCat("chain ", v.chain, " not found"));
  if (c->base) {
    return absl::InvalidArgumentError(absl::StrCat("cannot jump to base chain ", v.chain));
  }
  return absl::OkStatus();
}

absl::Status CheckElement(Table& t, const Set& s, const Element& e, bool add) {
  if (e.key.size() != s.key.size()) {
    return absl::InvalidArgumentError(absl::StrCat("element key has ", e.key.size(),
                                                   " fields, set ", s.name, " has ", s.key.size()));
  }
  for (size_t i = 0; i < e.key.size(); ++i) {
    if (static_cast<int>(e.key[i].bytes.size()) != FieldLen(s.key[i])) {
      return absl::InvalidArgumentError(absl::StrCat("element key field ", i, " has ",
                                                     e.key[i].bytes.size(), " bytes, expected ",
                                                     FieldLen(s.key[i])));
    }
  }
  if (!add) return absl::OkStatus();
  if (s.verdict_map) {
    if (!e.verdict) return absl::InvalidArgumentError("verdict map element without a verdict");
    return CheckVerdictTarget(t, *e.verdict);
  }
  if (!s.data.empty() && e.data.size() != s.data.size()) {
    return absl::InvalidArgumentError("map element data does not match the map's data type");
  }
  if (s.data.empty() && (e.verdict || !e.data.empty())) {
    return absl::InvalidArgumentError(absl::StrCat("set ", s.name, " is not a map"));
  }
  return absl::OkStatus();
}

absl::Status CheckRule(Table& t, const Chain& chain, const Rule& r) {
  for (const Expr& e : r.exprs) {
    if (auto* i = std::get_if<ImmediateExpr>(&e); i && i->verdict) {
      if (absl::Status st = CheckVerdictTarget(t, *i->verdict); !st.ok()) return st;
    }
    if (auto* l = std::get_if<LookupExpr>(&e)) {
      Set* s = FindSet(t, l->set);
      if (s == nullptr) return absl::NotFoundError(absl::StrCat("set ", l->set, " not found"));
      if (l->dreg && *l->dreg == kRegVerdict && !s->verdict_map) {
        return absl::InvalidArgumentError(absl::StrCat("set ", l->set, " is not a verdict map"));
      }
      if (l->dreg && *l->dreg != kRegVerdict && s->data.empty()) {
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
  return absl::OkStatus();
}

}  // namespace

absl::Status FakeNft::ApplyOp(State& s, const Op& op) const {
  auto key = std::make_pair(op.table.family, op.table.name);
  auto it = s.tables.find(key);
  std::string tname = absl::StrCat("table ", FamilyName(op.table.family), " ", op.table.name);
  if (op.kind == OpKind::kAddTable || op.kind == OpKind::kCreateTable) {
    if (it != s.tables.end()) {
      if (op.kind == OpKind::kCreateTable) return absl::AlreadyExistsError(tname + " exists");
      return absl::OkStatus();
    }
    Table t;
    t.family = op.table.family;
    t.name = op.table.name;
    s.tables.emplace(key, std::move(t));
    return absl::OkStatus();
  }
  if (it == s.tables.end()) return absl::NotFoundError(tname + " not found");
  Table& t = it->second;
  switch (op.kind) {
    case OpKind::kAddTable:
    case OpKind::kCreateTable: break;
    case OpKind::kDeleteTable: s.tables.erase(it); break;
    case OpKind::kFlushTable: t.rules.clear(); break;
    case OpKind::kAddChain:
    case OpKind::kCreateChain: {
      if (Chain* c = FindChain(t, op.chain.name)) {
        if (op.kind == OpKind::kCreateChain) {
          return absl::AlreadyExistsError(absl::StrCat("chain ", op.chain.name, " exists"));
        }
        bool same_hook = c->base.has_value() == op.chain.base.has_value() &&
                         (!c->base || (c->base->hook == op.chain.base->hook &&
                                       c->base->type == op.chain.base->type &&
                                       c->base->priority == op.chain.base->priority));
        if (!same_hook) {
          return absl::AlreadyExistsError(
              absl::StrCat("chain ", op.chain.name, " exists with a different hook"));
        }
        c->base = op.chain.base;  // policy update
        break;
      }
      t.chains.push_back(op.chain);
      break;
    }
    case OpKind::kDeleteChain:
    case OpKind::kFlushChain: {
      Chain* c = FindChain(t, op.chain.name);
      if (c == nullptr) return absl::NotFoundError(absl::StrCat("chain ", op.chain.name, " not found"));
      bool has_rules = std::any_of(t.rules.begin(), t.rules.end(),
                                   [&](const Rule& r) { return r.chain == op.chain.name; });
      if (op.kind == OpKind::kFlushChain) {
        std::erase_if(t.rules, [&](const Rule& r) { return r.chain == op.chain.name; });
        break;
      }
      if (has_rules || ChainInUse(t, op.chain.name)) {
        return absl::FailedPreconditionError(
            absl::StrCat("chain ", op.chain.name, " is not empty or still referenced"));
      }
      std::erase_if(t.chains, [&](const Chain& x) { return x.name == op.chain.name; });
      break;
    }
    case OpKind::kAddSet:
    case OpKind::kCreateSet: {
      if (op.set.key.empty()) return absl::InvalidArgumentError("set key has no fields");
      if (Set* x = FindSet(t, op.set.name)) {
        if (op.kind == OpKind::kCreateSet || x->key != op.set.key ||
            x->verdict_map != op.set.verdict_map || x->data != op.set.data) {
          return absl::AlreadyExistsError(absl::StrCat("set ", op.set.name, " exists"));
        }
        break;
      }
      Set n = op.set;
      n.elements.clear();
      t.sets.push_back(std::move(n));
      break;
    }
    case OpKind::kDeleteSet:
    case OpKind::kFlushSet: {
      Set* x = FindSet(t, op.set.name);
      if (x == nullptr) return absl::NotFoundError(absl::StrCat("set ", op.set.name, " not found"));
      if (op.kind == OpKind::kFlushSet) {
        x->elements.clear();
        break;
      }
      for (const Rule& r : t.rules) {
        if (RuleReferencesSet(r, op.set.name)) {
          return absl::FailedPreconditionError(absl::StrCat("set ", op.set.name, " is in use"));
        }
      }
      std::erase_if(t.sets, [&](const Set& y) { return y.name == op.set.name; });
      break;
    }
    case OpKind::kAddElements:
    case OpKind::kDeleteElements: {
      Set* x = FindSet(t, op.set.name);
      if (x == nullptr) return absl::NotFoundError(absl::StrCat("set ", op.set.name, " not found"));
      bool add = op.kind == OpKind::kAddElements;
      for (const Element& e : op.set.elements) {
        if (absl::Status st = CheckElement(t, *x, e, add); !st.ok()) return st;
        std::string k = PackKey(e.key);
        auto pos = std::find_if(x->elements.begin(), x->elements.end(),
                                [&](const Element& y) { return PackKey(y.key) == k; });
        if (add) {
          if (pos == x->elements.end()) {
            x->elements.push_back(e);
          } else if (!(pos->verdict == e.verdict && pos->data == e.data)) {
            return absl::AlreadyExistsError(
                absl::StrCat("element exists in ", op.set.name, " with different data"));
          }
        } else {
          if (pos == x->elements.end()) {
            return absl::NotFoundError(absl::StrCat("element not found in ", op.set.name));
          }
          x->elements.erase(pos);
        }
      }
      break;
    }
    case OpKind::kAddRule: {
      Chain* c = FindChain(t, op.rule.chain);
      if (c == nullptr) return absl::NotFoundError(absl::StrCat("chain ", op.rule.chain, " not found"));
      if (absl::Status st = CheckRule(t, *c, op.rule); !st.ok()) return st;
      Rule r = op.rule;
      r.handle = s.next_handle++;
      for (Expr& e : r.exprs) {
        if (auto* ctr = std::get_if<CounterExpr>(&e)) *ctr = CounterExpr{};
      }
      t.rules.push_back(std::move(r));
      break;
    }
    case OpKind::kDeleteRule: {
      auto pos = std::find_if(t.rules.begin(), t.rules.end(), [&](const Rule& r) {
        return r.chain == op.rule.chain && r.handle == op.rule.handle;
      });
      if (pos == t.rules.end()) {
        return absl::NotFoundError(absl::StrCat("rule handle ", op.rule.handle, " not found"));
      }
      t.rules.erase(pos);
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
  State next = state_;
  for (size_t i = 0; i < batch.ops().size(); ++i) {
    absl::Status st = ApplyOp(next, batch.ops()[i]);
    if (!st.ok()) {
      return absl::Status(st.code(), absl::StrCat("nft op ", i, " (", DescribeOp(batch.ops()[i]),
                                                  "): ", st.message()));
    }
  }
  state_ = std::move(next);
  ++applies_;
  ops_applied_ += batch.size();
  return absl::OkStatus();
}

absl::StatusOr<std::vector<TableRef>> FakeNft::ListTables() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<TableRef> out;
  for (const auto& [k, t] : state_.tables) out.push_back({k.first, k.second});
  return out;
}

absl::StatusOr<Table> FakeNft::GetTable(const TableRef& ref) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = state_.tables.find({ref.family, ref.name});
  if (it == state_.tables.end()) {
    return absl::NotFoundError(absl::StrCat("table ", FamilyName(ref.family), " ", ref.name,
                                            ": No such file or directory"));
  }
  Table t = it->second;
  std::sort(t.chains.begin(), t.chains.end(),
            [](const Chain& a, const Chain& b) { return a.name < b.name; });
  std::sort(t.sets.begin(), t.sets.end(), [](const Set& a, const Set& b) { return a.name < b.name; });
  for (Set& s : t.sets) {
    std::sort(s.elements.begin(), s.elements.end(), [](const Element& a, const Element& b) {
      return PackKey(a.key) < PackKey(b.key);
    });
  }
  std::stable_sort(t.rules.begin(), t.rules.end(),
                   [](const Rule& a, const Rule& b) { return a.chain < b.chain; });
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
