#include "kernel/cgroup/cgroup.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <set>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "base/file.h"
#include "base/status.h"
#include "base/unique_fd.h"
#include "kernel/cgroup/devices.h"

namespace shoal::kernel {
namespace {

bool IsV2(const CgroupConfig& c) { return c.mode == CgroupMode::kV2; }

absl::Status WriteFile(const std::string& file, const std::string& value) {
  // O_CREAT only matters when the root is a plain directory (tests); cgroupfs files exist.
  base::UniqueFd fd(open(file.c_str(), O_WRONLY | O_CLOEXEC | O_TRUNC | O_CREAT, 0644));
  if (!fd) return base::ErrnoStatus(errno, "open ", file);
  if (write(fd.get(), value.data(), value.size()) != static_cast<ssize_t>(value.size())) {
    return base::ErrnoStatus(errno, "write \"", value, "\" to ", file);
  }
  return absl::OkStatus();
}

uint64_t KeyValue(const std::string& text, absl::string_view key) {
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    std::pair<absl::string_view, absl::string_view> kv = absl::StrSplit(line, ' ');
    uint64_t v = 0;
    if (kv.first == key && absl::SimpleAtoi(kv.second, &v)) return v;
  }
  return 0;
}

uint64_t Number(const absl::StatusOr<std::string>& text) {
  uint64_t v = 0;
  if (text.ok()) (void)absl::SimpleAtoi(absl::StripAsciiWhitespace(*text), &v);
  return v;
}

// v1: cpu and cpuacct are usually one hierarchy (cpu,cpuacct with two symlinks); create once.
std::vector<std::string> DistinctV1Controllers(const std::string& root) {
  std::vector<std::string> out;
  std::set<std::pair<dev_t, ino_t>> seen;
  for (const std::string& c : V1Controllers()) {
    struct stat st;
    if (stat(absl::StrCat(root, "/", c).c_str(), &st) != 0) continue;
    if (seen.insert({st.st_dev, st.st_ino}).second) out.push_back(c);
  }
  return out;
}

// Writes `writes` into `cg`. Successive writes to one file (the v1 device rules: one rule
// per write) share an fd; files are opened relative to their cgroup directory (one path walk
// per directory).
absl::Status WriteAll(const Cgroup& cg, const std::vector<CgroupWrite>& writes) {
  base::UniqueFd fd, dirfd;
  std::string open_path, open_dir;
  for (const CgroupWrite& w : writes) {
    std::string dir = cg.Dir(w.controller);
    std::string path = absl::StrCat(dir, "/", w.file);
    if (path != open_path) {
      if (dir != open_dir) {
        dirfd.Reset(open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
        open_dir = dirfd ? dir : "";
      }
      // O_CREAT only matters when the root is a plain directory (tests).
      fd.Reset(openat(dirfd.get(), w.file.c_str(), O_WRONLY | O_CLOEXEC | O_TRUNC | O_CREAT,
                      0644));
      open_path = fd ? path : "";
    }
    if (!fd ||
        write(fd.get(), w.value.data(), w.value.size()) != static_cast<ssize_t>(w.value.size())) {
      return absl::InvalidArgumentError(absl::StrCat("resources: kernel rejected ", w.file,
                                                          "=", w.value, ": ", strerror(errno)));
    }
  }
  return absl::OkStatus();
}

}  // namespace

std::vector<std::string> V1Hierarchies(const std::string& root) {
  return DistinctV1Controllers(root);
}

absl::Status ValidateCgroupPath(const std::string& path) {
  if (path.empty() || path.front() == '/') {
    return absl::InvalidArgumentError(
        absl::StrCat("cgroup path \"", path, "\": must be relative and non-empty"));
  }
  for (absl::string_view part : absl::StrSplit(path, '/')) {
    if (part.empty() || part == "." || part == "..") {
      return absl::InvalidArgumentError(
          absl::StrCat("cgroup path \"", path, "\": must not contain empty, . or .. parts"));
    }
  }
  return absl::OkStatus();
}

Cgroup::Cgroup(CgroupConfig config, std::string path, std::vector<std::string> controllers)
    : config_(std::move(config)), path_(std::move(path)), controllers_(std::move(controllers)) {
  for (const std::string& c : controllers_) dirs_.push_back(Dir(c));
}

std::string Cgroup::Dir(const std::string& controller) const {
  if (IsV2(config_)) return absl::StrCat(config_.root, "/", path_);
  // cpu and cpuacct are often one hierarchy mounted as "cpu,cpuacct" with two symlinks, and
  // then only one of the names is in controllers_.
  std::string c = controller;
  if (std::find(controllers_.begin(), controllers_.end(), c) == controllers_.end()) {
    if (c == "cpuacct")
      c = "cpu";
    else if (c == "cpu")
      c = "cpuacct";
  }
  return absl::StrCat(config_.root, "/", c, "/", path_);
}

absl::StatusOr<std::string> Cgroup::Read(const std::string& controller,
                                         const std::string& file) const {
  return base::ReadFile(absl::StrCat(Dir(controller), "/", file));
}

absl::StatusOr<std::unique_ptr<Cgroup>> Cgroup::Create(const CgroupConfig& config,
                                                       const std::string& path,
                                                       const CgroupResources& resources) {
  RETURN_IF_ERROR(ValidateCgroupPath(path));
  std::vector<CgroupWrite> writes;
  if (IsV2(config)) {
    ASSIGN_OR_RETURN(writes, PlanV2(resources));
  } else {
    ASSIGN_OR_RETURN(writes, PlanV1(resources));
    for (CgroupWrite& w : PlanV1Devices()) writes.push_back(std::move(w));
  }
  std::vector<std::string> controllers =
      IsV2(config) ? std::vector<std::string>{""} : DistinctV1Controllers(config.root);
  if (controllers.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("no cgroup v1 controllers under ", config.root));
  }
  std::unique_ptr<Cgroup> cg(new Cgroup(config, path, controllers));
  // Ancestors may already exist (shared parent); only the leaf is ours and must be new.
  std::vector<std::string> parts = absl::StrSplit(path, '/');
  std::vector<std::string> created;
  auto fail = [&](absl::Status s) {
    for (auto it = created.rbegin(); it != created.rend(); ++it) rmdir(it->c_str());
    return s;
  };
  // v1 cpuset: a new cgroup starts with empty cpus/mems and rejects tasks (ENOSPC on join);
  // copy the parent's (crun initialize_cpuset_subsystem). A parent can still be empty when
  // another container created it a moment ago and has not filled it yet (two replicas
  // starting at once under a new shared parent): fill it first, up to the hierarchy root.
  const std::string cpuset_root = absl::StrCat(config.root, "/cpuset");
  std::function<absl::Status(const std::string&, const std::string&)> init_cpuset =
      [&](const std::string& parent, const std::string& dir) -> absl::Status {
    for (const char* f : {"cpuset.cpus", "cpuset.mems"}) {
      ASSIGN_OR_RETURN(std::string v, base::ReadFile(absl::StrCat(parent, "/", f)));
      v = std::string(absl::StripAsciiWhitespace(v));
      if (v.empty() && parent.size() > cpuset_root.size()) {
        RETURN_IF_ERROR(init_cpuset(parent.substr(0, parent.rfind('/')), parent));
        ASSIGN_OR_RETURN(v, base::ReadFile(absl::StrCat(parent, "/", f)));
        v = std::string(absl::StripAsciiWhitespace(v));
      }
      RETURN_IF_ERROR(WriteFile(absl::StrCat(dir, "/", f), v));
    }
    return absl::OkStatus();
  };
  for (const std::string& c : controllers) {
    std::string base = IsV2(config) ? config.root : absl::StrCat(config.root, "/", c);
    if (!IsV2(config)) {
      // The ancestors usually exist (earlier containers): try the leaf alone first. (v2
      // walks every level to enable the controllers in each parent's subtree_control.)
      std::string leaf = absl::StrCat(base, "/", path);
      if (mkdir(leaf.c_str(), 0755) == 0) {
        created.push_back(leaf);
        if (c == "cpuset") {
          if (auto s = init_cpuset(leaf.substr(0, leaf.rfind('/')), leaf); !s.ok()) {
            return fail(s);
          }
        }
        continue;
      }
      if (errno == EEXIST) {
        return fail(absl::AlreadyExistsError(absl::StrCat("cgroup ", leaf, " already exists")));
      }
      if (errno != ENOENT) return fail(base::ErrnoStatus(errno, "mkdir ", leaf));
    }
    std::string dir = base;
    for (size_t i = 0; i < parts.size(); ++i) {
      std::string parent = dir;
      dir = absl::StrCat(dir, "/", parts[i]);
      bool leaf = i + 1 == parts.size();
      if (IsV2(config)) {
        // Enable the controllers for children, one at a time (missing ones are skipped).
        for (const char* ctl : {"+cpu", "+memory", "+pids", "+cpuset", "+io"}) {
          (void)WriteFile(parent + "/cgroup.subtree_control", ctl);
        }
      }
      if (mkdir(dir.c_str(), 0755) != 0) {
        if (errno == EEXIST && !leaf) continue;
        return fail(errno == EEXIST
                        ? absl::AlreadyExistsError(absl::StrCat("cgroup ", dir, " already exists"))
                        : base::ErrnoStatus(errno, "mkdir ", dir));
      }
      created.push_back(dir);
      if (c == "cpuset") {
        if (auto s = init_cpuset(parent, dir); !s.ok()) return fail(s);
      }
    }
  }
  if (auto st = WriteAll(*cg, writes); !st.ok()) return fail(st);
  if (IsV2(config) && config.device_filter) {
    // In place before any process joins (the setup child is cloned into it afterwards).
    absl::Status s =
        AttachDeviceProgram(cg->Dir(""), BuildDeviceProgram(DockerDefaultDeviceRules()));
    if (!s.ok()) return fail(s);
  }
  return cg;
}

