// shoal-runtime: OCI runtime CLI (create, start, state, kill, delete, run, exec, ps, features)
// over the runtime library, usable as `dockerd --add-runtime shoal=<path>`: it follows runc's
// process model (see runtime/oci/state.h), so containerd-shim reaps PID 1 and exec'd processes
// itself. Global runc flags are accepted: --root (state), --log + --log-format json (errors are
// also appended there, which is where containerd-shim reads them), --systemd-cgroup (rejected at
// create: only cgroupfs paths are supported). process.terminal: the pty master is sent to
// --console-socket (create/run/exec), or relayed to stdio by a foreground run/exec without one.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/file.h"
#include "base/status.h"
#include "kernel/caps/caps.h"
#include "kernel/cgroup/cgroup.h"
#include "kernel/features.h"
#include "kernel/seccomp/oci_json.h"
#include "kernel/ns/ns.h"
#include "nlohmann/json.hpp"
#include "runtime/container.h"
#include "runtime/oci/config.h"
#include "runtime/oci/console.h"
#include "runtime/oci/hooks.h"
#include "runtime/oci/state.h"
#include "runtime/oci/sysctl.h"
#include "runtime/spec_json.h"
#include "runtime/terminal.h"

namespace {

using namespace shoal;  // NOLINT: a main file
using nlohmann::json;

struct Globals {
  std::string root = "/run/shoal-runtime";
  std::string cgroup_parent = "shoal-runtime";  // when config.json has no cgroupsPath
  std::string log, log_format;
  bool systemd_cgroup = false, debug = false;
};

const Globals* g_for_fail = nullptr;  // only read by Fail(); set once in main

int Fail(const absl::Status& s) {
  std::string msg(s.message());
  fprintf(stderr, "shoal-runtime: %s\n", msg.c_str());
  if (g_for_fail && !g_for_fail->log.empty()) {
    int fd = open(g_for_fail->log.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd >= 0) {
      std::string line = g_for_fail->log_format == "json"
                             ? json({{"level", "error"},
                                     {"msg", msg},
                                     {"time", absl::FormatTime(absl::RFC3339_full, absl::Now(),
                                                               absl::UTCTimeZone())}})
                                   .dump()
                             : absl::StrCat("error: ", msg);
      line += "\n";
      (void)!write(fd, line.data(), line.size());
      close(fd);
    }
  }
  return 1;
}

int ParseSignal(const std::string& name) {
  int n = 0;
  if (absl::SimpleAtoi(name, &n)) return n > 0 && n < NSIG ? n : -1;
  std::string up = absl::AsciiStrToUpper(name);
  if (up.rfind("SIG", 0) == 0) up = up.substr(3);
  for (int s = 1; s < NSIG; ++s) {
    const char* abbrev = sigabbrev_np(s);
    if (abbrev && up == abbrev) return s;
  }
  return -1;
}

runtime::RuntimeOptions Options(const std::string& cgroup_parent) {
  runtime::RuntimeOptions o;
  auto f = kernel::ProbeFeatures();
  o.cgroup.mode = f.ok() ? f->cgroup_mode : kernel::CgroupMode::kV2;
  o.cgroup_parent = cgroup_parent;
  return o;
}

// Compiled seccomp programs are kept under the root: docker passes the same profile for every
// container, and every create/run/exec is a new process.
void UseSeccompDiskCache(runtime::Runtime& rt, const std::string& root) {
  rt.seccomp().SetDiskCacheDir(root + "/.cache/seccomp");
}

std::string AbsBundle(const std::string& bundle_in) {
  std::string bundle = std::filesystem::absolute(bundle_in).lexically_normal();
  while (bundle.size() > 1 && bundle.back() == '/') bundle.pop_back();
  return bundle;
}

absl::StatusOr<runtime::OciBundle> LoadBundle(const std::string& bundle, const std::string& id,
                                              const Globals& g) {
  auto text = base::ReadFile(bundle + "/config.json");
  if (!text.ok()) return text.status();
  auto b = runtime::ParseOciConfig(*text, bundle, id);
  if (!b.ok()) return b.status();
  if (b->cgroup_parent.empty()) {
    if (g.systemd_cgroup) {
      return absl::InvalidArgumentError(
          "--systemd-cgroup: the systemd cgroup driver is not supported (use cgroupfs)");
    }
    b->cgroup_parent = g.cgroup_parent;
  }
  return b;
}

void WritePidFile(const std::string& path, pid_t pid) {
  if (!path.empty()) (void)base::WriteFileAtomic(path, absl::StrCat(pid), 0644);
}

absl::Status WriteOomScoreAdj(pid_t pid, const std::optional<int>& adj) {
  if (!adj) return absl::OkStatus();
  std::string path = absl::StrCat("/proc/", pid, "/oom_score_adj");
  base::UniqueFd fd(open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd) return base::ErrnoStatus(errno, "process.oomScoreAdj: open ", path);
  return base::WriteAll(fd.get(), absl::StrCat(*adj), "process.oomScoreAdj");
}

std::string Now() { return absl::FormatTime(absl::RFC3339_full, absl::Now(), absl::UTCTimeZone()); }

kernel::CgroupConfig CgroupConfigFor() { return Options("").cgroup; }

// Waits until the non-child `pid` (same start time) is gone, at most `timeout`.
bool WaitGone(pid_t pid, uint64_t start_time, absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  base::UniqueFd pidfd(kernel::PidfdOpen(pid));
  while (runtime::SameProcessAlive(pid, start_time)) {
    if (absl::Now() > deadline) return false;
    if (pidfd) {
      struct pollfd p = {pidfd.get(), POLLIN, 0};
      (void)poll(&p, 1, 50);  // readable on exit; re-check for zombies reaped late
    } else {
      usleep(10000);
    }
  }
  return true;
}

// Where the pty master of a terminal process goes: the console socket, or (foreground, no
// socket) a relay to this command's stdio. No terminal: nothing to do.
struct ConsoleTarget {
  bool terminal = false;
  std::string socket_path;  // --console-socket, or empty = relay

