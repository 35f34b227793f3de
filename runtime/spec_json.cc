#include "runtime/spec_json.h"

#include "absl/strings/str_cat.h"
#include "kernel/seccomp/oci_json.h"
#include "nlohmann/json.hpp"

namespace shoal::runtime {
namespace {

using nlohmann::json;

template <typename T>
void Opt(json& j, const char* key, const std::optional<T>& v) {
  if (v) j[key] = *v;
}
template <typename T>
void GetOpt(const json& j, const char* key, std::optional<T>* v) {
  if (j.contains(key) && !j[key].is_null()) *v = j[key].get<T>();
}

json ProcessJsonBase(const ProcessSpec& p);

// A custom seccomp profile is kept in OCI form (kernel/seccomp/oci_json.h).
json ProcessJson(const ProcessSpec& p) {
  json out = ProcessJsonBase(p);
  if (p.seccomp_profile) {
    out["seccomp_profile"] = kernel::SeccompProfileToOciJson(*p.seccomp_profile);
  }
  return out;
}

json ProcessJsonBase(const ProcessSpec& p) {
  json rl = json::array();
  for (const Rlimit& r : p.rlimits)
    rl.push_back({{"type", r.type}, {"soft", r.soft}, {"hard", r.hard}});
  return {
      {"args", p.args},       {"env", p.env},           {"cwd", p.cwd},
      {"uid", p.uid},         {"gid", p.gid},           {"additional_gids", p.additional_gids},
      {"cap_add", p.cap_add}, {"cap_drop", p.cap_drop}, {"no_new_privileges", p.no_new_privileges},
      {"seccomp", p.seccomp}, {"rlimits", rl}, {"terminal", p.terminal},
      {"terminal_rows", p.terminal_rows}, {"terminal_cols", p.terminal_cols}};
}

ProcessSpec ProcessFrom(const json& j) {
  ProcessSpec p;
  p.args = j.value("args", p.args);
  p.env = j.value("env", p.env);
  p.cwd = j.value("cwd", p.cwd);
  p.uid = j.value("uid", p.uid);
  p.gid = j.value("gid", p.gid);
  p.additional_gids = j.value("additional_gids", p.additional_gids);
  p.cap_add = j.value("cap_add", p.cap_add);
  p.cap_drop = j.value("cap_drop", p.cap_drop);
  p.no_new_privileges = j.value("no_new_privileges", p.no_new_privileges);
  p.seccomp = j.value("seccomp", p.seccomp);
  p.terminal = j.value("terminal", p.terminal);
  p.terminal_rows = j.value("terminal_rows", p.terminal_rows);
  p.terminal_cols = j.value("terminal_cols", p.terminal_cols);
  for (const json& r : j.value("rlimits", json::array())) {
    p.rlimits.push_back(
        {r.value("type", ""), r.value("soft", uint64_t{0}), r.value("hard", uint64_t{0})});
  }
  return p;
}

json MapsJson(const std::vector<kernel::IdMapping>& maps) {
  json out = json::array();
  for (const kernel::IdMapping& m : maps) {
    out.push_back({{"container_id", m.container_id}, {"host_id", m.host_id}, {"size", m.size}});
  }
  return out;
}

std::vector<kernel::IdMapping> MapsFrom(const json& j) {
  std::vector<kernel::IdMapping> out;
  for (const json& m : j) {
    out.push_back({m.at("container_id").get<uint32_t>(), m.at("host_id").get<uint32_t>(),
                   m.at("size").get<uint32_t>()});
  }
  return out;
}

}  // namespace

std::string SpecToJson(const ContainerSpec& s) {
  json mounts = json::array();
  for (const MountSpec& m : s.mounts) {
    mounts.push_back({{"destination", m.destination},
                      {"type", m.type},
                      {"source", m.source},
                      {"options", m.options}});
  }
  json res = json::object();
  Opt(res, "memory_limit", s.resources.memory_limit);
  Opt(res, "memory_swap", s.resources.memory_swap);
  Opt(res, "cpu_quota_us", s.resources.cpu_quota_us);
  Opt(res, "cpu_period_us", s.resources.cpu_period_us);
  Opt(res, "cpu_shares", s.resources.cpu_shares);
  Opt(res, "pids_limit", s.resources.pids_limit);
  if (!s.resources.cpuset_cpus.empty()) res["cpuset_cpus"] = s.resources.cpuset_cpus;
  if (!s.resources.cpuset_mems.empty()) res["cpuset_mems"] = s.resources.cpuset_mems;
  json j = {{"id", s.id},
            {"rootfs", s.rootfs},
            {"readonly_rootfs", s.readonly_rootfs},
            {"hostname", s.hostname},
            {"process", ProcessJson(s.process)},
            {"netns_path", s.netns_path},
            {"mounts", mounts},
            {"resources", res},
            {"mask_paths", s.mask_paths},
            {"init_path", s.init_path},
            {"uid_mappings", MapsJson(s.uid_mappings)},
            {"gid_mappings", MapsJson(s.gid_mappings)},
            {"overlay",
             {{"lower_dirs", s.overlay.lower_dirs},
              {"upper_dir", s.overlay.upper_dir},
              {"work_dir", s.overlay.work_dir}}}};
  return j.dump(2);
}

absl::StatusOr<ContainerSpec> SpecFromJson(const std::string& text) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return absl::InvalidArgumentError("spec: not a JSON object");
  }
  try {
    ContainerSpec s;
    s.id = j.value("id", "");
    s.rootfs = j.value("rootfs", "");
    s.readonly_rootfs = j.value("readonly_rootfs", false);
    s.hostname = j.value("hostname", "");
    if (j.contains("process")) s.process = ProcessFrom(j["process"]);
    if (j.contains("process") && j["process"].contains("seccomp_profile")) {
      auto profile = kernel::SeccompProfileFromOciJson(j["process"]["seccomp_profile"],
                                                       "process.seccomp_profile");
      if (!profile.ok()) return profile.status();
      s.process.seccomp_profile = *std::move(profile);
    }
    s.netns_path = j.value("netns_path", "");
    s.mask_paths = j.value("mask_paths", true);
    s.init_path = j.value("init_path", "");
    s.uid_mappings = MapsFrom(j.value("uid_mappings", json::array()));
    s.gid_mappings = MapsFrom(j.value("gid_mappings", json::array()));
    const json ov = j.value("overlay", json::object());
    s.overlay.lower_dirs = ov.value("lower_dirs", std::vector<std::string>{});
    s.overlay.upper_dir = ov.value("upper_dir", "");
    s.overlay.work_dir = ov.value("work_dir", "");
    for (const json& m : j.value("mounts", json::array())) {
      s.mounts.push_back({m.value("destination", ""), m.value("type", "bind"),
                          m.value("source", ""), m.value("options", std::vector<std::string>{})});
    }
    const json res = j.value("resources", json::object());
    GetOpt(res, "memory_limit", &s.resources.memory_limit);
    GetOpt(res, "memory_swap", &s.resources.memory_swap);
    GetOpt(res, "cpu_quota_us", &s.resources.cpu_quota_us);
    GetOpt(res, "cpu_period_us", &s.resources.cpu_period_us);
    GetOpt(res, "cpu_shares", &s.resources.cpu_shares);
    GetOpt(res, "pids_limit", &s.resources.pids_limit);
    s.resources.cpuset_cpus = res.value("cpuset_cpus", "");
    s.resources.cpuset_mems = res.value("cpuset_mems", "");
    return s;
  } catch (const json::exception& e) {
    // nlohmann names the offending key path in its message (type_error etc.).
    return absl::InvalidArgumentError(absl::StrCat("spec: ", e.what()));
  }
}

}  // namespace shoal::runtime
