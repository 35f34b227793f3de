#include "agent/container_spec.h"

#include <signal.h>
#include <string.h>

#include <map>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"

namespace shoal::agent {

namespace {

absl::Status Bad(const std::string& field, const std::string& why) {
  return absl::InvalidArgumentError(absl::StrCat("task spec: container.", field, ": ", why));
}

// Finds `name` (or a numeric id) in /etc/passwd- or /etc/group-style text: field 0 name,
// field 2 id, field 3 (passwd) primary gid.
bool LookupName(const std::string& text, const std::string& name, uint32_t* id, uint32_t* gid) {
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    std::vector<std::string> f = absl::StrSplit(line, ':');
    if (f.size() < 3 || f[0] != name) continue;
    if (!absl::SimpleAtoi(f[2], id)) return false;
    if (gid != nullptr && (f.size() < 4 || !absl::SimpleAtoi(f[3], gid))) *gid = *id;
    return true;
  }
  return false;
}

// Docker's env merge: the image's variables, overridden by the task's (by name).
std::vector<std::string> MergeEnv(const std::vector<std::string>& image,
                                  const google::protobuf::RepeatedPtrField<std::string>& task) {
  std::vector<std::string> out;
  std::map<std::string, size_t> index;
  auto add = [&](const std::string& kv) {
    std::string key = kv.substr(0, kv.find('='));
    auto it = index.find(key);
    if (it != index.end()) {
      out[it->second] = kv;
    } else {
      index[key] = out.size();
      out.push_back(kv);
    }
  };
  for (const auto& kv : image) add(kv);
  for (const auto& kv : task) add(kv);
  return out;
}

}  // namespace

absl::StatusOr<int> ParseSignal(const std::string& name) {
  int n = 0;
  if (absl::SimpleAtoi(name, &n)) {
    if (n <= 0 || n >= NSIG) return Bad("stop_signal", absl::StrCat("no signal ", name));
    return n;
  }
  std::string up = absl::AsciiStrToUpper(name);
  if (absl::StartsWith(up, "SIG")) up = up.substr(3);
  for (int sig = 1; sig < NSIG; ++sig) {
    const char* abbrev = sigabbrev_np(sig);
    if (abbrev != nullptr && up == abbrev) return sig;
  }
  return Bad("stop_signal", absl::StrCat("unknown signal \"", name, "\""));
}

absl::StatusOr<UserIds> ResolveUser(const std::string& user, const std::string& passwd,
                                    const std::string& group) {
  UserIds ids;
  if (user.empty()) return ids;
  std::pair<std::string, std::string> ug = absl::StrSplit(user, absl::MaxSplits(':', 1));
  bool gid_set = false;
  if (absl::SimpleAtoi(ug.first, &ids.uid)) {
    uint32_t gid = 0, id = 0;
    // A numeric user keeps its passwd primary group when it has one.
    for (absl::string_view line : absl::StrSplit(passwd, '\n', absl::SkipEmpty())) {
      std::vector<std::string> f = absl::StrSplit(line, ':');
      if (f.size() >= 4 && absl::SimpleAtoi(f[2], &id) && id == ids.uid &&
          absl::SimpleAtoi(f[3], &gid)) {
        ids.gid = gid;
        break;
      }
    }
  } else if (!LookupName(passwd, ug.first, &ids.uid, &ids.gid)) {
    return Bad("user", absl::StrCat("no user \"", ug.first, "\" in the image's /etc/passwd"));
  }
  if (!ug.second.empty()) {
    if (!absl::SimpleAtoi(ug.second, &ids.gid) &&
        !LookupName(group, ug.second, &ids.gid, nullptr)) {
      return Bad("user", absl::StrCat("no group \"", ug.second, "\" in the image's /etc/group"));
    }
    gid_set = true;
  }
  (void)gid_set;
  return ids;
}

