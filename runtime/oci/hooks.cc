#include "runtime/oci/hooks.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "base/file.h"
#include "base/status.h"
#include "kernel/ns/ns.h"

namespace shoal::runtime {
namespace {

absl::Status RunHook(const OciHook& h, const std::string& field, const std::string& state,
                     const std::string& out_path) {
  int in[2];
  if (pipe2(in, O_CLOEXEC) != 0) return base::ErrnoStatus(errno, "pipe");
  base::UniqueFd in_r(in[0]), in_w(in[1]);
  base::UniqueFd out(open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!out) return base::ErrnoStatus(errno, "open ", out_path);
  std::vector<std::string> args = h.args.empty() ? std::vector<std::string>{h.path} : h.args;
  std::vector<char*> argv, envp;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env = h.env;
  for (std::string& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in_r.get(), 0);
  posix_spawn_file_actions_adddup2(&fa, out.get(), 1);
  posix_spawn_file_actions_adddup2(&fa, out.get(), 2);
  pid_t pid;
  int rc = posix_spawn(&pid, h.path.c_str(), &fa, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) return base::ErrnoStatus(rc, field, ": exec ", h.path);
  in_r.Reset();
  out.Reset();
  // The hook may not read stdin at all (EPIPE is fine); the state JSON fits the pipe buffer.
  signal(SIGPIPE, SIG_IGN);
  (void)base::WriteAll(in_w.get(), state, "hook stdin");
  in_w.Reset();
  base::UniqueFd pidfd(kernel::PidfdOpen(pid));
  bool timed_out = false;
  if (pidfd && h.timeout_s > 0) {
    struct pollfd p = {pidfd.get(), POLLIN, 0};
    int r;
    do {
      r = poll(&p, 1, h.timeout_s * 1000);
    } while (r < 0 && errno == EINTR);
    if (r == 0) {
      timed_out = true;
      kill(pid, SIGKILL);
    }
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  auto output = base::ReadFile(out_path);
  unlink(out_path.c_str());
  std::string text = output.ok() ? *output : "";
  while (!text.empty() && text.back() == '\n') text.pop_back();
  if (timed_out) {
    return absl::DeadlineExceededError(
        absl::StrCat(field, ": ", h.path, " timed out after ", h.timeout_s, "s: ", text));
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat(field, ": ", h.path, " failed (",
                     WIFEXITED(status) ? absl::StrCat("exit ", WEXITSTATUS(status))
                                       : absl::StrCat("signal ", WTERMSIG(status)),
                     ")", text.empty() ? "" : ": ", text));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status RunHooks(const std::vector<OciHook>& hooks, const std::string& kind,
                      const std::string& state_json, const std::string& scratch_dir) {
  for (size_t i = 0; i < hooks.size(); ++i) {
    RETURN_IF_ERROR(RunHook(hooks[i], absl::StrCat("hooks.", kind, "[", i, "]"), state_json,
                            absl::StrCat(scratch_dir, "/hook-", getpid(), ".out")));
  }
  return absl::OkStatus();
}

}  // namespace shoal::runtime
