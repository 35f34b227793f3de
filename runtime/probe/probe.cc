// shoal-probe: prints what a process sees of its isolation, one "key=value" per line, and
// offers small load generators for limit tests. Plain libc only (statically linked).
//
//   shoal-probe [report]    capabilities, seccomp, namespaces, mounts, cgroup limits, uid map
//   shoal-probe alloc MiB   touch MiB of memory, 1 MiB at a time, printing progress
//   shoal-probe spin MS     burn CPU for MS milliseconds
//   shoal-probe forks N     fork N sleeping children; print how many forks succeeded
//   shoal-probe trap CODE   exit with CODE on SIGTERM; sleep until then
//   shoal-probe orphans N   leave N orphans that exit at once; print how many stay zombies
//                           (0 when PID 1 reaps them)
#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

std::string ReadFile(const char* path, size_t max = 1 << 16) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::string("!") + strerrorname_np(errno);
  std::string out;
  char buf[4096];
  ssize_t n;
  while (out.size() < max && (n = read(fd, buf, sizeof(buf))) > 0) out.append(buf, n);
  close(fd);
  return out;
}

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

std::string StatusField(const std::string& status, const char* key) {
  size_t pos = status.find(std::string(key) + ":");
  if (pos == std::string::npos) return "?";
  size_t start = status.find_first_not_of(" \t", pos + strlen(key) + 1);
  return status.substr(start, status.find('\n', start) - start);
}

const char* Result(long rc) { return rc == 0 ? "ok" : strerrorname_np(errno); }

