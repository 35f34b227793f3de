// shoal-runtime create: PID 1 is cloned here and left, with a holder process that starts it
// later, to the caller's subreaper (see state.h).
#include <unistd.h>

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "base/file.h"
#include "runtime/oci/commands.h"
#include "runtime/oci/console.h"
#include "runtime/oci/hooks.h"
#include "runtime/oci/sysctl.h"
#include "runtime/spec_json.h"

namespace shoal::runtime::oci {

int Create(const Globals& g, const BundleArgs& a) {
  const std::string& id = a.id;
  const std::string dir = g.StateDir(id);
  if (auto s = ValidateId(id); !s.ok()) return g.Fail(s);
  if (access((dir + "/state.json").c_str(), F_OK) == 0) {
    return g.Fail(absl::AlreadyExistsError(absl::StrCat("container \"", id, "\" already exists")));
  }
  auto b = LoadBundle(a.bundle, id, g);
  if (!b.ok()) return g.Fail(b.status());
  // Connect before anything exists: a bad socket leaves nothing behind.
  auto console = ConsoleTarget::Open(b->spec.process, a.console_socket, /*can_relay=*/false);
  if (!console.ok()) return g.Fail(console.status());
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return g.Fail(absl::InternalError(absl::StrCat("create ", dir, ": ", ec.message())));
  auto cleanup_dir = [&] { std::filesystem::remove_all(dir, ec); };
  Runtime rt(Options(b->cgroup_parent));
  UseSeccompDiskCache(rt, g.root);
  auto c = rt.Create(b->spec, Stdio{0, 1, 2});
  if (!c.ok()) {
    cleanup_dir();
    return g.Fail(c.status());
  }
  // From here on an error destroys the container (~Container) and the state directory.
  auto fail = [&](const absl::Status& s) {
    (void)(*c)->Delete();
    cleanup_dir();
    return g.Fail(s);
  };
  // The master goes to the console socket now; no copy may stay here or in the holder.
  if (auto s = console->HandOff((*c)->TakeConsole()); !s.ok()) return fail(s);
  pid_t pid = (*c)->pid();
  auto start_time = ProcStartTime(pid);
  if (!start_time) return fail(absl::InternalError("container init exited during create"));
  if (auto s = WriteOomScoreAdj(pid, b->oom_score_adj); !s.ok()) return fail(s);
  if (auto s = ApplySysctls(pid, b->sysctls); !s.ok()) return fail(s);
  OciState st{id,
              a.bundle,
              b->cgroup_parent,
              Now(),
              pid,
              *start_time,
              HooksToJson(b->hooks.poststart),
              HooksToJson(b->hooks.poststop)};
  if (auto s = base::WriteFileAtomic(dir + "/spec.json", SpecToJson(b->spec), 0600); !s.ok()) {
    return fail(s);
  }
  if (auto s = WriteOciState(dir, st); !s.ok()) return fail(s);
  if (auto s = SpawnHolder(dir, c->get()); !s.ok()) return fail(s);
  std::string state_json = OciStateJson(st, "created").dump();
  if (auto s = RunHooks(b->hooks.prestart, "prestart", state_json, dir); !s.ok()) {
    return fail(s);
  }
  if (auto s = RunHooks(b->hooks.create_runtime, "createRuntime", state_json, dir); !s.ok()) {
    return fail(s);
  }
  WritePidFile(a.pid_file, pid);
  // PID 1 outlives this command (re-parented to the caller's subreaper); do not run the
  // handle's destructor, which would kill it.
  (void)c->release();
  return 0;
}

}  // namespace shoal::runtime::oci
