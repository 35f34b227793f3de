// ContainerSpec <-> JSON, the format shoal-monitor reads from its state directory. Field names
// follow the C++ struct. Parsing errors name the field.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "runtime/spec.h"

namespace shoal::runtime {

std::string SpecToJson(const ContainerSpec& spec);
absl::StatusOr<ContainerSpec> SpecFromJson(const std::string& json);

}  // namespace shoal::runtime
