// shoal-runtime run: create, start and wait in the foreground, with the hooks around it.
#include <filesystem>

#include "runtime/oci/commands.h"
#include "runtime/oci/console.h"
#include "runtime/oci/hooks.h"
#include "runtime/oci/sysctl.h"

namespace shoal::runtime::oci {
namespace {

// The OCI state JSON given to a foreground container's hooks.
std::string StateJson(const BundleArgs& a, const OciBundle& b, pid_t pid,
                      const std::string& status) {
  OciState st{a.id, a.bundle, b.cgroup_parent, Now(), pid, 0, {}, {}};
  return OciStateJson(st, status).dump();
}

// Once the container runs: poststart hooks (their errors ignored), the pty relay if there is
// one, the wait, the container's removal, poststop hooks. Returns the container's exit code.
int WaitAndRemove(const Globals& g, Container& c, ConsoleTarget& console, const OciHooks& hooks,
                  const std::string& state_json, const std::string& scratch) {
  (void)RunHooks(hooks.poststart, "poststart", state_json, scratch);
  console.Relay(c.pidfd());
  auto exit = c.Wait();
  (void)c.Delete();
  (void)RunHooks(hooks.poststop, "poststop", state_json, scratch);
  return exit.ok() ? exit->code : g.Fail(exit.status());
}

}  // namespace

int Run(const Globals& g, const BundleArgs& a) {
  auto b = LoadBundle(a.bundle, a.id, g);
  if (!b.ok()) return g.Fail(b.status());
  auto console = ConsoleTarget::Open(b->spec.process, a.console_socket, /*can_relay=*/true);
  if (!console.ok()) return g.Fail(console.status());
  Runtime rt(Options(b->cgroup_parent));
  UseSeccompDiskCache(rt, g.root);
  const std::string scratch = std::filesystem::temp_directory_path();
  // Nothing has to happen between create and start (no hooks, sysctls or OOM score to apply
  // to the created process): create and start in one round trip (Runtime::Run).
  if (b->hooks.prestart.empty() && b->hooks.create_runtime.empty() && b->sysctls.empty() &&
      !b->oom_score_adj) {
    auto c = rt.Run(b->spec, Stdio{0, 1, 2});
    if (!c.ok()) return g.Fail(c.status());
    if (auto s = console->HandOff((*c)->TakeConsole()); !s.ok()) return g.Fail(s);  // ~ kills it
    WritePidFile(a.pid_file, (*c)->pid());
    return WaitAndRemove(g, **c, *console, b->hooks, StateJson(a, *b, (*c)->pid(), "running"),
                         scratch);
  }
  auto c = rt.Create(b->spec, Stdio{0, 1, 2});
  if (!c.ok()) return g.Fail(c.status());
  if (auto s = console->HandOff((*c)->TakeConsole()); !s.ok()) return g.Fail(s);
  if (auto s = WriteOomScoreAdj((*c)->pid(), b->oom_score_adj); !s.ok()) return g.Fail(s);
  if (auto s = ApplySysctls((*c)->pid(), b->sysctls); !s.ok()) return g.Fail(s);
  std::string state_json = StateJson(a, *b, (*c)->pid(), "created");
  for (auto* hooks : {&b->hooks.prestart, &b->hooks.create_runtime}) {
    auto s = RunHooks(*hooks, hooks == &b->hooks.prestart ? "prestart" : "createRuntime",
                      state_json, scratch);
    if (!s.ok()) return g.Fail(s);
  }
  WritePidFile(a.pid_file, (*c)->pid());
  if (auto s = (*c)->Start(); !s.ok()) return g.Fail(s);
  return WaitAndRemove(g, **c, *console, b->hooks, state_json, scratch);
}

}  // namespace shoal::runtime::oci
