// On-disk cache of compiled seccomp programs (crun keeps one too, runtime.md §3.2): one file
// per program, named by a SHA-256 over everything the program depends on, so a lookup never
// returns a program for another profile, libseccomp version or cache format.
#pragma once

#include <optional>
#include <string>

#include "kernel/seccomp/profile.h"
#include "kernel/seccomp/seccomp.h"

namespace shoal::kernel {

// Hex SHA-256 of (cache format, libseccomp version, native arch, canonical profile JSON).
std::string SeccompCacheKey(const SeccompProfile& profile, unsigned lib_major, unsigned lib_minor,
                            unsigned lib_micro);
// nullopt when absent or malformed (a truncated or foreign file is treated as a miss).
std::optional<BpfProgram> ReadCachedProgram(const std::string& dir, const std::string& key);
// Creates `dir` (0700) if needed and writes atomically; errors are ignored (a cache).
void WriteCachedProgram(const std::string& dir, const std::string& key, const BpfProgram& prog);

}  // namespace shoal::kernel