absl::StatusOr<runtime::ContainerSpec> BuildContainerSpec(const SpecInputs& in) {
  const api::Task& task = *in.task;
  const api::ContainerSpec& c = task.spec().container();
  const runtime::images::ImageConfig& img = *in.image;
  runtime::ContainerSpec spec;
  spec.id = task.id();
  spec.rootfs = in.rootfs_dir;
  spec.overlay.lower_dirs = in.lower_dirs;
  spec.overlay.upper_dir = in.upper_dir;
  spec.overlay.work_dir = in.work_dir;
  spec.readonly_rootfs = c.read_only();
  spec.hostname = c.hostname().empty() ? task.id().substr(0, 12) : c.hostname();

  // Docker: command replaces the entrypoint (and drops the image's cmd); args replace cmd.
  std::vector<std::string> entrypoint(img.entrypoint.begin(), img.entrypoint.end());
  std::vector<std::string> cmd(img.cmd.begin(), img.cmd.end());
  if (!c.command().empty()) {
    entrypoint.assign(c.command().begin(), c.command().end());
    cmd.clear();
  }
  if (!c.args().empty()) cmd.assign(c.args().begin(), c.args().end());
  spec.process.args = entrypoint;
  spec.process.args.insert(spec.process.args.end(), cmd.begin(), cmd.end());
  if (spec.process.args.empty()) {
    return Bad("command", "no command: neither the task nor the image has one");
  }
  spec.process.env = MergeEnv(img.env, c.env());
  spec.process.cwd = !c.dir().empty() ? c.dir() : !img.working_dir.empty() ? img.working_dir : "/";
  if (spec.process.cwd[0] != '/') return Bad("dir", "must be an absolute path");
  const std::string& user = !c.user().empty() ? c.user() : img.user;
  auto ids = ResolveUser(user, in.passwd, in.group);
  if (!ids.ok()) return ids.status();
  spec.process.uid = ids->uid;
  spec.process.gid = ids->gid;
  for (int i = 0; i < c.groups_size(); ++i) {
    uint32_t gid = 0;
    if (!absl::SimpleAtoi(c.groups(i), &gid) && !LookupName(in.group, c.groups(i), &gid, nullptr)) {
      return Bad(absl::StrCat("groups[", i, "]"),
                 absl::StrCat("no group \"", c.groups(i), "\" in the image's /etc/group"));
    }
    spec.process.additional_gids.push_back(gid);
  }
  spec.process.cap_add.assign(c.capability_add().begin(), c.capability_add().end());
  spec.process.cap_drop.assign(c.capability_drop().begin(), c.capability_drop().end());
  spec.process.no_new_privileges = c.no_new_privileges();
  if (c.seccomp_profile() == "unconfined") {
    spec.process.seccomp = false;
  } else if (!c.seccomp_profile().empty()) {
    return Bad("seccomp_profile", "only \"\" (default) and \"unconfined\" are supported");
  }
  for (int i = 0; i < c.ulimits_size(); ++i) {
    const auto& u = c.ulimits(i);
    if (runtime::RlimitResource(u.name()) < 0) {
      return Bad(absl::StrCat("ulimits[", i, "].name"), absl::StrCat("unknown \"", u.name(), "\""));
    }
    if (u.soft() < 0 || u.hard() < 0 || u.soft() > u.hard()) {
      return Bad(absl::StrCat("ulimits[", i, "]"), "need 0 <= soft <= hard");
    }
    spec.process.rlimits.push_back(
        {u.name(), static_cast<uint64_t>(u.soft()), static_cast<uint64_t>(u.hard())});
  }
  if (!c.sysctls().empty()) return Bad("sysctls", "not supported by the agent yet");
  if (c.tty()) return Bad("tty", "not supported by the agent yet");
  if (c.init()) {
    if (in.init_path.empty()) return Bad("init", "this node has no shoal-init configured");
    spec.init_path = in.init_path;
  }

  for (int i = 0; i < c.mounts_size(); ++i) {
    const api::Mount& m = c.mounts(i);
    std::string field = absl::StrCat("mounts[", i, "]");
    if (m.target().empty() || m.target()[0] != '/') {
      return Bad(field + ".target", "must be an absolute path");
    }
    runtime::MountSpec ms;
    ms.destination = m.target();
    switch (m.type()) {
      case api::Mount::TYPE_BIND:
        if (m.source().empty() || m.source()[0] != '/') {
          return Bad(field + ".source", "a bind mount needs an absolute host path");
        }
        ms.type = "bind";
        ms.source = m.source();
        ms.options = {"rbind"};
        if (m.readonly()) ms.options.push_back("ro");
        break;
      case api::Mount::TYPE_VOLUME:
        if (m.source().empty() || absl::StrContains(m.source(), "/") || m.source() == "." ||
            m.source() == "..") {
          return Bad(field + ".source", "a volume mount needs a volume name");
        }
        ms.type = "bind";
        ms.source = absl::StrCat(in.volumes_dir, "/", m.source(), "/_data");
        ms.options = {"rbind"};
        if (m.readonly()) ms.options.push_back("ro");
        break;
      case api::Mount::TYPE_TMPFS:
        ms.type = "tmpfs";
        ms.source = "tmpfs";
        ms.options = {"nosuid", "nodev"};
        if (m.tmpfs_size_bytes() > 0)
          ms.options.push_back(absl::StrCat("size=", m.tmpfs_size_bytes()));
        if (m.tmpfs_mode() != 0)
          ms.options.push_back(absl::StrCat("mode=", absl::StrFormat("%o", m.tmpfs_mode())));
        if (m.readonly()) ms.options.push_back("ro");
        break;
      default:
        return Bad(field + ".type", "unknown mount type");
    }
    spec.mounts.push_back(std::move(ms));
  }
  for (const auto& m : in.extra_mounts) spec.mounts.push_back(m);

  // Resources (limits; reservations are the scheduler's).
  const api::ResourceRequirements& r = task.spec().resources();
  if (r.limits().nano_cpus() > 0) {
    constexpr uint64_t kPeriod = 100000;  // us
    spec.resources.cpu_period_us = kPeriod;
    spec.resources.cpu_quota_us = std::max<int64_t>(
        1000, r.limits().nano_cpus() * static_cast<int64_t>(kPeriod) / 1000000000);
  }
  if (r.limits().memory_bytes() > 0) {
    spec.resources.memory_limit = r.limits().memory_bytes();
    if (r.swap_bytes() == -1) {
      spec.resources.memory_swap = -1;
    } else if (r.swap_bytes() > 0) {
      spec.resources.memory_swap = r.swap_bytes();
    }
  }
  if (c.pids_limit() > 0) spec.resources.pids_limit = c.pids_limit();
  if (c.pids_limit() < 0) return Bad("pids_limit", "must be >= 0");
  return spec;
}

}  // namespace shoal::agent
