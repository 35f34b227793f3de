// The OCI runtime-spec `linux.seccomp` JSON object <-> SeccompProfile. Parsing checks shape,
// names and ValidateSeccompProfile(); every error names the field under `field`
// (e.g. `linux.seccomp.syscalls[3].action: unknown action "X"`). ToOciJson(FromOciJson(j))
// is a canonical form of j (used to keep a container's profile in its state directory).
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "kernel/seccomp/profile.h"
#include "nlohmann/json.hpp"

namespace shoal::kernel {

absl::StatusOr<SeccompProfile> SeccompProfileFromOciJson(const nlohmann::json& j,
                                                         const std::string& field);
nlohmann::json SeccompProfileToOciJson(const SeccompProfile& p);

}  // namespace shoal::kernel
