// Internal to kernel/nft: Expr <-> libnftnl expression.
#pragma once

#include "kernel/nft/types.h"

struct nftnl_expr;

namespace shoal::kernel::nft::internal {

// Returns a new libnftnl expression (caller adds it to a rule, which takes ownership).
nftnl_expr* EncodeExpr(const Expr& e);
Expr DecodeExpr(const nftnl_expr* e);

}  // namespace shoal::kernel::nft::internal
