// OCI runtime-spec config.json -> ContainerSpec (the subset Shoal implements). Anything Shoal
// cannot honour is an error naming the field and the reason, never silently ignored, except
// where noted below.
//
// Honoured: root.path/readonly; process.{args,env,cwd,user,capabilities,rlimits,
// noNewPrivileges,oomScoreAdj}; hostname; mounts (bind/tmpfs; the default /proc /dev /dev/pts
// /dev/shm /dev/mqueue /sys /sys/fs/cgroup mounts are provided by the runtime itself);
// linux.namespaces (mount, pid, ipc, uts, network — network may name a path —, cgroup);
// linux.cgroupsPath in cgroupfs form ("/docker/<id>": parent + the container id);
// linux.resources {memory.limit/swap, cpu.shares/quota/period/cpus/mems, pids.limit, devices};
// linux.maskedPaths/readonlyPaths (non-empty = Docker's lists); linux.seccomp exactly
// (kernel/seccomp/profile.h: every action but SCMP_ACT_NOTIFY, all operators, architectures,
// flags; unknown syscall names skipped as runc does), and no linux.seccomp = no filter (runc
// semantics; docker omits it for --security-opt seccomp=unconfined and --privileged);
// hooks prestart/createRuntime/poststart/poststop.
//
// Accepted with a narrower meaning: process.capabilities — Shoal keeps effective = permitted
// = bounding and an empty inheritable set, so the bounding set is used; linux.resources.devices
// — the runtime always applies Docker's default device allowlist, so only rules within it
// are accepted.
//
// linux.sysctl keys scoped to the container's network or IPC namespace.
//
// process.terminal + consoleSize: a pty from the container's devpts (runtime/terminal.h).
//
// Rejected: user namespaces and id mappings, host pid/
// ipc/uts/mount namespaces, joining namespaces other than network, systemd cgroupsPath,
// other sysctls, AppArmor/SELinux labels, hooks that run inside the container (createContainer,
// startContainer), resource knobs without an implementation (blockIO, hugepages, realtime,
// memory reservation/kernel/swappiness/disableOOMKiller, network classes), device nodes.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "runtime/spec.h"

namespace shoal::runtime {

struct OciHook {
  std::string path;
  std::vector<std::string> args;
  std::vector<std::string> env;
  int timeout_s = 0;  // 0 = none
};

struct OciHooks {
  std::vector<OciHook> prestart;  // after create, in the runtime's namespaces
  std::vector<OciHook> create_runtime;
  std::vector<OciHook> poststart;
  std::vector<OciHook> poststop;
};

struct OciBundle {
  ContainerSpec spec;
  std::string cgroup_parent;  // from linux.cgroupsPath ("docker" for "/docker/<id>"); "" = default
  std::optional<int> oom_score_adj;
  std::map<std::string, std::string> sysctls;  // linux.sysctl, validated (runtime/oci/sysctl.h)
  OciHooks hooks;
};

absl::StatusOr<OciBundle> ParseOciConfig(const std::string& config_json, const std::string& bundle,
                                         const std::string& id);

// An OCI `process` object (exec --process) -> ProcessSpec; `base` supplies what the process
// object does not carry (seccomp).
absl::StatusOr<ProcessSpec> ParseOciProcess(const std::string& process_json,
                                            const ProcessSpec& base);

// Compatibility wrapper: the ContainerSpec part of ParseOciConfig.
absl::StatusOr<ContainerSpec> SpecFromOciConfig(const std::string& config_json,
                                                const std::string& bundle, const std::string& id);

// Hooks <-> JSON (kept in the state directory so poststop hooks run at delete).
nlohmann::json HooksToJson(const std::vector<OciHook>& hooks);
std::vector<OciHook> HooksFromJson(const nlohmann::json& j);

}  // namespace shoal::runtime
