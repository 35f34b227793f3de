// shoal-runtime start, state, kill, delete and ps: commands on a container's state directory.
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/unique_fd.h"
#include "kernel/ns/ns.h"
#include "nlohmann/json.hpp"
#include "runtime/oci/commands.h"
#include "runtime/oci/hooks.h"

namespace shoal::runtime::oci {
namespace {

// A signal number or name ("TERM", "SIGTERM"); -1 when unknown.
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

// Waits until the non-child `pid` (same start time) is gone, at most `timeout`.
bool WaitGone(pid_t pid, uint64_t start_time, absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  base::UniqueFd pidfd(kernel::PidfdOpen(pid));
  while (SameProcessAlive(pid, start_time)) {
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

absl::StatusOr<std::unique_ptr<kernel::Cgroup>> OpenCgroup(const OciState& st) {
  return kernel::Cgroup::Open(CgroupConfigFor(), absl::StrCat(st.cgroup_parent, "/", st.id));
}

}  // namespace

int State(const OciState& st, const std::string& dir) {
  printf("%s\n", OciStateJson(st, OciStatus(dir, st)).dump(2).c_str());
  return 0;
}

int Start(const Globals& g, const OciState& st, const std::string& dir) {
  std::string status = OciStatus(dir, st);
  if (status != "created") {
    return g.Fail(absl::FailedPreconditionError(
        absl::StrCat("container \"", st.id, "\" is ", status, ", not created")));
  }
  if (auto s = RequestStart(dir); !s.ok()) return g.Fail(s);
  (void)RunHooks(HooksFromJson(st.poststart), "poststart", OciStateJson(st, "running").dump(), dir);
  return 0;
}

int Delete(const Globals& g, const std::string& id, bool force) {
  const std::string dir = g.StateDir(id);
  auto st = ReadOciState(dir);
  if (!st.ok()) {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);  // a create that died half-way
    if (force) return 0;
    return g.Fail(absl::NotFoundError(absl::StrCat("container \"", id, "\" does not exist")));
  }
  std::string status = OciStatus(dir, *st);
  if (status == "running" && !force) {
    return g.Fail(absl::FailedPreconditionError(
        absl::StrCat("container \"", id, "\" is running; stop it or use --force")));
  }
  auto cg = kernel::Cgroup::Open(CgroupConfigFor(), absl::StrCat(st->cgroup_parent, "/", id));
  if (status != "stopped") {
    base::UniqueFd pidfd(kernel::PidfdOpen(st->pid));
    if (pidfd && SameProcessAlive(st->pid, st->start_time)) {
      (void)kernel::PidfdSignal(pidfd.get(), SIGKILL);
    }
  }
  if (cg.ok()) (void)(*cg)->KillAll();
  if (!WaitGone(st->pid, st->start_time, absl::Seconds(10))) {
    return g.Fail(absl::DeadlineExceededError(
        absl::StrCat("container \"", id, "\": init ", st->pid, " did not exit after SIGKILL")));
  }
  if (cg.ok()) {
    if (auto s = (*cg)->Remove(); !s.ok()) return g.Fail(s);
  }
  (void)RunHooks(HooksFromJson(st->poststop), "poststop", OciStateJson(*st, "stopped").dump(), dir);
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  return ec ? g.Fail(absl::InternalError(absl::StrCat("remove ", dir, ": ", ec.message()))) : 0;
}

int Kill(const Globals& g, const OciState& st, const std::string& dir,
         const std::string& signal_name, bool all) {
  int sig = ParseSignal(signal_name);
  if (sig <= 0) {
    return g.Fail(
        absl::InvalidArgumentError(absl::StrCat("signal: unknown \"", signal_name, "\"")));
  }
  if (OciStatus(dir, st) == "stopped" && !all) {
    return g.Fail(absl::FailedPreconditionError("container not running"));
  }
  if (all) {
    auto cg = OpenCgroup(st);
    if (!cg.ok()) return g.Fail(cg.status());
    if (sig == SIGKILL) {
      auto s = (*cg)->KillAll();
      return s.ok() ? 0 : g.Fail(s);
    }
    auto pids = (*cg)->Pids();
    if (!pids.ok()) return g.Fail(pids.status());
    for (pid_t p : *pids) (void)kill(p, sig);
    return 0;
  }
  base::UniqueFd pidfd(kernel::PidfdOpen(st.pid));
  // The pidfd pins the process: re-check that it is still the container's init.
  if (!pidfd || !SameProcessAlive(st.pid, st.start_time)) {
    return g.Fail(absl::FailedPreconditionError("container not running"));
  }
  int rc = kernel::PidfdSignal(pidfd.get(), sig);
  return rc < 0 ? g.Fail(absl::FailedPreconditionError("container not running")) : 0;
}

int Ps(const Globals& g, const OciState& st, const std::string& format) {
  auto cg = OpenCgroup(st);
  std::vector<pid_t> pids;
  if (cg.ok()) {
    auto p = (*cg)->Pids();
    if (!p.ok()) return g.Fail(p.status());
    pids = *p;
  }
  if (format == "json") {
    printf("%s\n", nlohmann::json(pids).dump().c_str());
  } else {
    printf("PID\n");
    for (pid_t p : pids) printf("%d\n", p);
  }
  return 0;
}

}  // namespace shoal::runtime::oci
