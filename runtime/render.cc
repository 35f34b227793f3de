// Parent side: turns a validated spec into the InitPlan the child executes verbatim.
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "absl/algorithm/container.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "base/status.h"
#include "kernel/mount/mount.h"
#include "runtime/init.h"

namespace shoal::runtime {
namespace {

constexpr char kDefaultPath[] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
constexpr unsigned long kNoSuidDevExec = MS_NOSUID | MS_NODEV | MS_NOEXEC;

std::string Rel(const std::string& path) {
  size_t i = path.find_first_not_of('/');
  return i == std::string::npos ? "." : path.substr(i);
}

}  // namespace

absl::Status RenderProcess(const ProcessSpec& p, const std::string& hostname,
                           std::deque<std::string>& strings, kernel::SeccompCache& seccomp,
                           ProcessPlan* out) {
  auto str = [&](std::string s) { return strings.emplace_back(std::move(s)).data(); };
  for (const std::string& a : p.args) out->argv.push_back(str(a));
  out->argv.push_back(nullptr);
  bool has_path = false, has_host = false, has_home = false;
  std::string path_value = kDefaultPath;
  for (const std::string& e : p.env) {
    if (absl::StartsWith(e, "PATH=")) {
      has_path = true;
      path_value = e.substr(5);
    }
    has_host |= absl::StartsWith(e, "HOSTNAME=");
    has_home |= absl::StartsWith(e, "HOME=");
    out->envp.push_back(str(e));
  }
  if (!has_path) out->envp.push_back(str(absl::StrCat("PATH=", kDefaultPath)));
  if (!has_host && !hostname.empty()) out->envp.push_back(str("HOSTNAME=" + hostname));
  if (!has_home) out->envp.push_back(str(p.uid == 0 ? "HOME=/root" : "HOME=/"));
  out->envp.push_back(nullptr);
  for (absl::string_view dir : absl::StrSplit(path_value, ':', absl::SkipEmpty())) {
    out->path_dirs.push_back(str(std::string(dir)));
  }
  out->cwd = str(p.cwd);
  out->uid = p.uid;
  out->gid = p.gid;
  out->groups.assign(p.additional_gids.begin(), p.additional_gids.end());
  out->last_cap = kernel::LastCap();
  ASSIGN_OR_RETURN(out->caps, kernel::ComputeCaps(kernel::DockerDefaultCaps(), p.cap_add,
                                                  p.cap_drop, out->last_cap));
  out->no_new_privs = p.no_new_privileges;
  if (p.seccomp) {
    auto prog = p.seccomp_profile ? seccomp.Get(*p.seccomp_profile)
                                  : seccomp.DockerDefault(out->caps);
    if (!prog.ok()) return base::Annotate(prog.status(), "process.seccomp_profile");
    out->seccomp = *std::move(prog);
  }
  for (const Rlimit& r : p.rlimits) {
    out->rlimits.push_back({RlimitResource(r.type), r.soft, r.hard});
  }
  out->terminal = p.terminal;
  out->terminal_rows = p.terminal_rows;
  out->terminal_cols = p.terminal_cols;
  out->scratch.resize(8192);
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<InitPlan>> RenderInit(const ContainerSpec& spec,
                                                     kernel::CgroupMode mode,
                                                     const std::vector<std::string>& cgroup_mounts,
                                                     kernel::SeccompCache& seccomp) {
  auto plan = std::make_unique<InitPlan>();
  InitPlan& p = *plan;
  p.rootfs = p.Str(spec.rootfs);
  if (!spec.overlay.lower_dirs.empty()) {
    std::string data = absl::StrCat("lowerdir=", absl::StrJoin(spec.overlay.lower_dirs, ":"));
    if (!spec.overlay.upper_dir.empty()) {
      absl::StrAppend(&data, ",upperdir=", spec.overlay.upper_dir,
                      ",workdir=", spec.overlay.work_dir);
    }
    // The mount data is one page (runtime.md §6): fail with a clear error, not EINVAL later.
    if (data.size() >= 4096) {
      return absl::InvalidArgumentError(
          absl::StrCat("overlay: mount options are ", data.size(), " bytes (limit 4095)"));
    }
    p.overlay_data = p.Str(data);
  }
  std::string hostname = spec.hostname.empty() ? spec.id.substr(0, 12) : spec.hostname;
  p.hostname = p.Str(hostname);
  ProcessSpec process = spec.process;
  if (!spec.init_path.empty()) {
    process.args.insert(process.args.begin(), {"/dev/init", "--"});
  }
  RETURN_IF_ERROR(RenderProcess(process, hostname, p.strings, seccomp, &p.process));

  auto mount = [&](const std::string& path, const char* source, const char* fstype,
                   unsigned long flags, const std::string& data, bool file_target = false) {
    InitOp op;
    op.kind = InitOp::kMount;
    op.path = p.Str(Rel(path));
    op.source = source;
    op.fstype = fstype;
    op.flags = flags;
    op.data = data.empty() ? nullptr : p.Str(data);
    op.file_target = file_target;
    p.ops.push_back(op);
  };
  auto node = [&](InitOp::Kind kind, const char* dir, const char* name, const char* target,
                  unsigned mode_bits, dev_t dev) {
    InitOp op;
    op.kind = kind;
    op.path = dir;
    op.name = name;
    op.source = target;
    op.mode = mode_bits;
    op.dev = dev;
    p.ops.push_back(op);
  };

  // Default filesystems (runtime-spec config-linux.md, Docker's defaults).
  mount("/proc", "proc", "proc", kNoSuidDevExec, "");
  mount("/dev", "tmpfs", "tmpfs", MS_NOSUID | MS_STRICTATIME, "mode=755,size=65536k");
  struct Dev {
    const char* name;
    unsigned major, minor;
  };
  p.userns = spec.user_namespace();
  for (const Dev& d : {Dev{"null", 1, 3}, Dev{"zero", 1, 5}, Dev{"full", 1, 7}, Dev{"tty", 5, 0},
                       Dev{"random", 1, 8}, Dev{"urandom", 1, 9}}) {
    if (p.userns) {
      // mknod of a device needs CAP_MKNOD in the initial user namespace (and a tmpfs mounted
      // in a user namespace is nodev): bind the host's node instead (runc createDevices).
      mount(absl::StrCat("/dev/", d.name), p.Str(absl::StrCat("/dev/", d.name)), nullptr, MS_BIND,
            "", /*file_target=*/true);
    } else {
      node(InitOp::kMknod, "dev", d.name, nullptr, S_IFCHR | 0666, makedev(d.major, d.minor));
    }
  }
  node(InitOp::kSymlink, "dev", "fd", "/proc/self/fd", 0, 0);
  node(InitOp::kSymlink, "dev", "stdin", "/proc/self/fd/0", 0, 0);
  node(InitOp::kSymlink, "dev", "stdout", "/proc/self/fd/1", 0, 0);
  node(InitOp::kSymlink, "dev", "stderr", "/proc/self/fd/2", 0, 0);
  node(InitOp::kSymlink, "dev", "ptmx", "pts/ptmx", 0, 0);
  // gid=5 (tty) must exist inside the user namespace, or the kernel rejects the mount.
  bool tty_gid = !p.userns || kernel::MapToHost(spec.gid_mappings, 5).has_value();
  mount("/dev/pts", "devpts", "devpts", MS_NOSUID | MS_NOEXEC,
        tty_gid ? "newinstance,ptmxmode=0666,mode=0620,gid=5"
                : "newinstance,ptmxmode=0666,mode=0620");
  mount("/dev/shm", "shm", "tmpfs", kNoSuidDevExec, "mode=1777,size=65536k");
  mount("/dev/mqueue", "mqueue", "mqueue", kNoSuidDevExec, "");
  if (!spec.init_path.empty()) {
    // On the fresh /dev tmpfs, so the image never sees (or redirects) the mountpoint.
    mount("/dev/init", p.Str(spec.init_path), nullptr, MS_BIND, "", /*file_target=*/true);
    InitOp ro;
    ro.kind = InitOp::kRemountRo;
    ro.path = "dev/init";
    ro.flags = MS_NOSUID | MS_NODEV | MS_RDONLY;
    p.ops.push_back(ro);
  }
  if (p.userns && !spec.netns_path.empty()) {
    // sysfs can only be mounted by the user namespace owning the network namespace; with a
    // joined one (owned by the host's), bind the host's /sys read-only (crun
    // sysfs_userns_fallback). Recursive: a mount namespace copied into a user namespace has
    // locked submounts, which a plain bind refuses.
    mount("/sys", "/sys", nullptr, MS_BIND | MS_REC, "");
    InitOp ro;
    ro.kind = InitOp::kRemountRo;
    ro.path = "sys";
    ro.flags = kNoSuidDevExec | MS_RDONLY;
    p.ops.push_back(ro);
  } else {
    mount("/sys", "sysfs", "sysfs", kNoSuidDevExec | MS_RDONLY, "");
  }
  if (mode == kernel::CgroupMode::kV2) {
    if (p.userns && !spec.netns_path.empty()) {
      // The bound host /sys brings the host's cgroup2 mount along, and the kernel refuses
      // the same superblock on the same mountpoint (EBUSY): cover it first.
      mount("/sys/fs/cgroup", "tmpfs", "tmpfs", kNoSuidDevExec, "mode=755,size=0k");
    }
    mount("/sys/fs/cgroup", "cgroup", "cgroup2", kNoSuidDevExec | MS_RDONLY, "");
  } else {
    // v1: a tmpfs with one read-only mount per hierarchy; the cgroup namespace makes each show
    // only the container's own cgroup.
    mount("/sys/fs/cgroup", "tmpfs", "tmpfs", kNoSuidDevExec, "mode=755");
    for (const std::string& h : cgroup_mounts) {
      mount("/sys/fs/cgroup/" + h, "cgroup", "cgroup", kNoSuidDevExec | MS_RDONLY, h);
      for (absl::string_view part : absl::StrSplit(h, ',')) {
        if (part != h) {
          node(InitOp::kSymlink, "sys/fs/cgroup", p.Str(std::string(part)), p.Str(h), 0, 0);
        }
      }
    }
    InitOp ro;
    ro.kind = InitOp::kRemountRo;
    ro.path = "sys/fs/cgroup";
    ro.flags = kNoSuidDevExec | MS_RDONLY;
    p.ops.push_back(ro);
  }

  for (const MountSpec& m : spec.mounts) {
    ASSIGN_OR_RETURN(kernel::MountOptions o, kernel::ParseMountOptions(m.options));
    if (m.type == "tmpfs") {
      mount(m.destination, "tmpfs", "tmpfs", o.flags | (o.readonly ? MS_RDONLY : 0), o.data);
    } else {
      struct stat st;
      if (stat(m.source.c_str(), &st) != 0) {
        return base::ErrnoStatus(errno, "mounts: stat ", m.source);
      }
      bool explicit_nonrec = absl::c_linear_search(m.options, "bind");
      mount(m.destination, p.Str(m.source), nullptr, MS_BIND | (explicit_nonrec ? 0 : MS_REC), "",
            !S_ISDIR(st.st_mode));
      if (o.readonly || (o.flags & kNoSuidDevExec)) {
        InitOp ro;
        ro.kind = InitOp::kRemountRo;
        ro.path = p.Str(Rel(m.destination));
        ro.flags = (o.flags & (kNoSuidDevExec | MS_NOATIME)) | (o.readonly ? MS_RDONLY : 0);
        p.ops.push_back(ro);
      }
    }
    if (o.propagation) mount(m.destination, nullptr, nullptr, o.propagation, "");
  }
  if (spec.mask_paths) {
    for (const std::string& m : kernel::DockerMaskedPaths()) p.masked.push_back(p.Str(Rel(m)));
    for (const std::string& r : kernel::DockerReadonlyPaths()) {
      p.readonly.push_back(p.Str(Rel(r)));
    }
  }
  p.readonly_rootfs = spec.readonly_rootfs;
  p.scratch.resize(8192);
  return plan;
}

}  // namespace shoal::runtime
