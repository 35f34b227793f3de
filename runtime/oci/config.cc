#include "runtime/oci/config.h"

#include <set>

#include "absl/algorithm/container.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace shoal::runtime {
namespace {

using nlohmann::json;

std::string Abs(const std::string& bundle, const std::string& path) {
  return !path.empty() && path[0] == '/' ? path : bundle + "/" + path;
}

absl::Status Unsupported(const std::string& field, const std::string& why) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", why));
}

}  // namespace

absl::StatusOr<ContainerSpec> SpecFromOciConfig(const std::string& text, const std::string& bundle,
                                                const std::string& id) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return absl::InvalidArgumentError("config.json: not a JSON object");
  }
  try {
    ContainerSpec s;
    s.id = id;
    const json root = j.value("root", json::object());
    s.rootfs = Abs(bundle, root.value("path", "rootfs"));
    s.readonly_rootfs = root.value("readonly", false);
    s.hostname = j.value("hostname", "");
    const json p = j.value("process", json::object());
    if (p.value("terminal", false)) {
      return Unsupported("process.terminal", "a console (terminal: true) is not supported yet");
    }
    s.process.args = p.value("args", std::vector<std::string>{});
    s.process.env = p.value("env", std::vector<std::string>{});
    s.process.cwd = p.value("cwd", "/");
    const json user = p.value("user", json::object());
    s.process.uid = user.value("uid", 0u);
    s.process.gid = user.value("gid", 0u);
    s.process.additional_gids = user.value("additionalGids", std::vector<uint32_t>{});
    s.process.no_new_privileges = p.value("noNewPrivileges", false);
    if (p.contains("capabilities")) {
      // Bounding = effective = permitted in Shoal's model; take the bounding set.
      s.process.cap_drop = {"ALL"};
      s.process.cap_add =
          p["capabilities"].value("bounding", std::vector<std::string>{});
    }
    for (const json& r : p.value("rlimits", json::array())) {
      s.process.rlimits.push_back(
          {r.value("type", ""), r.value("soft", uint64_t{0}), r.value("hard", uint64_t{0})});
    }
    static const std::set<std::string> kProvided = {"/proc", "/dev", "/dev/pts", "/dev/shm",
                                                    "/dev/mqueue", "/sys", "/sys/fs/cgroup"};
    const json mounts = j.value("mounts", json::array());
    for (size_t i = 0; i < mounts.size(); ++i) {
      const json& m = mounts[i];
      std::string dest = m.value("destination", "");
      if (kProvided.count(dest)) continue;
      std::vector<std::string> options = m.value("options", std::vector<std::string>{});
      std::string type = m.value("type", "");
      bool bind = type == "bind" || absl::c_linear_search(options, "bind") ||
                  absl::c_linear_search(options, "rbind");
      if (!bind && type != "tmpfs") {
        return Unsupported(absl::StrCat("mounts[", i, "].type"),
                           absl::StrCat("\"", type, "\" is not supported (bind or tmpfs)"));
      }
      MountSpec ms{dest, bind ? "bind" : "tmpfs", bind ? Abs(bundle, m.value("source", "")) : "",
                   {}};
      for (const std::string& o : options) {
        if (o == "bind" || o == "rbind" || o == "rw") {
          if (o == "bind") ms.options.push_back(o);
          continue;
        }
        ms.options.push_back(o);
      }
      s.mounts.push_back(ms);
    }
    const json linux = j.value("linux", json::object());
    bool has_net = false;
    for (const json& ns : linux.value("namespaces", json::array())) {
      if (ns.value("type", "") == "network") {
        has_net = true;
        s.netns_path = ns.value("path", "");
      }
      if (ns.value("type", "") == "user") {
        return Unsupported("linux.namespaces", "user namespaces are not supported yet");
      }
    }
    (void)has_net;  // without a network namespace entry Shoal still creates a new one
    const json res = linux.value("resources", json::object());
    const json mem = res.value("memory", json::object());
    if (mem.contains("limit") && mem["limit"].get<int64_t>() > 0) {
      s.resources.memory_limit = mem["limit"].get<int64_t>();
      if (mem.contains("swap") && mem["swap"].get<int64_t>() != 0) {
        s.resources.memory_swap = mem["swap"].get<int64_t>();
      }
    }
    const json cpu = res.value("cpu", json::object());
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
    s.mask_paths = linux.contains("maskedPaths") || linux.contains("readonlyPaths");
    s.process.seccomp = linux.contains("seccomp");
    return s;
  } catch (const json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("config.json: ", e.what()));
  }
}

}  // namespace shoal::runtime
