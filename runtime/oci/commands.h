// shoal-runtime's commands, one entry point each, called by main.cc's dispatcher after it
// parsed the flags. Each returns the command's exit code; errors go through Globals::Fail.
// create.cc: create; run.cc: run; exec.cc: exec; lifecycle.cc: start, state, kill, delete, ps
// (commands on an existing state directory); info.cc: features, seccomp-default.
#pragma once

#include <string>
#include <vector>

#include "runtime/oci/common.h"
#include "runtime/oci/state.h"

namespace shoal::runtime::oci {

// create and run: the container id, the bundle (absolute, see AbsBundle) and where its pid and
// pty master go.
struct BundleArgs {
  std::string id;
  std::string bundle;
  std::string pid_file;        // --pid-file, optional
  std::string console_socket;  // --console-socket, optional
};

// Creates the container (stays "created" until start) with its state directory; PID 1 is left
// to the caller's subreaper. Nothing stays behind on failure.
int Create(const Globals& g, const BundleArgs& a);
// Creates, starts and waits in the foreground; returns the container's exit code.
int Run(const Globals& g, const BundleArgs& a);

// Kills (--force: also a running container) and removes container `id`.
int Delete(const Globals& g, const std::string& id, bool force);
// The commands below work on an existing container: `st` read from its state directory `dir`.
int State(const OciState& st, const std::string& dir);
int Start(const Globals& g, const OciState& st, const std::string& dir);
// `signal_name`: a number, "TERM" or "SIGTERM"; --all: every process of the cgroup.
int Kill(const Globals& g, const OciState& st, const std::string& dir,
         const std::string& signal_name, bool all);
// `format`: "table" (a PID column) or "json" (an array).
int Ps(const Globals& g, const OciState& st, const std::string& format);

struct ExecArgs {
  std::string process_file;  // --process: an OCI process JSON (then `args` and tty are unused)
  std::vector<std::string> args;
  std::string pid_file;
  std::string console_socket;
  bool detach = false;
  bool tty = false;
};
// Runs a process in the running container; waits for it unless detached.
int Exec(const Globals& g, const OciState& st, const std::string& dir, const ExecArgs& a);

// The OCI features JSON; Docker's default seccomp profile as OCI linux.seccomp.
int Features();
int SeccompDefault();

}  // namespace shoal::runtime::oci
