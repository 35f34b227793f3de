// Validation of user-supplied specs, as the control API applies it before anything reaches
// the store (semantics of SwarmKit's controlapi, swarmkit.md §2, §8). Every error is
// InvalidArgument and names the field: "spec.task.resources.limits.memory_bytes: 1048576 is
// below the minimum of 4 MiB".
//
// Pure and thread-safe.
#pragma once

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "api/objects.pb.h"

namespace shoal::manager::controlapi {

namespace api = ::shoal::api::v1;

inline constexpr int64_t kMinNanoCpus = 1'000'000;          // 0.001 CPU
inline constexpr int64_t kMinMemoryBytes = 4 * 1024 * 1024;  // 4 MiB
inline constexpr size_t kMaxSecretSize = 500 * 1024;         // exclusive
inline constexpr size_t kMaxConfigSize = 1000 * 1024;        // exclusive

// DNS-label names: ^[a-zA-Z0-9](?:[-_]*[A-Za-z0-9]+)*$, at most 63 characters.
absl::Status ValidateName(absl::string_view field, absl::string_view name);

absl::Status ValidateServiceSpec(const api::ServiceSpec& spec);
// An update may not change the mode (replicated <-> global, service <-> job).
absl::Status ValidateServiceUpdate(const api::ServiceSpec& old_spec, const api::ServiceSpec& spec);
absl::Status ValidateNetworkSpec(const api::NetworkSpec& spec);
absl::Status ValidateSecretSpec(const api::SecretSpec& spec);
absl::Status ValidateConfigSpec(const api::ConfigSpec& spec);
absl::Status ValidateNodeSpec(const api::NodeSpec& spec);

}  // namespace shoal::manager::controlapi