  // Checked before anything is created; connected only once the master exists (a connection
  // made earlier would be inherited by the container's setup child until it execs).
  static absl::StatusOr<ConsoleTarget> Open(runtime::ProcessSpec& p, const std::string& path,
                                            bool can_relay) {
    RETURN_IF_ERROR(runtime::CheckConsoleArgs(p, path, can_relay));
    ConsoleTarget t;
    t.terminal = p.terminal;
    t.socket_path = path;
    struct stat st;
    if (!path.empty() && stat(path.c_str(), &st) != 0) {
      return base::ErrnoStatus(errno, "--console-socket: ", path);
    }
    if (!path.empty() && !S_ISSOCK(st.st_mode)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--console-socket: ", path, " is not a unix socket"));
    }
    if (path.empty()) runtime::InheritTerminalSize(p);
    return t;
  }
  // Sends the master away (console socket); keeps it for Relay otherwise.
  absl::Status HandOff(base::UniqueFd master) {
    if (!terminal || socket_path.empty()) {
      kept = std::move(master);
      return absl::OkStatus();
    }
    ASSIGN_OR_RETURN(base::UniqueFd sock, runtime::ConnectConsoleSocket(socket_path));
    return runtime::HandOffConsole(std::move(sock), std::move(master));
  }
  void Relay(int pidfd) {
    if (kept) runtime::RelayTerminal(kept.get(), pidfd);
    kept.Reset();
  }
  base::UniqueFd kept;
};

int Run(const Globals& g, const std::string& bundle, const std::string& id,
        const std::string& pid_file, const std::string& console_socket) {
  auto b = LoadBundle(bundle, id, g);
  if (!b.ok()) return Fail(b.status());
  auto console = ConsoleTarget::Open(b->spec.process, console_socket, /*can_relay=*/true);
  if (!console.ok()) return Fail(console.status());
  runtime::Runtime rt(Options(b->cgroup_parent));
  UseSeccompDiskCache(rt, g.root);
  // Nothing has to happen between create and start (no hooks, sysctls or OOM score to apply
  // to the created process): create and start in one round trip (Runtime::Run).
  if (b->hooks.prestart.empty() && b->hooks.create_runtime.empty() && b->sysctls.empty() &&
      !b->oom_score_adj) {
    auto c = rt.Run(b->spec, runtime::Stdio{0, 1, 2});
    if (!c.ok()) return Fail(c.status());
    if (auto s = console->HandOff((*c)->TakeConsole()); !s.ok()) return Fail(s);  // ~ kills it
    WritePidFile(pid_file, (*c)->pid());
    runtime::OciState st{id, bundle, b->cgroup_parent, Now(), (*c)->pid(), 0, {}, {}};
    std::string state_json = runtime::OciStateJson(st, "running").dump();
    std::string scratch = std::filesystem::temp_directory_path();
    (void)runtime::RunHooks(b->hooks.poststart, "poststart", state_json, scratch);
    console->Relay((*c)->pidfd());
    auto exit = (*c)->Wait();
    (void)(*c)->Delete();
    (void)runtime::RunHooks(b->hooks.poststop, "poststop", state_json, scratch);
    return exit.ok() ? exit->code : Fail(exit.status());
  }
  auto c = rt.Create(b->spec, runtime::Stdio{0, 1, 2});
  if (!c.ok()) return Fail(c.status());
  if (auto s = console->HandOff((*c)->TakeConsole()); !s.ok()) return Fail(s);
  if (auto s = WriteOomScoreAdj((*c)->pid(), b->oom_score_adj); !s.ok()) return Fail(s);
  if (auto s = runtime::ApplySysctls((*c)->pid(), b->sysctls); !s.ok()) return Fail(s);
  runtime::OciState st{id, bundle, b->cgroup_parent, Now(), (*c)->pid(), 0, {}, {}};
  std::string state_json = runtime::OciStateJson(st, "created").dump();
  std::string scratch = std::filesystem::temp_directory_path();
  for (auto* hooks : {&b->hooks.prestart, &b->hooks.create_runtime}) {
    auto s = runtime::RunHooks(*hooks, hooks == &b->hooks.prestart ? "prestart" : "createRuntime",
                               state_json, scratch);
    if (!s.ok()) return Fail(s);
  }
  WritePidFile(pid_file, (*c)->pid());
  if (auto s = (*c)->Start(); !s.ok()) return Fail(s);
  (void)runtime::RunHooks(b->hooks.poststart, "poststart", state_json, scratch);
  console->Relay((*c)->pidfd());
  auto exit = (*c)->Wait();
  (void)(*c)->Delete();
  (void)runtime::RunHooks(b->hooks.poststop, "poststop", state_json, scratch);
  return exit.ok() ? exit->code : Fail(exit.status());
}

int Create(const Globals& g, const std::string& bundle, const std::string& id,
           const std::string& pid_file, const std::string& dir, const std::string& console_socket) {
  if (auto s = runtime::ValidateId(id); !s.ok()) return Fail(s);
  if (access((dir + "/state.json").c_str(), F_OK) == 0) {
    return Fail(absl::AlreadyExistsError(absl::StrCat("container \"", id, "\" already exists")));
  }
  auto b = LoadBundle(bundle, id, g);
  if (!b.ok()) return Fail(b.status());
  // Connect before anything exists: a bad socket leaves nothing behind.
  auto console = ConsoleTarget::Open(b->spec.process, console_socket, /*can_relay=*/false);
  if (!console.ok()) return Fail(console.status());
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Fail(absl::InternalError(absl::StrCat("create ", dir, ": ", ec.message())));
  auto cleanup_dir = [&] { std::filesystem::remove_all(dir, ec); };
  runtime::Runtime rt(Options(b->cgroup_parent));
  UseSeccompDiskCache(rt, g.root);
  auto c = rt.Create(b->spec, runtime::Stdio{0, 1, 2});
  if (!c.ok()) {
    cleanup_dir();
    return Fail(c.status());
  }
  // From here on an error destroys the container (~Container) and the state directory.
  auto fail = [&](const absl::Status& s) {
    (void)(*c)->Delete();
    cleanup_dir();
    return Fail(s);
  };
  // The master goes to the console socket now; no copy may stay here or in the holder.
  if (auto s = console->HandOff((*c)->TakeConsole()); !s.ok()) return fail(s);
  pid_t pid = (*c)->pid();
  auto start_time = runtime::ProcStartTime(pid);
  if (!start_time) return fail(absl::InternalError("container init exited during create"));
  if (auto s = WriteOomScoreAdj(pid, b->oom_score_adj); !s.ok()) return fail(s);
  if (auto s = runtime::ApplySysctls(pid, b->sysctls); !s.ok()) return fail(s);
  runtime::OciState st{id,
                       bundle,
                       b->cgroup_parent,
                       Now(),
                       pid,
                       *start_time,
                       runtime::HooksToJson(b->hooks.poststart),
                       runtime::HooksToJson(b->hooks.poststop)};
  if (auto s = base::WriteFileAtomic(dir + "/spec.json", runtime::SpecToJson(b->spec), 0600);
      !s.ok()) {
    return fail(s);
  }
  if (auto s = runtime::WriteOciState(dir, st); !s.ok()) return fail(s);
  if (auto s = runtime::SpawnHolder(dir, c->get()); !s.ok()) return fail(s);
  std::string state_json = runtime::OciStateJson(st, "created").dump();
  if (auto s = runtime::RunHooks(b->hooks.prestart, "prestart", state_json, dir); !s.ok()) {
    return fail(s);
  }
  if (auto s = runtime::RunHooks(b->hooks.create_runtime, "createRuntime", state_json, dir);
      !s.ok()) {
    return fail(s);
  }
  WritePidFile(pid_file, pid);
  // PID 1 outlives this command (re-parented to the caller's subreaper); do not run the
  // handle's destructor, which would kill it.
  (void)c->release();
  return 0;
}

int Delete(const std::string& id, const std::string& dir, bool force) {
  auto st = runtime::ReadOciState(dir);
  if (!st.ok()) {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);  // a create that died half-way
    if (force) return 0;
    return Fail(absl::NotFoundError(absl::StrCat("container \"", id, "\" does not exist")));
  }
  std::string status = runtime::OciStatus(dir, *st);
  if (status == "running" && !force) {
    return Fail(absl::FailedPreconditionError(
        absl::StrCat("container \"", id, "\" is running; stop it or use --force")));
  }
  auto cg = kernel::Cgroup::Open(CgroupConfigFor(), absl::StrCat(st->cgroup_parent, "/", id));
  if (status != "stopped") {
    base::UniqueFd pidfd(kernel::PidfdOpen(st->pid));
    if (pidfd && runtime::SameProcessAlive(st->pid, st->start_time)) {
      (void)kernel::PidfdSignal(pidfd.get(), SIGKILL);
    }
  }
  if (cg.ok()) (void)(*cg)->KillAll();
  if (!WaitGone(st->pid, st->start_time, absl::Seconds(10))) {
    return Fail(absl::DeadlineExceededError(
        absl::StrCat("container \"", id, "\": init ", st->pid, " did not exit after SIGKILL")));
  }
  if (cg.ok()) {
    if (auto s = (*cg)->Remove(); !s.ok()) return Fail(s);
  }
  (void)runtime::RunHooks(runtime::HooksFromJson(st->poststop), "poststop",
                          runtime::OciStateJson(*st, "stopped").dump(), dir);
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  return ec ? Fail(absl::InternalError(absl::StrCat("remove ", dir, ": ", ec.message()))) : 0;
}

