// shoal-runtime: OCI runtime CLI (create, start, state, kill, delete, run, exec, ps, features)
// over the runtime library, usable as `dockerd --add-runtime shoal=<path>`: it follows runc's
// process model (see runtime/oci/state.h), so containerd-shim reaps PID 1 and exec'd processes
// itself. Global runc flags are accepted: --root (state), --log + --log-format json (errors are
// also appended there, which is where containerd-shim reads them), --systemd-cgroup (rejected at
// create: only cgroupfs paths are supported). process.terminal: the pty master is sent to
// --console-socket (create/run/exec), or relayed to stdio by a foreground run/exec without one.
// This file parses the flags and dispatches; the commands are in commands.h.
#include <cstdlib>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "runtime/oci/commands.h"

int main(int argc, char** argv) {
  using namespace shoal::runtime::oci;  // NOLINT: a main file
  Globals g;
  CLI::App app{"shoal-runtime: OCI runtime"};
  app.require_subcommand(1);
  app.add_option("--root", g.root, "state directory root");
  app.add_option("--cgroup-parent", g.cgroup_parent, "parent cgroup without cgroupsPath");
  app.add_option("--log", g.log);
  app.add_option("--log-format", g.log_format);
  app.add_flag("--systemd-cgroup", g.systemd_cgroup);
  app.add_flag("--debug", g.debug);

  BundleArgs bundle_args;
  bundle_args.bundle = ".";
  ExecArgs exec_args;
  std::string id, signal_name = "TERM", format = "table";
  bool force = false, all = false, detach = false, no_pivot = false, no_new_keyring = false;
  int preserve_fds = 0;
  auto* create = app.add_subcommand("create", "create a container (stays created until start)");
  auto* run = app.add_subcommand("run", "create, start and wait (foreground)");
  for (auto* c : {create, run}) {
    c->add_option("-b,--bundle", bundle_args.bundle);
    c->add_option("--pid-file", bundle_args.pid_file);
    c->add_option("--console-socket", bundle_args.console_socket);
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
  exec->add_option("-p,--process", exec_args.process_file);
  exec->add_option("--pid-file", exec_args.pid_file);
  exec->add_option("--console-socket", exec_args.console_socket);
  exec->add_flag("-d,--detach", exec_args.detach);
  exec->add_flag("-t,--tty", exec_args.tty, "allocate a terminal (pty) for the process");
  exec->add_option("--preserve-fds", preserve_fds);
  exec->add_option("id", id)->required();
  exec->add_option("args", exec_args.args);
  // runc commands docker can reach that Shoal does not implement: a clear error, not a usage
  // message.
  for (const char* name : {"update", "pause", "resume", "checkpoint", "restore", "events"}) {
    auto* c = app.add_subcommand(name, "not supported");
    c->allow_extras();
    c->callback([name, &g] {
      exit(g.Fail(absl::UnimplementedError(absl::StrCat("\"", name, "\" is not supported"))));
    });
  }
  CLI11_PARSE(app, argc, argv);

  if (*features) return Features();
  if (*seccomp_default) return SeccompDefault();
  if (no_pivot) return g.Fail(absl::InvalidArgumentError("--no-pivot: not supported"));
  if (preserve_fds != 0) return g.Fail(absl::InvalidArgumentError("--preserve-fds: not supported"));
  if (*run && detach) return g.Fail(absl::InvalidArgumentError("run --detach: use create + start"));
  bundle_args.id = id;
  if (*run || *create) bundle_args.bundle = AbsBundle(bundle_args.bundle);
  if (*run) return Run(g, bundle_args);
  if (*create) return Create(g, bundle_args);
  if (*del) return Delete(g, id, force);
  const std::string dir = g.StateDir(id);
  auto st = shoal::runtime::ReadOciState(dir);
  if (!st.ok()) {
    return g.Fail(absl::NotFoundError(absl::StrCat("container \"", id, "\" does not exist")));
  }
  if (*state) return State(*st, dir);
  if (*start) return Start(g, *st, dir);
  if (*kill_cmd) return Kill(g, *st, dir, signal_name, all);
  if (*ps) return Ps(g, *st, format);
  if (*exec) return Exec(g, *st, dir, exec_args);
  return 0;
}