void Report() {
  char host[256] = {};
  gethostname(host, sizeof(host) - 1);
  printf("pid=%d\nppid=%d\nhostname=%s\nuid=%d\ngid=%d\n", getpid(), getppid(), host, getuid(),
         getgid());
  std::string status = ReadFile("/proc/self/status");
  for (const char* k : {"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "Seccomp", "NoNewPrivs"}) {
    printf("%s=%s\n", k, StatusField(status, k).c_str());
  }
  for (const char* ns : {"pid", "net", "uts", "ipc", "mnt", "cgroup", "user"}) {
    char path[64], link[128] = {};
    snprintf(path, sizeof(path), "/proc/self/ns/%s", ns);
    ssize_t n = readlink(path, link, sizeof(link) - 1);
    printf("ns_%s=%s\n", ns, n > 0 ? link : "?");
  }
  printf("uid_map=%s\n", Trim(ReadFile("/proc/self/uid_map")).c_str());
  printf("cwd=%s\n", get_current_dir_name());
  // Masked paths read as empty (a /dev/null bind); kcore only exists with CONFIG_PROC_KCORE.
  for (const char* masked : {"kcore", "keys", "timer_list"}) {
    std::string content = ReadFile((std::string("/proc/") + masked).c_str(), 4096);
    printf("%s_bytes=%s\n", masked,
           content[0] == '!' ? content.c_str() : std::to_string(content.size()).c_str());
  }
  int fd = open("/proc/sys/kernel/hostname", O_WRONLY | O_CLOEXEC);
  printf("proc_sys_write=%s\n", fd >= 0 ? "ok" : strerrorname_np(errno));
  if (fd >= 0) close(fd);
  fd = open("/sys/class/net/lo/mtu", O_WRONLY | O_CLOEXEC);
  printf("sys_write=%s\n", fd >= 0 ? "ok" : strerrorname_np(errno));
  if (fd >= 0) close(fd);
  printf("mount=%s\n", Result(mount("none", "/tmp", "tmpfs", 0, nullptr)));
  printf("clone3=%s\n", Result(syscall(SYS_clone3, nullptr, 0)));
  printf("keyctl=%s\n", Result(syscall(SYS_keyctl, 0, 0, 0, 0, 0)));
  printf("syscall_999=%s\n", Result(syscall(999)));
  for (const char* f : {"memory/memory.limit_in_bytes", "memory.max", "pids/pids.max", "pids.max",
                        "cpu/cpu.cfs_quota_us", "cpu.max"}) {
    std::string path = std::string("/sys/fs/cgroup/") + f;
    std::string v = Trim(ReadFile(path.c_str()));
    if (v[0] != '!') printf("cgroup_%s=%s\n", f, v.c_str());
  }
  printf("cgroup=%s\n", Trim(ReadFile("/proc/self/cgroup")).c_str());
  std::string mounts = ReadFile("/proc/self/mounts");
  size_t start = 0;
  while (start < mounts.size()) {
    size_t end = mounts.find('\n', start);
    if (end == std::string::npos) end = mounts.size();
    printf("mountinfo=%s\n", mounts.substr(start, end - start).c_str());
    start = end + 1;
  }
  // unshare last: it changes our namespaces if it is (wrongly) allowed.
  printf("unshare=%s\n", Result(unshare(CLONE_NEWNS)));
  fflush(stdout);
}

int Alloc(long mib) {
  for (long i = 1; i <= mib; ++i) {
    char* p = static_cast<char*>(malloc(1 << 20));
    if (!p) {
      printf("alloc_failed_at=%ld\n", i);
      return 1;
    }
    memset(p, 1, 1 << 20);
    printf("allocated=%ld\n", i);
    fflush(stdout);
  }
  return 0;
}

int Spin(long ms) {
  struct timespec start, now;
  clock_gettime(CLOCK_MONOTONIC, &start);
  volatile unsigned long x = 0;
  do {
    for (int i = 0; i < 100000; ++i) x = x + i;
    clock_gettime(CLOCK_MONOTONIC, &now);
  } while ((now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000 < ms);
  printf("spun=%ld\n", ms);
  return 0;
}

int Forks(long n) {
  long ok = 0;
  int err = 0;
  for (long i = 0; i < n; ++i) {
    pid_t p = fork();
    if (p == 0) {
      pause();
      _exit(0);
    }
    if (p < 0) {
      err = errno;
      break;
    }
    ++ok;
  }
  printf("forks_ok=%ld\nfork_error=%s\n", ok, err ? strerrorname_np(err) : "none");
  fflush(stdout);
  kill(0, SIGKILL);  // our process group: the children (and us)
  return 0;
}

volatile sig_atomic_t g_code = 0;
void OnTerm(int) { _exit(g_code); }

int Trap(int code) {
  g_code = code;
  signal(SIGTERM, OnTerm);
  printf("trapping\n");
  fflush(stdout);
  for (;;) pause();
}

// Leaves N orphans: each child forks a grandchild and exits at once; the grandchild (now
// reparented to PID 1) exits too. Waits until every grandchild is gone or a zombie, then prints
// how many are zombies: with a reaping PID 1 none, with a non-reaping PID 1 (this probe) all.
int Orphans(long n) {
  int p[2];
  if (pipe(p) != 0) return 1;
  for (long i = 0; i < n; ++i) {
    pid_t c = fork();
    if (c == 0) {
      pid_t g = fork();
      if (g == 0) _exit(0);
      write(p[1], &g, sizeof(g));
      _exit(0);
    }
    waitpid(c, nullptr, 0);
  }
  close(p[1]);
  pid_t g;
  int zombies = 0;
  while (read(p[0], &g, sizeof(g)) == sizeof(g)) {
    std::string path = "/proc/" + std::to_string(g) + "/stat";
    for (int tries = 0; tries < 10000; ++tries) {  // 10 s deadline per orphan
      std::string stat = ReadFile(path.c_str());
      if (stat[0] == '!') break;  // gone: reaped
      size_t paren = stat.rfind(')');
      if (paren != std::string::npos && stat[paren + 2] == 'Z') {
        // A zombie: give PID 1 a moment to reap it before counting it.
        if (tries > 200) {
          ++zombies;
          break;
        }
      }
      usleep(1000);
    }
  }
  printf("orphan_zombies=%d\n", zombies);
  return 0;
}

int Zombies() {
  int zombies = 0;
  DIR* d = opendir("/proc");
  while (dirent* e = d ? readdir(d) : nullptr) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    std::string stat = ReadFile(("/proc/" + std::string(e->d_name) + "/stat").c_str());
    size_t paren = stat.rfind(')');
    if (paren != std::string::npos && paren + 2 < stat.size() && stat[paren + 2] == 'Z') ++zombies;
  }
  if (d) closedir(d);
  return zombies;
}

}  // namespace

int main(int argc, char** argv) {
  std::string cmd = argc > 1 ? argv[1] : "report";
  long arg = argc > 2 ? strtol(argv[2], nullptr, 10) : 0;
  if (cmd == "report") {
    Report();
    return 0;
  }
  if (cmd == "alloc") return Alloc(arg);
  if (cmd == "spin") return Spin(arg);
  if (cmd == "forks") return Forks(arg);
  if (cmd == "trap") return Trap(static_cast<int>(arg));
  if (cmd == "orphans") return Orphans(arg);
  if (cmd == "zombies") {
    printf("zombies=%d\n", Zombies());
    return 0;
  }
  fprintf(stderr, "shoal-probe: unknown command %s\n", cmd.c_str());
  return 2;
}