absl::StatusOr<std::unique_ptr<Cgroup>> Cgroup::Adopt(const CgroupConfig& config,
                                                      const std::string& path,
                                                      const std::string& pooled,
                                                      const CgroupResources& resources) {
  RETURN_IF_ERROR(ValidateCgroupPath(path));
  if (IsV2(config)) return absl::FailedPreconditionError("cgroup2 cannot rename a cgroup");
  ASSIGN_OR_RETURN(std::vector<CgroupWrite> writes, PlanV1(resources));
  std::unique_ptr<Cgroup> cg(new Cgroup(config, path, DistinctV1Controllers(config.root)));
  const std::string parent = path.substr(0, path.rfind('/') + 1);  // "" or "a/b/"
  absl::Status status = absl::OkStatus();
  size_t renamed = 0;
  for (const std::string& c : cg->controllers_) {
    std::string from = absl::StrCat(config.root, "/", c, "/", parent, pooled);
    std::string to = cg->Dir(c);
    if (rename(from.c_str(), to.c_str()) != 0) {
      status = errno == EEXIST || errno == ENOTEMPTY
                   ? absl::AlreadyExistsError(absl::StrCat("cgroup ", to, " already exists"))
                   : base::ErrnoStatus(errno, "rename ", from, " to ", to);
      break;
    }
    ++renamed;
  }
  if (status.ok()) status = WriteAll(*cg, writes);
  if (!status.ok()) {
    // The pooled cgroup is consumed either way: remove what was renamed and what was not.
    for (size_t i = 0; i < cg->controllers_.size(); ++i) {
      const std::string& c = cg->controllers_[i];
      rmdir((i < renamed ? cg->Dir(c) : absl::StrCat(config.root, "/", c, "/", parent, pooled))
                .c_str());
    }
    return status;
  }
  return cg;
}

