// shoal-runtime: OCI runtime CLI (create, start, state, kill, delete, run, exec, features) over
// the runtime library. create/start keep the container under a shoal-monitor (the container
// inherits this command's stdio, as the OCI CLI spec asks); run executes in the foreground
// in-process. Global runc flags docker passes (--log, --log-format, --systemd-cgroup) are
// accepted and ignored.
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "base/file.h"
#include "kernel/caps/caps.h"
#include "kernel/features.h"
#include "nlohmann/json.hpp"
#include "runtime/container.h"
#include "runtime/monitor/client.h"
#include "runtime/monitor/monitor.h"
#include "runtime/oci/config.h"
#include "runtime/spec_json.h"

namespace {

using namespace shoal;  // NOLINT: a main file

int Fail(const absl::Status& s) {
  fprintf(stderr, "shoal-runtime: %s\n", std::string(s.message()).c_str());
  return 1;
}

std::string MonitorPath() {
  if (const char* env = getenv("SHOAL_MONITOR")) return env;
  std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe").parent_path();
  for (auto candidate : {exe / "shoal-monitor", exe / "../monitor/shoal-monitor"}) {
    if (std::filesystem::exists(candidate)) return candidate.lexically_normal();
  }
  return "shoal-monitor";
}

int ParseSignal(const std::string& name) {
  int n = 0;
  if (absl::SimpleAtoi(name, &n)) return n;
  std::string up = absl::AsciiStrToUpper(name);
  if (up.rfind("SIG", 0) == 0) up = up.substr(3);
  for (int s = 1; s < NSIG; ++s) {
    const char* abbrev = sigabbrev_np(s);
    if (abbrev && up == abbrev) return s;
  }
  return -1;
}

struct Globals {
  std::string root = "/run/shoal-runtime";
  std::string cgroup_parent = "shoal-runtime";
  std::string log, log_format;
  bool systemd_cgroup = false, debug = false;
};

runtime::RuntimeOptions Options(const Globals& g) {
  runtime::RuntimeOptions o;
  auto f = kernel::ProbeFeatures();
  o.cgroup.mode = f.ok() ? f->cgroup_mode : kernel::CgroupMode::kV2;
  o.cgroup_parent = g.cgroup_parent;
  return o;
}

absl::StatusOr<runtime::ContainerSpec> LoadBundle(const std::string& bundle_in,
                                                  const std::string& id) {
  std::string bundle = std::filesystem::absolute(bundle_in).lexically_normal();
  while (bundle.size() > 1 && bundle.back() == '/') bundle.pop_back();
  auto text = base::ReadFile(bundle + "/config.json");
  if (!text.ok()) return text.status();
  return runtime::SpecFromOciConfig(*text, bundle, id);
}

void WritePidFile(const std::string& path, pid_t pid) {
  if (!path.empty()) (void)base::WriteFileAtomic(path, absl::StrCat(pid), 0644);
}

}  // namespace

