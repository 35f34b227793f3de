// OCI runtime-spec config.json -> ContainerSpec (the subset Shoal implements; anything it
// cannot honour is an error naming the field, never silently ignored, except where noted).
//
// Honoured: root.path/readonly, process.{args,env,cwd,user,capabilities.bounding,rlimits,
// noNewPrivileges,terminal=false}, hostname, mounts (bind/tmpfs; the default /proc /dev /sys
// mounts are provided by the runtime itself), linux.namespaces network path, linux.resources
// {memory.limit/swap, cpu.quota/period/shares/cpus/mems, pids.limit}, linux.maskedPaths and
// readonlyPaths (present = Docker's lists), linux.seccomp (present = Docker's default
// profile; custom profiles are approximated by it).
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "runtime/spec.h"

namespace shoal::runtime {

absl::StatusOr<ContainerSpec> SpecFromOciConfig(const std::string& config_json,
                                                const std::string& bundle, const std::string& id);

}  // namespace shoal::runtime