int Kill(const runtime::OciState& st, const std::string& dir, const std::string& signal_name,
         bool all) {
  int sig = ParseSignal(signal_name);
  if (sig <= 0) {
    return Fail(absl::InvalidArgumentError(absl::StrCat("signal: unknown \"", signal_name, "\"")));
  }
  if (runtime::OciStatus(dir, st) == "stopped" && !all) {
    return Fail(absl::FailedPreconditionError("container not running"));
  }
  if (all) {
    auto cg = kernel::Cgroup::Open(CgroupConfigFor(), absl::StrCat(st.cgroup_parent, "/", st.id));
    if (!cg.ok()) return Fail(cg.status());
    if (sig == SIGKILL) {
      auto s = (*cg)->KillAll();
      return s.ok() ? 0 : Fail(s);
    }
    auto pids = (*cg)->Pids();
    if (!pids.ok()) return Fail(pids.status());
    for (pid_t p : *pids) (void)kill(p, sig);
    return 0;
  }
  base::UniqueFd pidfd(kernel::PidfdOpen(st.pid));
  // The pidfd pins the process: re-check that it is still the container's init.
  if (!pidfd || !runtime::SameProcessAlive(st.pid, st.start_time)) {
    return Fail(absl::FailedPreconditionError("container not running"));
  }
  int rc = kernel::PidfdSignal(pidfd.get(), sig);
  return rc < 0 ? Fail(absl::FailedPreconditionError("container not running")) : 0;
}