int main(int argc, char** argv) {
  Globals g;
  CLI::App app{"shoal-runtime: OCI runtime"};
  app.require_subcommand(1);
  app.add_option("--root", g.root, "state directory root");
  app.add_option("--cgroup-parent", g.cgroup_parent);
  app.add_option("--log", g.log);
  app.add_option("--log-format", g.log_format);
  app.add_flag("--systemd-cgroup", g.systemd_cgroup);
  app.add_flag("--debug", g.debug);

  std::string id, bundle = ".", pid_file, console_socket, process_file, signal_name = "TERM";
  bool force = false, all = false, detach = false;
  std::vector<std::string> exec_args;
  auto* create = app.add_subcommand("create", "create a container (stays created until start)");
  auto* run = app.add_subcommand("run", "create, start and wait (foreground)");
  for (auto* c : {create, run}) {
    c->add_option("-b,--bundle", bundle);
    c->add_option("--pid-file", pid_file);
    c->add_option("--console-socket", console_socket);
    c->add_option("id", id)->required();
  }
  run->add_flag("-d,--detach", detach);
  auto* start = app.add_subcommand("start", "start a created container");
  auto* state = app.add_subcommand("state", "print the state JSON");
  auto* kill_cmd = app.add_subcommand("kill", "send a signal to PID 1");
  auto* del = app.add_subcommand("delete", "delete a stopped (or, with --force, any) container");
  auto* exec = app.add_subcommand("exec", "run a process in a running container");
  auto* features = app.add_subcommand("features", "print the supported features JSON");
  for (auto* c : {start, state, kill_cmd, del}) c->add_option("id", id)->required();
  kill_cmd->add_option("signal", signal_name);
  kill_cmd->add_flag("-a,--all", all);
  del->add_flag("-f,--force", force);
  exec->add_option("-p,--process", process_file);
  exec->add_option("--pid-file", pid_file);
  exec->add_flag("-d,--detach", detach);
  exec->add_option("id", id)->required();
  exec->add_option("args", exec_args);
  CLI11_PARSE(app, argc, argv);

  const std::string dir = g.root + "/" + id;
  if (*features) {
    nlohmann::json caps = kernel::CapNames(~0ULL >> (63 - kernel::LastCap()));
    nlohmann::json f = {
        {"ociVersionMin", "1.0.0"},
        {"ociVersionMax", "1.2.0"},
        {"hooks", nlohmann::json::array()},
        {"mountOptions", {"ro", "rw", "bind", "rbind", "nosuid", "suid", "nodev", "dev",
                          "noexec", "exec", "noatime", "strictatime", "relatime", "private",
                          "rprivate", "slave", "rslave", "shared", "rshared"}},
        {"linux",
         {{"namespaces", {"cgroup", "ipc", "mount", "network", "pid", "uts"}},
          {"capabilities", caps},
          {"cgroup", {{"v1", true}, {"v2", true}, {"systemd", false}}},
          {"seccomp", {{"enabled", true}, {"actions", {"SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO"}}}},
          {"apparmor", {{"enabled", false}}},
          {"selinux", {{"enabled", false}}}}},
        {"annotations", {{"org.shoal.runtime.seccomp", "docker-default"}}}};
    printf("%s\n", f.dump(2).c_str());
    return 0;
  }
  if (*run) {
    if (!console_socket.empty()) return Fail(absl::InvalidArgumentError("--console-socket: not supported"));
    auto spec = LoadBundle(bundle, id);
    if (!spec.ok()) return Fail(spec.status());
    runtime::Runtime rt(Options(g));
    auto c = rt.Create(*spec, runtime::Stdio{0, 1, 2});
    if (!c.ok()) return Fail(c.status());
    WritePidFile(pid_file, (*c)->pid());
    if (auto s = (*c)->Start(); !s.ok()) return Fail(s);
    auto exit = (*c)->Wait();
    (void)(*c)->Delete();
    return exit.ok() ? exit->code : Fail(exit.status());
  }
  if (*create) {
    if (!console_socket.empty()) return Fail(absl::InvalidArgumentError("--console-socket: not supported"));
    auto spec = LoadBundle(bundle, id);
    if (!spec.ok()) return Fail(spec.status());
    if (std::filesystem::exists(dir)) {
      return Fail(absl::AlreadyExistsError(absl::StrCat("container \"", id, "\" already exists")));
    }
    runtime::LaunchOptions o;
    runtime::RuntimeOptions ro = Options(g);
    o.monitor_path = MonitorPath();
    o.state_dir = dir;
    o.cgroup = ro.cgroup;
    o.cgroup_parent = ro.cgroup_parent;
    o.log_stdio = false;  // the container keeps the caller's stdio (OCI CLI semantics)
    o.wait_for_start = true;
    auto client = runtime::MonitorClient::Launch(o, *spec);
    if (!client.ok()) {
      std::error_code ec;
      std::filesystem::remove_all(dir, ec);
      return Fail(client.status());
    }
    std::string abs_bundle = std::filesystem::absolute(bundle).lexically_normal();
    while (abs_bundle.size() > 1 && abs_bundle.back() == '/') abs_bundle.pop_back();
    (void)base::WriteFileAtomic(dir + "/bundle", abs_bundle);
    auto st = (*client)->State();
    if (st.ok()) WritePidFile(pid_file, st->pid);
    return 0;
  }
  auto client = runtime::MonitorClient::Adopt(dir);
  if (!client.ok()) return Fail(absl::NotFoundError(absl::StrCat("container \"", id, "\" does not exist")));
  auto st = (*client)->State();
  if (!st.ok()) return Fail(st.status());
  if (*state) {
    auto bundle_path = base::ReadFile(dir + "/bundle");
    nlohmann::json out = {{"ociVersion", "1.2.0"},
                          {"id", id},
                          {"status", st->status},
                          {"pid", st->status == "stopped" ? 0 : st->pid},
                          {"bundle", bundle_path.ok() ? *bundle_path : ""},
                          {"annotations", nlohmann::json::object()}};
    printf("%s\n", out.dump(2).c_str());
    return 0;
  }
  if (*start) {
    if (st->status != "created") {
      return Fail(absl::FailedPreconditionError(absl::StrCat("container \"", id, "\" is ", st->status)));
    }
    auto s = (*client)->Start();
    return s.ok() ? 0 : Fail(s);
  }
  if (*kill_cmd) {
    int sig = ParseSignal(signal_name);
    if (sig <= 0) return Fail(absl::InvalidArgumentError(absl::StrCat("signal: unknown \"", signal_name, "\"")));
    if (st->status == "stopped") return Fail(absl::FailedPreconditionError("container is stopped"));
    auto s = (*client)->Signal(sig);
    return s.ok() ? 0 : Fail(s);
  }
  if (*del) {
    if (st->status == "running" && !force) {
      return Fail(absl::FailedPreconditionError(
          absl::StrCat("container \"", id, "\" is running; stop it or use --force")));
    }
    if (st->status != "stopped") {
      (void)(*client)->Stop(SIGKILL, absl::ZeroDuration());
      auto w = (*client)->Wait(absl::Seconds(10));
      if (!w.ok()) return Fail(w.status());
    }
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
    return ec ? Fail(absl::InternalError(ec.message())) : 0;
  }
  if (*exec) {
    if (st->status != "running") return Fail(absl::FailedPreconditionError("container is not running"));
    auto spec_text = base::ReadFile(runtime::SpecFile(dir));
    if (!spec_text.ok()) return Fail(spec_text.status());
    auto spec = runtime::SpecFromJson(*spec_text);
    if (!spec.ok()) return Fail(spec.status());
    runtime::ProcessSpec p = spec->process;
    if (!process_file.empty()) {
      auto text = base::ReadFile(process_file);
      if (!text.ok()) return Fail(text.status());
      auto wrapped = runtime::SpecFromOciConfig(
          absl::StrCat("{\"process\":", *text, ",\"root\":{\"path\":\"/\"}}"), "/", id);
      if (!wrapped.ok()) return Fail(wrapped.status());
      p = wrapped->process;
    } else {
      p.args = exec_args;
    }
    runtime::Runtime rt(Options(g));
    auto c = rt.Attach(*spec, st->pid);
    if (!c.ok()) return Fail(c.status());
    auto proc = (*c)->Exec(p, runtime::Stdio{0, 1, 2});
    if (!proc.ok()) return Fail(proc.status());
    WritePidFile(pid_file, (*proc)->pid());
    if (detach) return 0;
    auto exit = (*proc)->Wait();
    return exit.ok() ? exit->code : Fail(exit.status());
  }
  return 0;
}
