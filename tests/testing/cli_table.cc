#include "tests/testing/cli_table.h"

#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"

namespace shoal::testing {

std::vector<std::vector<std::string>> Rows(const std::string& out) {
  std::vector<std::vector<std::string>> rows;
  for (absl::string_view line : absl::StrSplit(out, '\n', absl::SkipEmpty())) {
    std::vector<std::string> cols;
    for (absl::string_view c : absl::StrSplit(line, "  ", absl::SkipEmpty())) {
      c = absl::StripAsciiWhitespace(c);
      if (!c.empty()) cols.emplace_back(c);
    }
    rows.push_back(cols);
  }
  return rows;
}

}  // namespace shoal::testing
