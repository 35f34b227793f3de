// OCI hooks (runtime-spec config.md "POSIX-platform Hooks"): each hook runs in the runtime's
// namespaces with the container's state JSON on stdin; a non-zero exit or a timeout fails the
// operation (create: the container is destroyed). Hook output is captured and returned in the
// error, never written to the caller's stdio (which is the container's).
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "runtime/oci/config.h"

namespace shoal::runtime {

// Runs `hooks` in order, stops at the first failure. `scratch_dir` holds the output capture.
absl::Status RunHooks(const std::vector<OciHook>& hooks, const std::string& kind,
                      const std::string& state_json, const std::string& scratch_dir);

}  // namespace shoal::runtime
