// The setup child (runtime.md §1.8 "Child"). Runs after a fork-like clone of a possibly
// multithreaded parent: raw syscalls only, no allocation, every path in-root via fds.
#include "runtime/init.h"

#include <fcntl.h>
#include <grp.h>
#include <linux/close_range.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "kernel/caps/caps.h"
#include "kernel/mount/mount.h"
#include "kernel/ns/ns.h"
#include "kernel/seccomp/seccomp.h"
#include "runtime/sync.h"
#include "runtime/terminal.h"

namespace shoal::runtime {
namespace {

[[noreturn]] void Fail(int sock, int err, const char* what, const char* detail = "") {
  SendFrameRaw(sock, Msg::kError, err, 0, what, detail[0] ? " " : "", detail);
  _exit(126);
}

void Check(int sock, long rc, const char* what, const char* detail = "") {
  if (rc < 0) Fail(sock, errno, what, detail);
}
void CheckNeg(int sock, int rc, const char* what, const char* detail = "") {
  if (rc < 0) Fail(sock, -rc, what, detail);
}

// nosuid/nodev/noexec of the mount `fd` is on: a bind remount must keep them, and in a user
// namespace the kernel refuses to clear them (locked flags, runc finalizeRootfs).
unsigned long LockedFlags(int fd) {
  struct statfs sfs;
  if (fstatfs(fd, &sfs) != 0) return 0;
  return (sfs.f_flags & ST_NOSUID ? MS_NOSUID : 0) | (sfs.f_flags & ST_NODEV ? MS_NODEV : 0) |
         (sfs.f_flags & ST_NOEXEC ? MS_NOEXEC : 0);
}

// The in-root directory the last mknod/symlink/mkdir op opened: /dev's eleven nodes and
// symlinks share one open.
struct DirCache {
  const char* path = nullptr;
  int fd = -1;
  ~DirCache() {
    if (fd >= 0) close(fd);
  }
};

void DoOp(const InitPlan& plan, int root, const InitOp& op, int sock, DirCache& cache) {
  char fdbuf[32];
  switch (op.kind) {
    case InitOp::kMount: {
      if (cache.fd >= 0) close(cache.fd);
      cache.fd = -1;  // the mount may cover the cached directory
      int fd = kernel::MkdirAllInRootRaw(root, op.path, op.file_target, plan.scratch.data());
      CheckNeg(sock, fd, "create mountpoint", op.path);
      const char* source = op.source;
      Check(sock, mount(source, FdPath(fdbuf, fd), op.fstype, op.flags, op.data), "mount", op.path);
      close(fd);
      return;
    }
    case InitOp::kRemountRo: {
      int fd = kernel::OpenInRootRaw(root, op.path, O_PATH);
      CheckNeg(sock, fd, "open for remount", op.path);
      Check(sock,
            mount(nullptr, FdPath(fdbuf, fd), nullptr,
                  MS_REMOUNT | MS_BIND | op.flags | LockedFlags(fd), nullptr),
            "remount", op.path);
      close(fd);
      return;
    }
    case InitOp::kMknod:
    case InitOp::kSymlink:
    case InitOp::kMkdir: {
      // CVE-2026-41579/47766: all /dev work relative to a dirfd resolved in-root, on the
      // fresh tmpfs; never through image-supplied symlinks.
      if (cache.fd < 0 || cache.path != op.path) {
        if (cache.fd >= 0) close(cache.fd);
        cache.fd = kernel::OpenInRootRaw(root, op.path, O_PATH | O_DIRECTORY);
        cache.path = op.path;
        CheckNeg(sock, cache.fd, "open", op.path);
      }
      int dir = cache.fd;
      long rc = op.kind == InitOp::kMknod     ? mknodat(dir, op.name, op.mode, op.dev)
                : op.kind == InitOp::kSymlink ? symlinkat(op.source, dir, op.name)
                                              : mkdirat(dir, op.name, op.mode);
      if (rc < 0 && errno != EEXIST) Fail(sock, errno, "create", op.name);
      return;
    }
  }
}

void MaskAndReadonly(const InitPlan& plan, int sock) {
  char a[32], b[32];
  int root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
  Check(sock, root, "open /");
  // CVE-2025-31133: bind only a verified /dev/null (char 1:3) by fd.
  int devnull = kernel::OpenInRootRaw(root, "dev/null", O_PATH | O_NOFOLLOW);
  CheckNeg(sock, devnull, "open /dev/null");
  struct stat st;
  if (fstat(devnull, &st) < 0 || !S_ISCHR(st.st_mode) || st.st_rdev != makedev(1, 3)) {
    Fail(sock, EPERM, "/dev/null is not the null device");
  }
  // Directories: one empty read-only tmpfs (nr_inodes=1: nothing can be created in it),
  // mounted on the first and bind-mounted on the others (runc maskPaths) — a bind is much
  // cheaper than a new superblock, and a bind of a read-only mount stays read-only.
  int empty = -1;
  for (const char* path : plan.masked) {
    int fd = kernel::OpenInRootRaw(root, path, O_PATH | O_NOFOLLOW);
    if (fd == -ENOENT) continue;
    CheckNeg(sock, fd, "open masked path", path);
    if (fstat(fd, &st) < 0) Fail(sock, errno, "stat", path);
    long rc;
    if (!S_ISDIR(st.st_mode)) {
      rc = mount(FdPath(b, devnull), FdPath(a, fd), nullptr, MS_BIND, nullptr);
    } else if (empty >= 0) {
      rc = mount(FdPath(b, empty), FdPath(a, fd), nullptr, MS_BIND, nullptr);
    } else {
      rc = mount("tmpfs", FdPath(a, fd), "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                 "size=0k,nr_inodes=1");
      if (rc == 0) {
        empty = kernel::OpenInRootRaw(root, path, O_PATH | O_NOFOLLOW | O_DIRECTORY);
        CheckNeg(sock, empty, "open masked path", path);
      }
    }
    Check(sock, rc, "mask", path);
    close(fd);
  }
  if (empty >= 0) close(empty);
  for (const char* path : plan.readonly) {
    int fd = kernel::OpenInRootRaw(root, path, O_PATH | O_NOFOLLOW);
    if (fd == -ENOENT) continue;
    CheckNeg(sock, fd, "open read-only path", path);
    Check(sock, mount(FdPath(a, fd), FdPath(b, fd), nullptr, MS_BIND | MS_REC, nullptr), "bind",
          path);
    close(fd);
    fd = kernel::OpenInRootRaw(root, path, O_PATH | O_NOFOLLOW);  // now the new mount
    CheckNeg(sock, fd, "reopen read-only path", path);
    Check(sock,
          mount(nullptr, FdPath(a, fd), nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY | LockedFlags(fd),
                nullptr),
          "remount read-only", path);
    close(fd);
  }
  close(devnull);
  close(root);
}

// process.terminal: a pty of the container's devpts on 0..2, master sent to the parent.
void SetupTerminal(const ProcessPlan& p, int sock, bool bind_console) {
  const char* what = "";
  int rc = SetupTerminalRaw(p, sock, bind_console, &what);
  if (rc < 0) Fail(sock, -rc, "process.terminal:", what ? what : "");
}

// stdio: move the three fds out of the way first (they may be 0..2 already), then dup2.
void SetupStdio(const ProcessPlan& p, int sock) {
  int tmp[3];
  for (int i = 0; i < 3; ++i) {
    tmp[i] = fcntl(p.stdio[i], F_DUPFD_CLOEXEC, 10);
    Check(sock, tmp[i], "dup stdio");
  }
  for (int i = 0; i < 3; ++i) Check(sock, dup2(tmp[i], i), "dup2 stdio");
}

// Order (runtime.md §4, crun set_required_caps): seccomp first when !NNP (loading needs
// CAP_SYS_ADMIN), bounding set, KEEPCAPS, groups/gid/uid, capset, ambient, NNP.
void ApplyRlimits(const ProcessPlan& p, int sock) {
  for (const ProcessPlan::Limit& l : p.rlimits) {
    struct rlimit r = {l.soft, l.hard};
    Check(sock, setrlimit(static_cast<__rlimit_resource>(l.resource), &r), "setrlimit");
  }
}

void ApplySecurity(const ProcessPlan& p, int sock) {
  ApplyRlimits(p, sock);
  if (p.seccomp && !p.no_new_privs) {
    CheckNeg(sock, kernel::LoadFilter(*p.seccomp), "load seccomp filter");
  }
  CheckNeg(sock, kernel::DropBoundingSet(p.caps, p.last_cap), "drop bounding set");
  Check(sock, prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0), "PR_SET_KEEPCAPS");
  Check(sock, syscall(SYS_setgroups, p.groups.size(), p.groups.data()), "setgroups");
  Check(sock, syscall(SYS_setresgid, p.gid, p.gid, p.gid), "setresgid");
  Check(sock, syscall(SYS_setresuid, p.uid, p.uid, p.uid), "setresuid");
  CheckNeg(sock, kernel::SetProcessCaps(p.caps, 0), "capset");
  Check(sock, prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0), "PR_SET_KEEPCAPS");
  if (p.no_new_privs) Check(sock, prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "PR_SET_NO_NEW_PRIVS");
  // CVE-2024-21626: chdir again as the final user; the path is absolute inside our root.
  Check(sock, chdir(p.cwd), "chdir", p.cwd);
}

[[noreturn]] void Exec(const ProcessPlan& p, int sock) {
  if (p.seccomp && p.no_new_privs) {
    // NNP: load as late as possible so setup syscalls are not filtered.
    CheckNeg(sock, kernel::LoadFilter(*p.seccomp), "load seccomp filter");
  }
  umask(022);
  // Leak no runtime fd into the container (CVE-2024-21626); `sock` is CLOEXEC and closes at
  // a successful execve, which is how the parent learns the exec worked.
  syscall(SYS_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC);
  const char* file = p.argv[0];
  int err = ENOENT;
  if (strchr(file, '/')) {
    execve(file, p.argv.data(), p.envp.data());
    err = errno;
  } else {
    char* buf = p.scratch.data();
    size_t flen = strlen(file);
    for (const char* dir : p.path_dirs) {
      size_t dlen = strlen(dir);
      if (dlen + flen + 2 > p.scratch.size()) continue;
      memcpy(buf, dir, dlen);
      buf[dlen] = '/';
      memcpy(buf + dlen + 1, file, flen + 1);
      execve(buf, p.argv.data(), p.envp.data());
      if (errno != ENOENT && errno != ENOTDIR) err = errno;  // EACCES wins, like execvp
    }
  }
  SendFrameRaw(sock, Msg::kError, err, 0, "exec \"", file, "\"");
  _exit(127);
}

}  // namespace

