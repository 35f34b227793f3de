// shoal-runtime exec: a process in a running container, from its kept spec.json (and an OCI
// --process file or the command line).
#include <signal.h>

#include <filesystem>

#include "base/file.h"
#include "runtime/oci/commands.h"
#include "runtime/oci/console.h"
#include "runtime/spec_json.h"

namespace shoal::runtime::oci {

int Exec(const Globals& g, const OciState& st, const std::string& dir, const ExecArgs& a) {
  if (OciStatus(dir, st) != "running") {
    return g.Fail(absl::FailedPreconditionError("container not running"));
  }
  auto spec_text = base::ReadFile(dir + "/spec.json");
  if (!spec_text.ok()) return g.Fail(spec_text.status());
  auto spec = SpecFromJson(*spec_text);
  if (!spec.ok()) return g.Fail(spec.status());
  ProcessSpec p = spec->process;
  if (!a.process_file.empty()) {
    auto text = base::ReadFile(a.process_file);
    if (!text.ok()) return g.Fail(text.status());
    auto parsed = ParseOciProcess(*text, spec->process);
    if (!parsed.ok()) return g.Fail(parsed.status());
    p = *parsed;
  } else {
    p.args = a.args;
    p.terminal = a.tty;
    p.terminal_rows = p.terminal_cols = 0;
  }
  auto console = ConsoleTarget::Open(p, a.console_socket, /*can_relay=*/!a.detach);
  if (!console.ok()) return g.Fail(console.status());
  Runtime rt(Options(st.cgroup_parent));
  UseSeccompDiskCache(rt, std::filesystem::path(dir).parent_path().string());
  auto c = rt.Attach(*spec, st.pid);
  if (!c.ok()) return g.Fail(c.status());
  auto proc = (*c)->Exec(p, Stdio{0, 1, 2});
  if (!proc.ok()) return g.Fail(proc.status());
  if (auto s = console->HandOff((*proc)->TakeConsole()); !s.ok()) {
    (void)(*proc)->Signal(SIGKILL);
    return g.Fail(s);
  }
  WritePidFile(a.pid_file, (*proc)->pid());
  if (a.detach) return 0;  // the process is re-parented to the caller's subreaper
  console->Relay((*proc)->pidfd());
  auto exit = (*proc)->Wait();
  return exit.ok() ? exit->code : g.Fail(exit.status());
}

}  // namespace shoal::runtime::oci