int Exec(const runtime::OciState& st, const std::string& dir, const std::string& process_file,
         const std::vector<std::string>& args, const std::string& pid_file, bool detach, bool tty,
         const std::string& console_socket) {
  if (runtime::OciStatus(dir, st) != "running") {
    return Fail(absl::FailedPreconditionError("container not running"));
  }
  auto spec_text = base::ReadFile(dir + "/spec.json");
  if (!spec_text.ok()) return Fail(spec_text.status());
  auto spec = runtime::SpecFromJson(*spec_text);
  if (!spec.ok()) return Fail(spec.status());
  runtime::ProcessSpec p = spec->process;
  if (!process_file.empty()) {
    auto text = base::ReadFile(process_file);
    if (!text.ok()) return Fail(text.status());
    auto parsed = runtime::ParseOciProcess(*text, spec->process);
    if (!parsed.ok()) return Fail(parsed.status());
    p = *parsed;
  } else {
    p.args = args;
    p.terminal = tty;
    p.terminal_rows = p.terminal_cols = 0;
  }
  auto console = ConsoleTarget::Open(p, console_socket, /*can_relay=*/!detach);
  if (!console.ok()) return Fail(console.status());
  runtime::Runtime rt(Options(st.cgroup_parent));
  UseSeccompDiskCache(rt, std::filesystem::path(dir).parent_path().string());
  auto c = rt.Attach(*spec, st.pid);
  if (!c.ok()) return Fail(c.status());
  auto proc = (*c)->Exec(p, runtime::Stdio{0, 1, 2});
  if (!proc.ok()) return Fail(proc.status());
  if (auto s = console->HandOff((*proc)->TakeConsole()); !s.ok()) {
    (void)(*proc)->Signal(SIGKILL);
    return Fail(s);
  }
  WritePidFile(pid_file, (*proc)->pid());
  if (detach) return 0;  // the process is re-parented to the caller's subreaper
  console->Relay((*proc)->pidfd());
  auto exit = (*proc)->Wait();
  return exit.ok() ? exit->code : Fail(exit.status());
}

