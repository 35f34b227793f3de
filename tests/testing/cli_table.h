// Parsing the tables the `shoal` CLI prints, for e2e tests that drive the real CLI.
#pragma once

#include <string>
#include <vector>

namespace shoal::testing {

// Rows of a table printed by the CLI (header first), columns split on runs of 2+ spaces;
// empty lines are skipped.
std::vector<std::vector<std::string>> Rows(const std::string& out);

}  // namespace shoal::testing