absl::StatusOr<std::unique_ptr<Cgroup>> Cgroup::Open(const CgroupConfig& config,
                                                     const std::string& path) {
  RETURN_IF_ERROR(ValidateCgroupPath(path));
  std::vector<std::string> controllers =
      IsV2(config) ? std::vector<std::string>{""} : DistinctV1Controllers(config.root);
  std::unique_ptr<Cgroup> cg(new Cgroup(config, path, controllers));
  struct stat st;
  if (stat(cg->dirs_.front().c_str(), &st) != 0) {
    return base::ErrnoStatus(errno, "open cgroup ", cg->dirs_.front());
  }
  return cg;
}

absl::StatusOr<base::UniqueFd> Cgroup::OpenDir() const {
  if (!IsV2(config_)) return absl::FailedPreconditionError("CLONE_INTO_CGROUP needs cgroup v2");
  std::string dir = Dir("");
  base::UniqueFd fd(open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!fd) return base::ErrnoStatus(errno, "open ", dir);
  return fd;
}

absl::StatusOr<std::vector<base::UniqueFd>> Cgroup::OpenProcs() const {
  std::vector<base::UniqueFd> fds;
  for (const std::string& dir : dirs_) {
    std::string path = dir + "/cgroup.procs";
    base::UniqueFd fd(open(path.c_str(), O_WRONLY | O_CLOEXEC));
    if (!fd) return base::ErrnoStatus(errno, "open ", path);
    fds.push_back(std::move(fd));
  }
  return fds;
}

absl::Status Cgroup::AddProcess(pid_t pid) {
  for (const std::string& dir : dirs_) {
    RETURN_IF_ERROR(WriteFile(dir + "/cgroup.procs", absl::StrCat(pid)));
  }
  return absl::OkStatus();
}