void RunInit(const InitPlan& plan, int sock) {
  prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);  // CVE-2016-9962: nothing may ptrace the setup child
  umask(0);
  for (int fd : plan.cgroup_procs) Check(sock, write(fd, "0", 1), "join cgroup");
  Frame f;
  if (plan.wait_for_go && (RecvFrameRaw(sock, &f) != 1 || f.type != Msg::kGo)) _exit(125);
  if (plan.userns) {
    // The parent has written the maps: become root inside (crun set_id_init), so what the
    // setup creates on the container's own tmpfs mounts has an owner mapped in the namespace.
    // The netns, if joined, was entered by the parent before clone (setns into a netns owned
    // by the host's user namespace needs host CAP_SYS_ADMIN).
    Check(sock, syscall(SYS_setresgid, 0, 0, 0), "setresgid 0 in user namespace");
    Check(sock, syscall(SYS_setresuid, 0, 0, 0), "setresuid 0 in user namespace");
    Check(sock, syscall(SYS_setgroups, 0, nullptr), "setgroups in user namespace");
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);  // an euid change resets it
  } else if (plan.netns_fd >= 0) {
    Check(sock, setns(plan.netns_fd, CLONE_NEWNET), "join netns");
  }
  // The cgroup namespace is created only now that we sit in our final cgroup.
  Check(sock, unshare(CLONE_NEWCGROUP), "unshare cgroup namespace");
  // Host unmounts still propagate in; nothing propagates out.
  Check(sock, mount(nullptr, "/", nullptr, MS_REC | MS_SLAVE, nullptr), "make / rslave");
  if (plan.overlay_fd >= 0) {
    Check(sock, move_mount(plan.overlay_fd, "", AT_FDCWD, plan.rootfs, MOVE_MOUNT_F_EMPTY_PATH),
          "attach overlay", plan.rootfs);
  } else if (plan.overlay_data) {
    // Mounted in our own (rslave) mount namespace: it vanishes with the container.
    Check(sock, mount("overlay", plan.rootfs, "overlay", 0, plan.overlay_data), "mount overlay",
          plan.rootfs);
  }
  Check(sock, mount(plan.rootfs, plan.rootfs, nullptr, MS_BIND | MS_REC, nullptr), "bind rootfs",
        plan.rootfs);
  int root = open(plan.rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);  // the bind mount's root
  Check(sock, root, "open rootfs", plan.rootfs);
  {
    DirCache cache;
    for (const InitOp& op : plan.ops) DoOp(plan, root, op, sock, cache);
  }
  SetupStdio(plan.process, sock);
  // pivot_root(".", "."): the old root ends up stacked on top; detach it (runtime.md §1.7).
  Check(sock, fchdir(root), "fchdir rootfs");
  Check(sock, syscall(SYS_pivot_root, ".", "."), "pivot_root");
  Check(sock, mount(nullptr, ".", nullptr, MS_REC | MS_SLAVE, nullptr), "make old root rslave");
  Check(sock, umount2(".", MNT_DETACH), "detach old root");
  Check(sock, chdir("/"), "chdir /");
  close(root);
  MaskAndReadonly(plan, sock);
  if (plan.readonly_rootfs) {
    int fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
    Check(sock, fd, "open /");
    Check(sock,
          mount(nullptr, "/", nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY | LockedFlags(fd), nullptr),
          "remount rootfs read-only");
    close(fd);
  }
  Check(sock, sethostname(plan.hostname, strlen(plan.hostname)), "sethostname");
  Check(sock, setsid(), "setsid");
  if (plan.process.terminal) SetupTerminal(plan.process, sock, /*bind_console=*/true);
  Check(sock, chdir(plan.process.cwd), "chdir", plan.process.cwd);
  ApplySecurity(plan.process, sock);
  if (plan.exec_when_ready) Exec(plan.process, sock);
  SendFrameRaw(sock, Msg::kReady, 0, 0, "");
  int rc = RecvFrameRaw(sock, &f);
  if (rc != 1 || f.type != Msg::kStart) _exit(125);  // parent gone or deleted before start
  Exec(plan.process, sock);
}

void RunExecHelper(const ProcessPlan& process, const int* ns_fds, const int* ns_types, int ns_count,
                   int sock) {
  prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  // Before joining a user namespace, while raising a hard limit is still possible.
  ApplyRlimits(process, sock);
  for (int i = 0; i < ns_count; ++i) {
    Check(sock, setns(ns_fds[i], ns_types[i]), "setns");
  }
  pid_t pid = kernel::CloneParent();
  if (pid < 0) Fail(sock, -pid, "clone exec process");
  if (pid > 0) {
    SendFrameRaw(sock, Msg::kPid, 0, pid, "");
    _exit(0);
  }
  // The exec'd process: a sibling of the helper, in the container's pid namespace.
  prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  Frame f;
  if (RecvFrameRaw(sock, &f) != 1 || f.type != Msg::kGo) _exit(125);
  SetupStdio(process, sock);
  Check(sock, setsid(), "setsid");
  if (process.terminal) SetupTerminal(process, sock, /*bind_console=*/false);
  Check(sock, chdir(process.cwd), "chdir", process.cwd);
  ApplySecurity(process, sock);
  Exec(process, sock);
}

}  // namespace shoal::runtime
