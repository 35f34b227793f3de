#include "absl/strings/str_cat.h"
#include "kernel/nft/nft.h"

namespace shoal::kernel::nft {
namespace {

Op TableOp(OpKind k, const TableRef& t) {
  Op op{k, t, {}, {}, {}};
  return op;
}

}  // namespace

Batch& Batch::AddTable(const TableRef& t) {
  ops_.push_back(TableOp(OpKind::kAddTable, t));
  return *this;
}
Batch& Batch::CreateTable(const TableRef& t) {
  ops_.push_back(TableOp(OpKind::kCreateTable, t));
  return *this;
}
Batch& Batch::DeleteTable(const TableRef& t) {
  ops_.push_back(TableOp(OpKind::kDeleteTable, t));
  return *this;
}
Batch& Batch::FlushTable(const TableRef& t) {
  ops_.push_back(TableOp(OpKind::kFlushTable, t));
  return *this;
}

Batch& Batch::AddChain(const TableRef& t, Chain c) {
  Op op = TableOp(OpKind::kAddChain, t);
  op.chain = std::move(c);
  ops_.push_back(std::move(op));
  return *this;
}
Batch& Batch::CreateChain(const TableRef& t, Chain c) {
  Op op = TableOp(OpKind::kCreateChain, t);
  op.chain = std::move(c);
  ops_.push_back(std::move(op));
  return *this;
}
Batch& Batch::DeleteChain(const TableRef& t, std::string chain) {
  Op op = TableOp(OpKind::kDeleteChain, t);
  op.chain.name = std::move(chain);
  ops_.push_back(std::move(op));
  return *this;
}
Batch& Batch::FlushChain(const TableRef& t, std::string chain) {
  Op op = TableOp(OpKind::kFlushChain, t);
  op.chain.name = std::move(chain);
  ops_.push_back(std::move(op));
  return *this;
}

Batch& Batch::AddSet(const TableRef& t, Set s) {
  std::vector<Element> elems = std::move(s.elements);
  s.elements.clear();
  std::string name = s.name;
  Op op = TableOp(OpKind::kAddSet, t);
  op.set = std::move(s);
  ops_.push_back(std::move(op));
  if (!elems.empty()) AddElements(t, name, std::move(elems));
  return *this;
}
Batch& Batch::CreateSet(const TableRef& t, Set s) {
  std::vector<Element> elems = std::move(s.elements);
  s.elements.clear();
  std::string name = s.name;
  Op op = TableOp(OpKind::kCreateSet, t);
  op.set = std::move(s);
  ops_.push_back(std::move(op));
  if (!elems.empty()) AddElements(t, name, std::move(elems));
  return *this;
}
Batch& Batch::DeleteSet(const TableRef& t, std::string set) {
  Op op = TableOp(OpKind::kDeleteSet, t);
  op.set.name = std::move(set);
  ops_.push_back(std::move(op));
  return *this;
}
Batch& Batch::FlushSet(const TableRef& t, std::string set) {
  Op op = TableOp(OpKind::kFlushSet, t);
  op.set.name = std::move(set);
  ops_.push_back(std::move(op));
  return *this;
}
Batch& Batch::AddElements(const TableRef& t, std::string set, std::vector<Element> elems) {
  Op op = TableOp(OpKind::kAddElements, t);
  op.set.name = std::move(set);
  op.set.elements = std::move(elems);
  ops_.push_back(std::move(op));
  return *this;
}
Batch& Batch::DeleteElements(const TableRef& t, std::string set, std::vector<Element> elems) {
  Op op = TableOp(OpKind::kDeleteElements, t);
  op.set.name = std::move(set);
  op.set.elements = std::move(elems);
  ops_.push_back(std::move(op));
  return *this;
}

Batch& Batch::AddRule(const TableRef& t, Rule r) {
  Op op = TableOp(OpKind::kAddRule, t);
  op.rule = std::move(r);
  ops_.push_back(std::move(op));
  return *this;
}
Batch& Batch::DeleteRule(const TableRef& t, std::string chain, uint64_t handle) {
  Op op = TableOp(OpKind::kDeleteRule, t);
  op.rule.chain = std::move(chain);
  op.rule.handle = handle;
  ops_.push_back(std::move(op));
  return *this;
}

void Batch::Append(const Batch& other) {
  ops_.insert(ops_.end(), other.ops_.begin(), other.ops_.end());
}

std::string DescribeOp(const Op& op) {
  std::string t = absl::StrCat(FamilyName(op.table.family), " ", op.table.name);
  switch (op.kind) {
    case OpKind::kAddTable: return absl::StrCat("add table ", t);
    case OpKind::kCreateTable: return absl::StrCat("create table ", t);
    case OpKind::kDeleteTable: return absl::StrCat("delete table ", t);
    case OpKind::kFlushTable: return absl::StrCat("flush table ", t);
    case OpKind::kAddChain: return absl::StrCat("add chain ", t, " ", op.chain.name);
    case OpKind::kCreateChain: return absl::StrCat("create chain ", t, " ", op.chain.name);
    case OpKind::kDeleteChain: return absl::StrCat("delete chain ", t, " ", op.chain.name);
    case OpKind::kFlushChain: return absl::StrCat("flush chain ", t, " ", op.chain.name);
    case OpKind::kAddSet: return absl::StrCat("add set ", t, " ", op.set.name);
    case OpKind::kCreateSet: return absl::StrCat("create set ", t, " ", op.set.name);
    case OpKind::kDeleteSet: return absl::StrCat("delete set ", t, " ", op.set.name);
    case OpKind::kFlushSet: return absl::StrCat("flush set ", t, " ", op.set.name);
    case OpKind::kAddElements:
      return absl::StrCat("add element ", t, " ", op.set.name, " (", op.set.elements.size(),
                          " elements)");
    case OpKind::kDeleteElements:
      return absl::StrCat("delete element ", t, " ", op.set.name, " (",
                          op.set.elements.size(), " elements)");
    case OpKind::kAddRule:
      return absl::StrCat("add rule ", t, " ", op.rule.chain,
                          op.rule.comment.empty() ? "" : absl::StrCat(" comment \"", op.rule.comment, "\""));
    case OpKind::kDeleteRule:
      return absl::StrCat("delete rule ", t, " ", op.rule.chain, " handle ", op.rule.handle);
  }
  return "?";
}

absl::Status DeleteTableIfExists(Nft& nft, const TableRef& t) {
  Batch b;
  b.AddTable(t).DeleteTable(t);
  return nft.Apply(b);
}

}  // namespace shoal::kernel::nft