absl::Status Cgroup::Delegate(uid_t uid, gid_t gid) {
  if (!IsV2(config_)) return absl::OkStatus();
  const std::string dir = Dir("");
  for (const char* name : {"", "/cgroup.procs", "/cgroup.threads", "/cgroup.subtree_control"}) {
    std::string path = dir + name;
    if (chown(path.c_str(), uid, gid) != 0 && !(errno == ENOENT && name[0])) {
      return base::ErrnoStatus(errno, "chown ", path);
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<pid_t>> Cgroup::Pids() const {
  ASSIGN_OR_RETURN(std::string text, Read(IsV2(config_) ? "" : "memory", "cgroup.procs"));
  std::vector<pid_t> pids;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    pid_t p;
    if (absl::SimpleAtoi(line, &p)) pids.push_back(p);
  }
  return pids;
}

absl::StatusOr<uint64_t> Cgroup::OomKills() const {
  if (IsV2(config_)) {
    ASSIGN_OR_RETURN(std::string events, Read("", "memory.events"));
    return KeyValue(events, "oom_kill");
  }
  ASSIGN_OR_RETURN(std::string ctl, Read("memory", "memory.oom_control"));
  return KeyValue(ctl, "oom_kill");
}

absl::StatusOr<CgroupStats> Cgroup::Stats() const {
  CgroupStats s;
  if (IsV2(config_)) {
    s.memory_usage = Number(Read("", "memory.current"));
    s.memory_max_usage = Number(Read("", "memory.peak"));
    s.memory_limit = Number(Read("", "memory.max"));  // "max" parses as 0
    auto cpu = Read("", "cpu.stat");
    if (cpu.ok()) {
      s.cpu_usage_ns = KeyValue(*cpu, "usage_usec") * 1000;
      s.cpu_nr_periods = KeyValue(*cpu, "nr_periods");
      s.cpu_nr_throttled = KeyValue(*cpu, "nr_throttled");
      s.cpu_throttled_ns = KeyValue(*cpu, "throttled_usec") * 1000;
    }
  } else {
    s.memory_usage = Number(Read("memory", "memory.usage_in_bytes"));
    s.memory_max_usage = Number(Read("memory", "memory.max_usage_in_bytes"));
    s.memory_limit = Number(Read("memory", "memory.limit_in_bytes"));
    if (s.memory_limit >= (uint64_t{1} << 62)) s.memory_limit = 0;
    s.cpu_usage_ns = Number(Read("cpuacct", "cpuacct.usage"));
    auto cpu = Read("cpu", "cpu.stat");
    if (cpu.ok()) {
      s.cpu_nr_periods = KeyValue(*cpu, "nr_periods");
      s.cpu_nr_throttled = KeyValue(*cpu, "nr_throttled");
      s.cpu_throttled_ns = KeyValue(*cpu, "throttled_time");
    }
  }
  s.pids_current = Number(Read("pids", "pids.current"));
  auto oom = OomKills();
  if (oom.ok()) s.oom_kills = *oom;
  return s;
}

absl::Status Cgroup::KillAll() {
  if (IsV2(config_)) {
    std::string kill_file = Dir("") + "/cgroup.kill";
    if (access(kill_file.c_str(), F_OK) == 0) return WriteFile(kill_file, "1");
  }
  // Freeze so nothing forks between listing and killing; always thaw.
  const std::string freezer =
      IsV2(config_) ? Dir("") + "/cgroup.freeze" : Dir("freezer") + "/freezer.state";
  const bool can_freeze = access(freezer.c_str(), F_OK) == 0;
  if (can_freeze) (void)WriteFile(freezer, IsV2(config_) ? "1" : "FROZEN");
  // SIGKILL is delivered to frozen tasks once they are thawed below.
  absl::Status result = absl::OkStatus();
  auto pids = Pids();
  if (pids.ok()) {
    for (pid_t p : *pids) kill(p, SIGKILL);
  } else {
    result = pids.status();
  }
  if (can_freeze) (void)WriteFile(freezer, IsV2(config_) ? "0" : "THAWED");
  return result;
}

absl::Status Cgroup::Remove(absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  absl::Status last = absl::OkStatus();
  // Leaf first; ancestors are shared with other containers and stay.
  for (const std::string& dir : dirs_) {
    while (true) {
      if (rmdir(dir.c_str()) == 0 || errno == ENOENT) break;
      if (errno != EBUSY || absl::Now() > deadline) {
        last = base::ErrnoStatus(errno, "rmdir ", dir);
        break;
      }
      usleep(2000);  // the last task is still exiting; poll with a deadline
    }
  }
  return last;
}

}  // namespace shoal::kernel
