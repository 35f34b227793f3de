// CRC32C (Castagnoli), used to frame WAL records and snapshot files. Written here because
// Debian 12's abseil predates absl/crc; table-driven, ~1 byte/cycle, plenty for raft records.
#pragma once

#include <cstdint>

#include "absl/strings/string_view.h"

namespace shoal::manager::raft {

uint32_t Crc32c(absl::string_view data, uint32_t crc = 0);

}  // namespace shoal::manager::raft
