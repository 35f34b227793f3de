#include "runtime/oci/config.h"

#include <set>

#include "absl/algorithm/container.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/status.h"
#include "kernel/seccomp/oci_json.h"
#include "runtime/oci/sysctl.h"

namespace shoal::runtime {
namespace {

using nlohmann::json;

std::string Abs(const std::string& bundle, const std::string& path) {
  return !path.empty() && path[0] == '/' ? path : bundle + "/" + path;
}

absl::Status Unsupported(const std::string& field, const std::string& why) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", why));
}

// False for null, false, 0, "", [] and objects whose members are all unset ({"weight": 0}).
bool IsSet(const json& v) {
  if (v.is_null()) return false;
  if (v.is_boolean()) return v.get<bool>();
  if (v.is_number()) return v.get<double>() != 0;
  if (v.is_string()) return !v.get<std::string>().empty();
  if (v.is_array()) return !v.empty();
  if (v.is_object()) {
    for (const auto& [k, member] : v.items()) {
      if (IsSet(member)) return true;
    }
    return false;
  }
  return true;
}

// A field that Shoal cannot honour: an error unless it is absent or unset.
absl::Status RejectIfSet(const json& parent, const std::string& key, const std::string& field,
                         const std::string& why) {
  if (!parent.contains(key) || !IsSet(parent[key])) return absl::OkStatus();
  return Unsupported(field, absl::StrCat(why, " (got ", parent[key].dump(), ")"));
}

absl::StatusOr<ProcessSpec> ParseProcess(const json& p, const std::string& prefix, ProcessSpec s) {
  // terminal + consoleSize (runtime/terminal.h); the pty master goes to --console-socket.
  if (p.contains("terminal") && !p["terminal"].is_boolean() && !p["terminal"].is_null()) {
    return Unsupported(prefix + ".terminal", "must be a boolean, got " + p["terminal"].dump());
  }
  s.terminal = p.value("terminal", false);
  s.terminal_rows = s.terminal_cols = 0;
  if (p.contains("consoleSize") && !p["consoleSize"].is_null()) {
    const json& size = p["consoleSize"];
    if (!size.is_object()) {
      return Unsupported(prefix + ".consoleSize", "must be an object {height, width}");
    }
    for (const char* key : {"height", "width"}) {
      const json v = size.value(key, json(0));
      if (!v.is_number_unsigned() && !(v.is_number_integer() && v.get<int64_t>() >= 0)) {
        return Unsupported(absl::StrCat(prefix, ".consoleSize.", key),
                           "must be a non-negative integer, got " + v.dump());
      }
      if (v.get<uint64_t>() > 65535) {
        return Unsupported(absl::StrCat(prefix, ".consoleSize.", key),
                           absl::StrCat("must be at most 65535, got ", v.get<uint64_t>()));
      }
    }
    if (s.terminal) {  // runc too uses it only with a terminal
      s.terminal_rows = static_cast<uint16_t>(size.value("height", uint64_t{0}));
      s.terminal_cols = static_cast<uint16_t>(size.value("width", uint64_t{0}));
    }
  }
  for (const char* key : {"apparmorProfile", "selinuxLabel"}) {
    RETURN_IF_ERROR(RejectIfSet(p, key, prefix + "." + key, "LSM labels are not supported"));
  }
  s.args = p.value("args", std::vector<std::string>{});
  if (p.contains("commandLine")) {
    return Unsupported(prefix + ".commandLine", "Windows only");
  }
  s.env = p.value("env", std::vector<std::string>{});
  s.cwd = p.value("cwd", "/");
  const json user = p.value("user", json::object());
  RETURN_IF_ERROR(RejectIfSet(user, "username", prefix + ".user.username", "Windows only"));
  s.uid = user.value("uid", 0u);
  s.gid = user.value("gid", 0u);
  s.additional_gids = user.value("additionalGids", std::vector<uint32_t>{});
  s.no_new_privileges = p.value("noNewPrivileges", false);
  if (p.contains("capabilities")) {
    const json& caps = p["capabilities"];
    RETURN_IF_ERROR(RejectIfSet(caps, "ambient", prefix + ".capabilities.ambient",
                                "ambient capabilities are not supported"));
    // Shoal's model: effective = permitted = bounding, inheritable empty.
    s.cap_drop = {"ALL"};
    s.cap_add = caps.value("bounding", std::vector<std::string>{});
  }
  s.rlimits.clear();
  for (const json& r : p.value("rlimits", json::array())) {
    s.rlimits.push_back(
        {r.value("type", ""), r.value("soft", uint64_t{0}), r.value("hard", uint64_t{0})});
  }
  return s;
}

// The v1/v2 device rules the runtime applies anyway (Docker's default allowlist).
bool WithinDefaultDevices(const json& rule) {
  static const std::set<std::string> kAllowed = {
      "c *:* m",   "b *:* m",   "c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm",   "c 1:8 rwm",
      "c 1:9 rwm", "c 5:0 rwm", "c 5:1 rwm", "c 5:2 rwm", "c 136:* rwm", "c 10:200 rwm"};
  auto num = [&](const char* k) {
    return rule.contains(k) && !rule[k].is_null() ? absl::StrCat(rule[k].get<int64_t>()) : "*";
  };
  std::string type = rule.value("type", "a");
  std::string access = rule.value("access", "rwm");
  // A subset of an allowed rule's access is fine.
  for (const std::string& a : kAllowed) {
    std::vector<std::string> f = absl::StrSplit(a, ' ');
    if (f[0] == type && f[1] == absl::StrCat(num("major"), ":", num("minor")) &&
        absl::c_all_of(access, [&](char c) { return f[2].find(c) != std::string::npos; })) {
      return true;
    }
  }
  return false;
}

absl::Status ParseResources(const json& res, ContainerSpec& s) {
  for (const char* key : {"blockIO", "hugepageLimits", "network", "rdma", "unified"}) {
    RETURN_IF_ERROR(RejectIfSet(res, key, absl::StrCat("linux.resources.", key), "not supported"));
  }
  const json devices = res.value("devices", json::array());
  for (size_t i = 0; i < devices.size(); ++i) {
    if (devices[i].value("allow", false) && !WithinDefaultDevices(devices[i])) {
      return Unsupported(absl::StrCat("linux.resources.devices[", i, "]"),
                         absl::StrCat("only Docker's default device allowlist is supported, got ",
                                      devices[i].dump()));
    }
  }
  const json mem = res.value("memory", json::object());
  for (const char* key : {"reservation", "kernel", "kernelTCP", "swappiness", "disableOOMKiller",
                          "useHierarchy", "checkBeforeUpdate"}) {
    RETURN_IF_ERROR(
        RejectIfSet(mem, key, absl::StrCat("linux.resources.memory.", key), "not supported"));
  }
  if (mem.contains("limit") && mem["limit"].get<int64_t>() > 0) {
    s.resources.memory_limit = mem["limit"].get<int64_t>();
    if (mem.contains("swap") && mem["swap"].get<int64_t>() != 0) {
      s.resources.memory_swap = mem["swap"].get<int64_t>();
    }
  }
  const json cpu = res.value("cpu", json::object());
  for (const char* key : {"realtimeRuntime", "realtimePeriod", "idle", "burst"}) {
    RETURN_IF_ERROR(
        RejectIfSet(cpu, key, absl::StrCat("linux.resources.cpu.", key), "not supported"));
  }
  if (cpu.contains("quota") && cpu["quota"].get<int64_t>() > 0) {
    s.resources.cpu_quota_us = cpu["quota"].get<int64_t>();
  }
  if (cpu.contains("period") && cpu["period"].get<uint64_t>() > 0) {
    s.resources.cpu_period_us = cpu["period"].get<uint64_t>();
  }
  if (cpu.contains("shares") && cpu["shares"].get<uint64_t>() > 0) {
    s.resources.cpu_shares = cpu["shares"].get<uint64_t>();
  }
  s.resources.cpuset_cpus = cpu.value("cpus", "");
  s.resources.cpuset_mems = cpu.value("mems", "");
  const json pids = res.value("pids", json::object());
  if (pids.contains("limit") && pids["limit"].get<int64_t>() > 0) {
    s.resources.pids_limit = pids["limit"].get<int64_t>();
  }
  return absl::OkStatus();
}

// linux.uidMappings / gidMappings: [{containerID, hostID, size}]. The library validates the
// ranges (runtime/validate.cc) and names the spec field; this names the OCI field for shape.
absl::StatusOr<std::vector<kernel::IdMapping>> ParseIdMappings(const json& linux,
                                                               const char* key) {
  std::vector<kernel::IdMapping> out;
  const json list = linux.value(key, json::array());
  if (!list.is_array()) return Unsupported(absl::StrCat("linux.", key), "must be an array");
  for (size_t i = 0; i < list.size(); ++i) {
    const json& m = list[i];
    for (const char* f : {"containerID", "hostID", "size"}) {
      if (!m.is_object() || !m.contains(f) || !m[f].is_number_unsigned()) {
        return Unsupported(absl::StrCat("linux.", key, "[", i, "].", f),
                           "required, a non-negative integer");
      }
    }
    out.push_back({m["containerID"].get<uint32_t>(), m["hostID"].get<uint32_t>(),
                   m["size"].get<uint32_t>()});
  }
  return out;
}

absl::Status ParseNamespaces(const json& linux, ContainerSpec& s) {
  const json list = linux.value("namespaces", json::array());
  std::set<std::string> seen;
  for (size_t i = 0; i < list.size(); ++i) {
    std::string type = list[i].value("type", "");
    std::string path = list[i].value("path", "");
    std::string field = absl::StrCat("linux.namespaces[", i, "]");
    if (type == "time") return Unsupported(field, "time namespaces are not supported yet");
    if (type == "user") {
      if (!path.empty()) {
        return Unsupported(field, "joining an existing user namespace is not supported");
      }
      ASSIGN_OR_RETURN(s.uid_mappings, ParseIdMappings(linux, "uidMappings"));
      ASSIGN_OR_RETURN(s.gid_mappings, ParseIdMappings(linux, "gidMappings"));
      if (s.uid_mappings.empty() || s.gid_mappings.empty()) {
        return Unsupported(field, "a new user namespace needs linux.uidMappings and "
                                  "linux.gidMappings");
      }
      seen.insert(type);
      continue;
    }
    if (!path.empty() && type != "network") {
      return Unsupported(field, absl::StrCat("joining an existing ", type,
                                             " namespace is not supported (only network)"));
    }
    if (type == "network") s.netns_path = path;
    seen.insert(type);
  }
  for (const char* required : {"mount", "pid", "ipc", "uts", "network"}) {
    if (!seen.count(required)) {
      return Unsupported("linux.namespaces",
                         absl::StrCat("the host's ", required,
                                      " namespace cannot be shared (Shoal always creates one)"));
    }
  }
  return absl::OkStatus();
}

// "/docker/<id>" or "docker/<id>" -> "docker". The runtime places containers at
// <parent>/<id>, so the last component must be the container id.
absl::StatusOr<std::string> CgroupParent(const std::string& path, const std::string& id) {
  if (path.empty()) return std::string();
  if (absl::StrContains(path, ":")) {
    return Unsupported("linux.cgroupsPath",
                       absl::StrCat("\"", path,
                                    "\" is in systemd form; only cgroupfs paths are "
                                    "supported (dockerd --exec-opt native.cgroupdriver=cgroupfs)"));
  }
  std::string p = path;
  while (!p.empty() && p.front() == '/') p.erase(0, 1);
  size_t slash = p.rfind('/');
  std::string leaf = slash == std::string::npos ? p : p.substr(slash + 1);
  if (leaf != id) {
    return Unsupported("linux.cgroupsPath",
                       absl::StrCat("\"", path, "\" must end with the container id \"", id, "\""));
  }
  std::string parent = slash == std::string::npos ? "" : p.substr(0, slash);
  for (absl::string_view part : absl::StrSplit(parent, '/')) {
    if (part == ".." || part == ".") {
      return Unsupported("linux.cgroupsPath", absl::StrCat("\"", path, "\" contains \"..\""));
    }
  }
  return parent;
}

absl::StatusOr<std::vector<OciHook>> ParseHookList(const json& list, const std::string& field) {
  std::vector<OciHook> out;
  for (size_t i = 0; i < list.size(); ++i) {
    OciHook h;
    h.path = list[i].value("path", "");
    if (h.path.empty() || h.path[0] != '/') {
      return Unsupported(absl::StrCat(field, "[", i, "].path"), "must be an absolute path");
    }
    h.args = list[i].value("args", std::vector<std::string>{});
    h.env = list[i].value("env", std::vector<std::string>{});
    h.timeout_s = list[i].value("timeout", 0);
    if (h.timeout_s < 0) {
      return Unsupported(absl::StrCat(field, "[", i, "].timeout"), "must be > 0");
    }
    out.push_back(std::move(h));
  }
  return out;
}

absl::Status ParseHooks(const json& hooks, OciHooks& out) {
  for (const char* key : {"createContainer", "startContainer"}) {
    RETURN_IF_ERROR(RejectIfSet(hooks, key, absl::StrCat("hooks.", key),
                                "hooks inside the container are not supported"));
  }
  auto list = [&](const char* key) { return hooks.value(key, json::array()); };
  auto assign = [&](const char* key, std::vector<OciHook>& to) -> absl::Status {
    auto h = ParseHookList(list(key), absl::StrCat("hooks.", key));
    if (!h.ok()) return h.status();
    to = std::move(*h);
    return absl::OkStatus();
  };
  RETURN_IF_ERROR(assign("prestart", out.prestart));
  RETURN_IF_ERROR(assign("createRuntime", out.create_runtime));
  RETURN_IF_ERROR(assign("poststart", out.poststart));
  return assign("poststop", out.poststop);
}

absl::StatusOr<MountSpec> ParseMount(const json& m, size_t i, const std::string& bundle) {
  std::string dest = m.value("destination", "");
  std::vector<std::string> options = m.value("options", std::vector<std::string>{});
  std::string type = m.value("type", "");
  bool bind = type == "bind" || absl::c_linear_search(options, "bind") ||
              absl::c_linear_search(options, "rbind");
  if (!bind && type != "tmpfs") {
    return Unsupported(absl::StrCat("mounts[", i, "].type"),
                       absl::StrCat("\"", type, "\" is not supported (bind or tmpfs)"));
  }
  MountSpec ms{dest, bind ? "bind" : "tmpfs", bind ? Abs(bundle, m.value("source", "")) : "", {}};
  for (const std::string& o : options) {
    if (o == "rbind" || o == "rw") continue;  // recursive binds are the default
    ms.options.push_back(o);
  }
  return ms;
}

}  // namespace

