// A Shoal cluster on the netns lab for e2e tests: scripts/lab-cluster (the same bring-up
// `make demo` uses) starts one real shoald per lab host inside that host's network namespace,
// inits/joins them and imports the test image (lab-busybox:1) into every node's store. The
// destructor runs `scripts/lab-cluster down`, which kills every process of the cluster (daemons,
// monitors, containers), unmounts, removes the cgroups, namespaces and state dir — also when the
// test fails.
#pragma once

#include <sys/types.h>

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "tests/lab/process.h"
#include "tests/testing/cli_table.h"
#include "tests/testing/wait.h"

namespace shoal::cluster::e2e {

class LabCluster {
 public:
  // Host numbers are 1-based (lab host <prefix>h<i>, address 192.168.77.<i>).
  LabCluster(std::string prefix, int hosts, int managers);
  ~LabCluster();  // Down()

  // `scripts/lab-cluster up`; its output on failure.
  lab::CommandResult Up();
  lab::CommandResult Down();
  // scripts/lab-cluster <verb> with this cluster's prefix/build dir, args shell-quoted.
  lab::CommandResult Script(const std::string& verb, const std::vector<std::string>& args);
  // The `shoal` CLI against host i's shoald (stdout and stderr together).
  lab::CommandResult Shoal(int i, const std::vector<std::string>& args);
  // Runs `sh -c cmd` in lab host i's network namespace (0 = the outside host).
  lab::CommandResult InHost(int i, const std::string& cmd);

  pid_t DaemonPid(int i);
  void Kill9(int i);  // SIGKILL host i's shoald (its containers keep running: live restore)

  std::string Hostname(int i) const;      // <prefix>h<i>, as `node ls` shows it
  std::string CgroupParent(int i) const;  // <prefix>n<i>
  std::string Ip(int i) const;            // 192.168.77.<i>
  std::string StateDir() const;           // /tmp/<prefix>cluster
  std::string Log(int i) const;           // host i's shoald output (for failure messages)
  const std::string& prefix() const { return prefix_; }

 private:
  std::string prefix_;
  int hosts_, managers_;
};

using ::shoal::testing::Rows;  // tests/testing/cli_table.h

// Processes whose cgroup (any hierarchy) lies under `parent`, with their command names (comm).
std::map<pid_t, std::string> ProcsInCgroup(const std::string& parent);

// Processes whose command line mentions `text` (e.g. a state dir).
std::vector<pid_t> ProcsMentioning(const std::string& text);

using ::shoal::testing::WaitFor;  // tests/testing/wait.h

}  // namespace shoal::cluster::e2e
