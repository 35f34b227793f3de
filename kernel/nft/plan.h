// PlanTable: the pure reconciliation step for one nftables table (DESIGN.md §3 "plan").
//
// Given the desired contents of a table and what the kernel holds (nullopt = table missing),
// returns the batch that makes the kernel equal to `desired`, touching only what differs:
//   * missing chains/sets are added, extra ones deleted, ones whose hook/type/priority or
//     key/data types changed are deleted and re-added;
//   * set elements are diffed by key (added, deleted, or replaced when their data changed), so
//     adding one service to a 10,000-entry map is one element add;
//   * a chain whose rule list differs (expressions or comments; handles and counter values are
//     ignored) is flushed and refilled; unchanged chains are not touched.
// Ordering inside the batch keeps every intermediate step valid for the kernel (references are
// removed before their targets are deleted, targets are created before references are added).
// Applying the result with Nft::Apply is atomic; planning again against the new state yields an
// empty batch. Rules in `desired` are grouped by chain in the order given.
//
// Errors: none (pure). An inconsistent `desired` (a rule referencing a chain that does not
// exist) produces a batch the kernel rejects with NOT_FOUND, naming the op.
#pragma once

#include <optional>

#include "kernel/nft/nft.h"

namespace shoal::kernel::nft {

Batch PlanTable(const Table& desired, const std::optional<Table>& observed);

// One level-triggered reconciliation step: observe (GetTable; NOT_FOUND = missing), plan, apply.
// Returns the number of operations applied (0 when already converged). Errors from the
// adapter are returned unchanged (the batch is atomic, so a failure changes nothing).
absl::StatusOr<size_t> SyncTable(Nft& nft, const Table& desired);

}  // namespace shoal::kernel::nft