int Features() {
  json caps = kernel::CapNames(~0ULL >> (63 - kernel::LastCap()));
  json f = {
      {"ociVersionMin", "1.0.0"},
      {"ociVersionMax", "1.2.0"},
      {"hooks", {"prestart", "createRuntime", "poststart", "poststop"}},
      {"mountOptions",
       {"ro", "rw", "bind", "rbind", "nosuid", "suid", "nodev", "dev", "noexec", "exec", "noatime",
        "strictatime", "relatime", "private", "rprivate", "slave", "rslave", "shared", "rshared"}},
      {"linux",
       {{"namespaces", {"cgroup", "ipc", "mount", "network", "pid", "uts"}},
        {"capabilities", caps},
        {"cgroup", {{"v1", true}, {"v2", true}, {"systemd", false}}},
        {"seccomp",
         {{"enabled", true},
          {"actions", kernel::SeccompActionNames(/*supported_only=*/true)},
          {"operators", kernel::SeccompOpNames()},
          {"archs", kernel::SeccompArchNames()},
          {"supportedFlags", kernel::SeccompFlagNames(/*supported_only=*/true)},
          {"knownFlags", kernel::SeccompFlagNames(/*supported_only=*/false)}}},
        {"apparmor", {{"enabled", false}}},
        {"selinux", {{"enabled", false}}}}},
      {"annotations", json::object()}};
  printf("%s\n", f.dump(2).c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Globals g;
  g_for_fail = &g;
  CLI::App app{"shoal-runtime: OCI runtime"};
  app.require_subcommand(1);
  app.add_option("--root", g.root, "state directory root");
  app.add_option("--cgroup-parent", g.cgroup_parent, "parent cgroup without cgroupsPath");
  app.add_option("--log", g.log);
  app.add_option("--log-format", g.log_format);
  app.add_flag("--systemd-cgroup", g.systemd_cgroup);
  app.add_flag("--debug", g.debug);

  std::string id, bundle = ".", pid_file, console_socket, process_file, signal_name = "TERM";
  std::string format = "table";
  bool force = false, all = false, detach = false, no_pivot = false, no_new_keyring = false;
  bool tty = false;
  int preserve_fds = 0;
  std::vector<std::string> exec_args;
  auto* create = app.add_subcommand("create", "create a container (stays created until start)");
  auto* run = app.add_subcommand("run", "create, start and wait (foreground)");
  for (auto* c : {create, run}) {
    c->add_option("-b,--bundle", bundle);
    c->add_option("--pid-file", pid_file);
    c->add_option("--console-socket", console_socket);
    c->add_flag("--no-pivot", no_pivot);
    c->add_flag("--no-new-keyring", no_new_keyring);
    c->add_option("--preserve-fds", preserve_fds);
    c->add_option("id", id)->required();
  }
  run->add_flag("-d,--detach", detach);
  auto* start = app.add_subcommand("start", "start a created container");
  auto* state = app.add_subcommand("state", "print the state JSON");
  auto* kill_cmd = app.add_subcommand("kill", "send a signal to PID 1 (--all: to every process)");
  auto* del = app.add_subcommand("delete", "delete a stopped (or, with --force, any) container");
  auto* ps = app.add_subcommand("ps", "list the container's processes");
  auto* exec = app.add_subcommand("exec", "run a process in a running container");
  auto* features = app.add_subcommand("features", "print the supported features JSON");
  auto* seccomp_default = app.add_subcommand(
      "seccomp-default",
      "print Docker's default seccomp profile (14 default capabilities) as OCI linux.seccomp");
  for (auto* c : {start, state, kill_cmd, del, ps}) c->add_option("id", id)->required();
  kill_cmd->add_option("signal", signal_name);
  kill_cmd->add_flag("-a,--all", all);
  del->add_flag("-f,--force", force);
  ps->add_option("-f,--format", format);
  exec->add_option("-p,--process", process_file);
  exec->add_option("--pid-file", pid_file);
  exec->add_option("--console-socket", console_socket);
  exec->add_flag("-d,--detach", detach);
  exec->add_flag("-t,--tty", tty, "allocate a terminal (pty) for the process");
  exec->add_option("--preserve-fds", preserve_fds);
  exec->add_option("id", id)->required();
  exec->add_option("args", exec_args);
  // runc commands docker can reach that Shoal does not implement: a clear error, not a usage
  // message.
  for (const char* name : {"update", "pause", "resume", "checkpoint", "restore", "events"}) {
    auto* c = app.add_subcommand(name, "not supported");
    c->allow_extras();
    c->callback([name] {
      exit(Fail(absl::UnimplementedError(absl::StrCat("\"", name, "\" is not supported"))));
    });
  }
  CLI11_PARSE(app, argc, argv);

  if (*features) return Features();
  if (*seccomp_default) {
    json profile = kernel::SeccompProfileToOciJson(
        kernel::DockerDefaultProfile(kernel::DockerDefaultCaps()));
    printf("%s\n", profile.dump(2).c_str());
    return 0;
  }
  if (no_pivot) return Fail(absl::InvalidArgumentError("--no-pivot: not supported"));
  if (preserve_fds != 0) return Fail(absl::InvalidArgumentError("--preserve-fds: not supported"));
  if (*run && detach) return Fail(absl::InvalidArgumentError("run --detach: use create + start"));
  const std::string dir = g.root + "/" + id;
  if (*run) return Run(g, AbsBundle(bundle), id, pid_file, console_socket);
  if (*create) return Create(g, AbsBundle(bundle), id, pid_file, dir, console_socket);
  if (*del) return Delete(id, dir, force);
  auto st = runtime::ReadOciState(dir);
  if (!st.ok()) {
    return Fail(absl::NotFoundError(absl::StrCat("container \"", id, "\" does not exist")));
  }
  std::string status = runtime::OciStatus(dir, *st);
  if (*state) {
    printf("%s\n", runtime::OciStateJson(*st, status).dump(2).c_str());
    return 0;
  }
  if (*start) {
    if (status != "created") {
      return Fail(absl::FailedPreconditionError(
          absl::StrCat("container \"", id, "\" is ", status, ", not created")));
    }
    if (auto s = runtime::RequestStart(dir); !s.ok()) return Fail(s);
    (void)runtime::RunHooks(runtime::HooksFromJson(st->poststart), "poststart",
                            runtime::OciStateJson(*st, "running").dump(), dir);
    return 0;
  }
  if (*kill_cmd) return Kill(*st, dir, signal_name, all);
  if (*ps) {
    auto cg = kernel::Cgroup::Open(CgroupConfigFor(), absl::StrCat(st->cgroup_parent, "/", id));
    std::vector<pid_t> pids;
    if (cg.ok()) {
      auto p = (*cg)->Pids();
      if (!p.ok()) return Fail(p.status());
      pids = *p;
    }
    if (format == "json") {
      printf("%s\n", json(pids).dump().c_str());
    } else {
      printf("PID\n");
      for (pid_t p : pids) printf("%d\n", p);
    }
    return 0;
  }
  if (*exec) {
    return Exec(*st, dir, process_file, exec_args, pid_file, detach, tty, console_socket);
  }
  return 0;
}
