// shoal-runtime's per-container state directory (<root>/<id>) and the runc process model
// docker's containerd-shim expects:
//
//   create: this command clones the container's PID 1 (through the runtime library), so when
//   it exits PID 1 is re-parented to the caller's subreaper (containerd-shim), which reaps it
//   and reads its exit status; a small "holder" process (forked from create, so also
//   re-parented) keeps the setup socket PID 1 waits on and releases it on `start`.
//   state: PID 1 alive (pid + start time, zombies count as gone) -> "created" until the holder
//   marked the start, then "running"; otherwise "stopped".
//
// Files: state.json (this struct), spec.json (the ContainerSpec, for exec), started, start.sock.
#pragma once

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "runtime/container.h"

namespace shoal::runtime {

struct OciState {
  std::string id;
  std::string bundle;
  std::string cgroup_parent;
  std::string created;  // RFC 3339
  pid_t pid = 0;
  uint64_t start_time = 0;  // /proc/<pid>/stat field 22
  nlohmann::json poststart = nlohmann::json::array();
  nlohmann::json poststop = nlohmann::json::array();
};

absl::Status WriteOciState(const std::string& dir, const OciState& state);
// NOT_FOUND when there is no container in `dir`.
absl::StatusOr<OciState> ReadOciState(const std::string& dir);
// "created" | "running" | "stopped".
std::string OciStatus(const std::string& dir, const OciState& state);
// The OCI state JSON (runtime-spec "state"), as printed by `state` and given to hooks.
nlohmann::json OciStateJson(const OciState& state, const std::string& status);

// Start time of a live (non-zombie) process; nullopt when gone.
std::optional<uint64_t> ProcStartTime(pid_t pid);
// True while `pid` is the process recorded (same start time) and not a zombie.
bool SameProcessAlive(pid_t pid, uint64_t start_time);

// Forks the holder for a created container (see above). `c` is this process's handle; the
// holder calls c->Start() when `start` asks, marks <dir>/started, replies and exits. The
// holder also exits when PID 1 dies first.
absl::Status SpawnHolder(const std::string& dir, Container* c);
// Asks the holder to start the container; returns the start's error (exec failure...).
absl::Status RequestStart(const std::string& dir);

}  // namespace shoal::runtime
