#include "kernel/seccomp/docker_profile.h"

#include <linux/capability.h>

namespace shoal::kernel {
namespace {

constexpr uint64_t Cap(int c) { return uint64_t{1} << c; }

std::vector<SeccompRule> Build() {
  std::vector<SeccompRule> rules;
  // Group 0: unconditional allow list (names the local libseccomp does not know are skipped).
  rules.push_back({{
      "accept", "accept4", "access", "adjtimex", "alarm", "bind", "brk", "cachestat", "capget",
      "capset", "chdir", "chmod", "chown", "chown32", "clock_adjtime", "clock_adjtime64",
      "clock_getres", "clock_getres_time64", "clock_gettime", "clock_gettime64",
      "clock_nanosleep", "clock_nanosleep_time64", "close", "close_range", "connect",
      "copy_file_range", "creat", "dup", "dup2", "dup3", "epoll_create", "epoll_create1",
      "epoll_ctl", "epoll_ctl_old", "epoll_pwait", "epoll_pwait2", "epoll_wait",
      "epoll_wait_old", "eventfd", "eventfd2", "execve", "execveat", "exit", "exit_group",
      "faccessat", "faccessat2", "fadvise64", "fadvise64_64", "fallocate", "fanotify_mark",
      "fchdir", "fchmod", "fchmodat", "fchmodat2", "fchown", "fchown32", "fchownat", "fcntl",
      "fcntl64", "fdatasync", "fgetxattr", "flistxattr", "flock", "fork", "fremovexattr",
      "fsetxattr", "fstat", "fstat64", "fstatat64", "fstatfs", "fstatfs64", "fsync",
      "ftruncate", "ftruncate64", "futex", "futex_requeue", "futex_time64", "futex_wait",
      "futex_waitv", "futex_wake", "futimesat", "getcpu", "getcwd", "getdents", "getdents64",
      "getegid", "getegid32", "geteuid", "geteuid32", "getgid", "getgid32", "getgroups",
      "getgroups32", "getitimer", "getpeername", "getpgid", "getpgrp", "getpid", "getppid",
      "getpriority", "getrandom", "getresgid", "getresgid32", "getresuid", "getresuid32",
      "getrlimit", "get_robust_list", "getrusage", "getsid", "getsockname", "getsockopt",
      "get_thread_area", "gettid", "gettimeofday", "getuid", "getuid32", "getxattr",
      "getxattrat", "inotify_add_watch", "inotify_init", "inotify_init1", "inotify_rm_watch",
      "io_cancel", "ioctl", "io_destroy", "io_getevents", "io_pgetevents",
      "io_pgetevents_time64", "ioprio_get", "ioprio_set", "io_setup", "io_submit", "ipc",
      "kill", "landlock_add_rule", "landlock_create_ruleset", "landlock_restrict_self",
      "lchown", "lchown32", "lgetxattr", "link", "linkat", "listen", "listmount", "listxattr",
      "listxattrat", "llistxattr", "_llseek", "lremovexattr", "lseek", "lsetxattr", "lstat",
      "lstat64", "madvise", "map_shadow_stack", "membarrier", "memfd_create", "memfd_secret",
      "mincore", "mkdir", "mkdirat", "mknod", "mknodat", "mlock", "mlock2", "mlockall", "mmap",
      "mmap2", "mprotect", "mq_getsetattr", "mq_notify", "mq_open", "mq_timedreceive",
      "mq_timedreceive_time64", "mq_timedsend", "mq_timedsend_time64", "mq_unlink", "mremap",
      "mseal", "msgctl", "msgget", "msgrcv", "msgsnd", "msync", "munlock", "munlockall",
      "munmap", "name_to_handle_at", "nanosleep", "newfstatat", "_newselect", "open", "openat",
      "openat2", "pause", "pidfd_open", "pidfd_send_signal", "pipe", "pipe2", "pkey_alloc",
      "pkey_free", "pkey_mprotect", "poll", "ppoll", "ppoll_time64", "prctl", "pread64",
      "preadv", "preadv2", "prlimit64", "process_mrelease", "pselect6", "pselect6_time64",
      "pwrite64", "pwritev", "pwritev2", "read", "readahead", "readlink", "readlinkat", "readv",
      "recv", "recvfrom", "recvmmsg", "recvmmsg_time64", "recvmsg", "remap_file_pages",
      "removexattr", "removexattrat", "rename", "renameat", "renameat2", "restart_syscall",
      "rmdir", "rseq", "rt_sigaction", "rt_sigpending", "rt_sigprocmask", "rt_sigqueueinfo",
      "rt_sigreturn", "rt_sigsuspend", "rt_sigtimedwait", "rt_sigtimedwait_time64",
      "rt_tgsigqueueinfo", "sched_getaffinity", "sched_getattr", "sched_getparam",
      "sched_get_priority_max", "sched_get_priority_min", "sched_getscheduler",
      "sched_rr_get_interval", "sched_rr_get_interval_time64", "sched_setaffinity",
      "sched_setattr", "sched_setparam", "sched_setscheduler", "sched_yield", "seccomp",
      "select", "semctl", "semget", "semop", "semtimedop", "semtimedop_time64", "send",
      "sendfile", "sendfile64", "sendmmsg", "sendmsg", "sendto", "setfsgid", "setfsgid32",
      "setfsuid", "setfsuid32", "setgid", "setgid32", "setgroups", "setgroups32", "setitimer",
      "setpgid", "setpriority", "setregid", "setregid32", "setresgid", "setresgid32",
      "setresuid", "setresuid32", "setreuid", "setreuid32", "setrlimit", "set_robust_list",
      "setsid", "setsockopt", "set_thread_area", "set_tid_address", "setuid", "setuid32",
      "setxattr", "setxattrat", "shmat", "shmctl", "shmdt", "shmget", "shutdown", "sigaltstack",
      "signalfd", "signalfd4", "sigprocmask", "sigreturn", "socketcall", "socketpair", "splice",
      "stat", "stat64", "statfs", "statfs64", "statmount", "statx", "symlink", "symlinkat",
      "sync", "sync_file_range", "syncfs", "sysinfo", "tee", "tgkill", "time", "timer_create",
      "timer_delete", "timer_getoverrun", "timer_gettime", "timer_gettime64", "timer_settime",
      "timer_settime64", "timerfd_create", "timerfd_gettime", "timerfd_gettime64",
      "timerfd_settime", "timerfd_settime64", "times", "tkill", "truncate", "truncate64",
      "ugetrlimit", "umask", "uname", "unlink", "unlinkat", "uretprobe", "utime", "utimensat",
      "utimensat_time64", "utimes", "vfork", "vmsplice", "wait4", "waitid", "waitpid", "write",
      "writev",
      // amd64 group and ptrace family (allowed on kernel >= 4.8).
      "arch_prctl", "modify_ldt", "ptrace", "process_vm_readv", "process_vm_writev"}});
  // personality: only the five personas Docker lists.
  rules.push_back({{"personality"}, 0, 0, 0,
                   {{0, SeccompArg::kEq, 0x0}, {0, SeccompArg::kEq, 0x0008},
                    {0, SeccompArg::kEq, 0x20000}, {0, SeccompArg::kEq, 0x20008},
                    {0, SeccompArg::kEq, 0xffffffff}}});
  // socket: AF_ALG (38) and AF_VSOCK (40) blocked.
  rules.push_back({{"socket"}, 0, 0, 0,
                   {{0, SeccompArg::kLt, 38}, {0, SeccompArg::kEq, 39}, {0, SeccompArg::kGt, 40}}});
  const uint64_t sys_admin = Cap(CAP_SYS_ADMIN);
  // clone without namespace flags (CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET).
  rules.push_back({{"clone"}, 0, sys_admin, 0, {{0, SeccompArg::kMaskedEq, 0x7E020000, 0}}});
  // clone3 hides its flags behind a pointer: ENOSYS so glibc falls back to clone (moby #42680).
  rules.push_back({{"clone3"}, 0, sys_admin, 38});
  rules.push_back({{"bpf", "clone", "clone3", "fanotify_init", "fsconfig", "fsmount", "fsopen",
                    "fspick", "lookup_dcookie", "lsm_get_self_attr", "lsm_list_modules",
                    "lsm_set_self_attr", "mount", "mount_setattr", "move_mount", "open_tree",
                    "perf_event_open", "quotactl", "quotactl_fd", "setdomainname", "sethostname",
                    "setns", "syslog", "umount", "umount2", "unshare"},
                   sys_admin});
  rules.push_back({{"kcmp", "pidfd_getfd", "process_madvise"}, Cap(CAP_SYS_PTRACE)});
  rules.push_back({{"init_module", "finit_module", "delete_module"}, Cap(CAP_SYS_MODULE)});
  rules.push_back({{"settimeofday", "stime", "clock_settime", "clock_settime64"},
                   Cap(CAP_SYS_TIME)});
  rules.push_back({{"get_mempolicy", "set_mempolicy", "mbind", "set_mempolicy_home_node"},
                   Cap(CAP_SYS_NICE)});
  rules.push_back({{"reboot"}, Cap(CAP_SYS_BOOT)});
  rules.push_back({{"chroot"}, Cap(CAP_SYS_CHROOT)});
  rules.push_back({{"acct"}, Cap(CAP_SYS_PACCT)});
  rules.push_back({{"iopl", "ioperm"}, Cap(CAP_SYS_RAWIO)});
  rules.push_back({{"vhangup"}, Cap(CAP_SYS_TTY_CONFIG)});
  rules.push_back({{"syslog"}, Cap(CAP_SYSLOG)});
  rules.push_back({{"bpf"}, Cap(CAP_BPF)});
  rules.push_back({{"perf_event_open"}, Cap(CAP_PERFMON)});
  rules.push_back({{"open_by_handle_at"}, Cap(CAP_DAC_READ_SEARCH)});
  return rules;
}

}  // namespace

const std::vector<SeccompRule>& DockerDefaultRules() {
  static const std::vector<SeccompRule>* rules = new std::vector<SeccompRule>(Build());
  return *rules;
}

}  // namespace shoal::kernel
