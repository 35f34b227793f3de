// Real shoald processes on loopback for e2e tests, driven through the real `shoal` CLI. Each
// node has its own --root, --exec-root and manager port under one mkdtemp directory
// (/tmp/dc-e2e-XXXXXX). The destructor kills every daemon still running and removes the
// directory, also when the test fails.
#pragma once

#include <sys/types.h>

#include <functional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "tests/testing/cli_table.h"
#include "tests/testing/wait.h"

namespace shoal::daemon::e2e {

struct CliResult {
  int exit_code = -1;
  std::string out, err;
};

class DaemonCluster {
 public:
  DaemonCluster(int nodes, std::vector<std::string> extra_args);
  ~DaemonCluster();

  void Start(int i);     // launches shoald i and waits until its socket answers
  void Kill9(int i);     // SIGKILL, reaped
  int Terminate(int i);  // SIGTERM; the exit status (-1 when it did not exit in 30 s)
  bool Running(int i) const { return pids_[i] > 0; }

  CliResult Shoal(int i, const std::vector<std::string>& args);  // shoal -H <node i>
  std::string Addr(int i) const;                                 // 127.0.0.1:<port>
  std::string Socket(int i) const;
  std::string Dir() const { return dir_; }
  std::string Log(int i) const;           // shoald's output so far (for failure messages)
  std::string CgroupParent(int i) const;  // dc-e2e-<test pid>-<i>

 private:
  std::string dir_;
  std::vector<int> ports_;
  std::vector<pid_t> pids_;
  std::vector<std::string> extra_;
  int cli_seq_ = 0;
};

// Processes whose cgroup (in any hierarchy) lies under `parent`.
std::vector<pid_t> PidsInCgroup(const std::string& parent);

using ::shoal::testing::Rows;  // tests/testing/cli_table.h
// The non-empty cells of the MANAGER STATUS column of `node ls`.
std::vector<std::string> ManagerStatuses(const std::string& out);
// `service ls` on node i lists `name` with `replicas` desired, and `service ps` shows that many
// tasks.
bool ServiceVisible(DaemonCluster& c, int i, const std::string& name, int replicas);
// The node among `among` whose `swarm info` says it leads, or -1.
int LeaderIndex(DaemonCluster& c, const std::vector<int>& among);

using ::shoal::testing::WaitFor;  // tests/testing/wait.h

}  // namespace shoal::daemon::e2e