absl::StatusOr<OciBundle> ParseOciConfig(const std::string& text, const std::string& bundle,
                                         const std::string& id) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return absl::InvalidArgumentError("config.json: not a JSON object");
  }
  try {
    OciBundle b;
    ContainerSpec& s = b.spec;
    s.id = id;
    const json root = j.value("root", json::object());
    s.rootfs = Abs(bundle, root.value("path", "rootfs"));
    s.readonly_rootfs = root.value("readonly", false);
    s.hostname = j.value("hostname", "");
    RETURN_IF_ERROR(RejectIfSet(j, "domainname", "domainname", "not supported"));
    const json p = j.value("process", json::object());
    ProcessSpec base;
    base.no_new_privileges = false;
    ASSIGN_OR_RETURN(s.process, ParseProcess(p, "process", base));
    if (p.contains("oomScoreAdj") && p["oomScoreAdj"].is_number()) {
      b.oom_score_adj = p["oomScoreAdj"].get<int>();
    }
    static const std::set<std::string> kProvided = {
        "/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "/sys/fs/cgroup"};
    const json mounts = j.value("mounts", json::array());
    for (size_t i = 0; i < mounts.size(); ++i) {
      if (kProvided.count(mounts[i].value("destination", ""))) continue;
      ASSIGN_OR_RETURN(MountSpec ms, ParseMount(mounts[i], i, bundle));
      s.mounts.push_back(std::move(ms));
    }
    RETURN_IF_ERROR(ParseHooks(j.value("hooks", json::object()), b.hooks));
    const json linux = j.value("linux", json::object());
    b.sysctls = linux.value("sysctl", std::map<std::string, std::string>{});
    RETURN_IF_ERROR(ValidateSysctls(b.sysctls));
    for (const char* key : {"devices", "mountLabel", "intelRdt",
                            "personality", "timeOffsets"}) {
      RETURN_IF_ERROR(RejectIfSet(linux, key, absl::StrCat("linux.", key), "not supported"));
    }
    std::string propagation = linux.value("rootfsPropagation", "");
    if (!propagation.empty() && propagation != "private" && propagation != "rprivate" &&
        propagation != "slave" && propagation != "rslave") {
      return Unsupported("linux.rootfsPropagation",
                         absl::StrCat("\"", propagation, "\" is not supported (private/slave)"));
    }
    RETURN_IF_ERROR(ParseNamespaces(linux, s));
    if (!s.user_namespace()) {
      for (const char* key : {"uidMappings", "gidMappings"}) {
        RETURN_IF_ERROR(RejectIfSet(linux, key, absl::StrCat("linux.", key),
                                    "needs a user namespace in linux.namespaces"));
      }
    }
    ASSIGN_OR_RETURN(b.cgroup_parent, CgroupParent(linux.value("cgroupsPath", ""), id));
    RETURN_IF_ERROR(ParseResources(linux.value("resources", json::object()), s));
    s.mask_paths = !linux.value("maskedPaths", json::array()).empty() ||
                   !linux.value("readonlyPaths", json::array()).empty();
    // runc semantics: no linux.seccomp object = no filter; an object is honoured exactly
    // (dockerd sends its default profile, or --security-opt seccomp=<file>'s, already resolved
    // for the container's capabilities).
    // runc also treats an object with neither defaultAction nor syscalls as no filter.
    s.process.seccomp = linux.contains("seccomp") && !linux["seccomp"].is_null();
    if (s.process.seccomp && linux["seccomp"].is_object() &&
        linux["seccomp"].value("defaultAction", json()).is_null() &&
        linux["seccomp"].value("syscalls", json()).empty()) {
      s.process.seccomp = false;
    }
    if (s.process.seccomp) {
      ASSIGN_OR_RETURN(s.process.seccomp_profile,
                       kernel::SeccompProfileFromOciJson(linux["seccomp"], "linux.seccomp"));
    }
    return b;
  } catch (const json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("config.json: ", e.what()));
  }
}

absl::StatusOr<ProcessSpec> ParseOciProcess(const std::string& text, const ProcessSpec& base) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return absl::InvalidArgumentError("process.json: not a JSON object");
  }
  try {
    return ParseProcess(j, "process", base);
  } catch (const json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("process.json: ", e.what()));
  }
}

absl::StatusOr<ContainerSpec> SpecFromOciConfig(const std::string& text, const std::string& bundle,
                                                const std::string& id) {
  ASSIGN_OR_RETURN(OciBundle b, ParseOciConfig(text, bundle, id));
  return b.spec;
}

json HooksToJson(const std::vector<OciHook>& hooks) {
  json out = json::array();
  for (const OciHook& h : hooks) {
    out.push_back({{"path", h.path}, {"args", h.args}, {"env", h.env}, {"timeout", h.timeout_s}});
  }
  return out;
}

std::vector<OciHook> HooksFromJson(const json& j) {
  auto h = ParseHookList(j.is_array() ? j : json::array(), "hooks");
  return h.ok() ? *h : std::vector<OciHook>{};
}

}  // namespace shoal::runtime
