// Three real shoald processes on loopback, driven only through the `shoal` CLI as a user would:
// swarm init / join-token / join, node ls, service create/ls/ps, kill -9 of the leader's daemon,
// failover, restart from the state dir, clean SIGTERM shutdown.
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gtest/gtest.h"
#include "tests/e2e/daemon/daemon_cluster.h"

namespace shoal::daemon::e2e {
namespace {

bool ThreeManagersOneLeader(DaemonCluster& c, int i) {
  CliResult r = c.Shoal(i, {"node", "ls"});
  if (r.exit_code != 0) return false;
  auto st = ManagerStatuses(r.out);
  return Rows(r.out).size() == 4 && st.size() == 3 &&
         std::count(st.begin(), st.end(), "Leader") == 1;
}

TEST(DaemonE2E, ThreeManagersServiceFailoverAndRestart) {
  // No worker agent: this test is about the manager side; tasks stay unassigned/pending.
  DaemonCluster c(3, {"--no-agent", "--raft-tick-ms=100"});
  for (int i = 0; i < 3; ++i) ASSERT_NO_FATAL_FAILURE(c.Start(i));
  struct stat st {};
  ASSERT_EQ(::stat(c.Socket(0).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u) << "the local socket is root-only";

  // Not in a swarm yet: control commands say what to do.
  CliResult early = c.Shoal(0, {"node", "ls"});
  EXPECT_EQ(early.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(early.err, "not part of a swarm")) << early.err;

  CliResult init = c.Shoal(0, {"swarm", "init", "--advertise-addr", c.Addr(0)});
  ASSERT_EQ(init.exit_code, 0) << init.err << c.Log(0);
  EXPECT_TRUE(absl::StrContains(init.out, "Swarm initialized")) << init.out;
  EXPECT_TRUE(absl::StrContains(init.out, "shoal swarm join --token SHLTKN-")) << init.out;
  CliResult again = c.Shoal(0, {"swarm", "init"});
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(again.err, "this node is already part of a swarm")) << again.err;

  CliResult token = c.Shoal(0, {"swarm", "join-token", "-q", "manager"});
  ASSERT_EQ(token.exit_code, 0) << token.err;
  std::string manager_token(absl::StripAsciiWhitespace(token.out));
  ASSERT_TRUE(absl::StartsWith(manager_token, "SHLTKN-")) << manager_token;
  CliResult bad_token = c.Shoal(1, {"swarm", "join", "--token", "SHLTKN-1-nonsense", c.Addr(0)});
  EXPECT_EQ(bad_token.exit_code, 1);
  EXPECT_FALSE(bad_token.err.empty());
  for (int i : {1, 2}) {
    CliResult join = c.Shoal(i, {"swarm", "join", "--token", manager_token, c.Addr(0)});
    ASSERT_EQ(join.exit_code, 0) << join.err << c.Log(i);
    EXPECT_TRUE(absl::StrContains(join.out, "joined a swarm as a manager")) << join.out;
  }
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(WaitFor([&] { return ThreeManagersOneLeader(c, i); }, absl::Seconds(60)))
        << "node " << i << ":\n"
        << c.Shoal(i, {"node", "ls"}).out;
  }

  // Validation errors name the flag; nothing is created.
  CliResult bad =
      c.Shoal(1, {"service", "create", "--name", "x", "--limit-memory", "12x", "busybox"});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(bad.err, "--limit-memory")) << bad.err;

  CliResult create = c.Shoal(
      1, {"service", "create", "--name", "web", "--replicas", "3", "busybox", "sleep", "1000"});
  ASSERT_EQ(create.exit_code, 0) << create.err;
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(WaitFor([&] { return ServiceVisible(c, i, "web", 3); }, absl::Seconds(60)))
        << "node " << i << ":\n"
        << c.Shoal(i, {"service", "ls"}).out << c.Shoal(i, {"service", "ps", "web"}).out;
  }
  CliResult dup = c.Shoal(2, {"service", "create", "--name", "web", "busybox"});
  EXPECT_EQ(dup.exit_code, 1);
  EXPECT_TRUE(absl::StartsWith(dup.err, "Error response from daemon:")) << dup.err;

  // kill -9 the leader's daemon: the two others elect a leader and keep serving.
  int leader = -1;
  ASSERT_TRUE(WaitFor(
      [&] {
        return (leader = LeaderIndex(c, {0, 1, 2})) >= 0;
      },
      absl::Seconds(30)));
  c.Kill9(leader);
  std::vector<int> rest;
  for (int i = 0; i < 3; ++i) {
    if (i != leader) rest.push_back(i);
  }
  int next = -1;
  ASSERT_TRUE(WaitFor([&] { return (next = LeaderIndex(c, rest)) >= 0; }, absl::Seconds(60)))
      << "no new leader among the remaining two";
  for (int i : rest) {
    EXPECT_TRUE(WaitFor([&] { return ServiceVisible(c, i, "web", 3); }, absl::Seconds(60)))
        << "node " << i << " after failover:\n"
        << c.Shoal(i, {"service", "ls"}).err;
  }
  CliResult after =
      c.Shoal(rest[1], {"service", "create", "--name", "after", "--replicas", "2", "busybox"});
  ASSERT_EQ(after.exit_code, 0) << after.err;

  // The killed daemon restarts from its state dir and rejoins: it sees what happened meanwhile.
  ASSERT_NO_FATAL_FAILURE(c.Start(leader));
  EXPECT_TRUE(WaitFor([&] { return ServiceVisible(c, leader, "after", 2); }, absl::Seconds(60)))
      << c.Shoal(leader, {"service", "ls"}).out << c.Shoal(leader, {"service", "ls"}).err
      << c.Log(leader);
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(WaitFor([&] { return ThreeManagersOneLeader(c, i); }, absl::Seconds(60)))
        << "node " << i << ":\n"
        << c.Shoal(i, {"node", "ls"}).out;
  }

  // SIGTERM: every daemon exits 0 and removes its socket.
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(c.Terminate(i), 0) << c.Log(i);
    EXPECT_NE(::access(c.Socket(i).c_str(), F_OK), 0) << "socket left behind";
  }
}

TEST(DaemonE2E, WorkerJoinsRestartsAndLeaves) {
  DaemonCluster c(2, {"--no-agent", "--raft-tick-ms=100"});
  for (int i = 0; i < 2; ++i) ASSERT_NO_FATAL_FAILURE(c.Start(i));
  ASSERT_EQ(c.Shoal(0, {"swarm", "init"}).exit_code, 0) << c.Log(0);
  CliResult token = c.Shoal(0, {"swarm", "join-token", "-q", "worker"});
  ASSERT_EQ(token.exit_code, 0) << token.err;
  std::string worker_token(absl::StripAsciiWhitespace(token.out));
  CliResult join = c.Shoal(1, {"swarm", "join", "--token", worker_token, c.Addr(0)});
  ASSERT_EQ(join.exit_code, 0) << join.err << c.Log(1);
  EXPECT_TRUE(absl::StrContains(join.out, "joined a swarm as a worker")) << join.out;

  // The manager lists a manager (Leader) and a worker (no manager status).
  CliResult ls = c.Shoal(0, {"node", "ls"});
  ASSERT_EQ(ls.exit_code, 0) << ls.err;
  EXPECT_EQ(Rows(ls.out).size(), 3u) << ls.out;
  EXPECT_EQ(ManagerStatuses(ls.out), std::vector<std::string>{"Leader"}) << ls.out;
  // A worker cannot read cluster state, and says so.
  CliResult on_worker = c.Shoal(1, {"service", "ls"});
  EXPECT_EQ(on_worker.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(on_worker.err, "not a swarm manager")) << on_worker.err;

  // Restarted from its state dir, the worker is still the same node of the same swarm.
  CliResult before = c.Shoal(1, {"swarm", "info"});
  ASSERT_EQ(c.Terminate(1), 0) << c.Log(1);
  ASSERT_NO_FATAL_FAILURE(c.Start(1));
  CliResult after = c.Shoal(1, {"swarm", "info"});
  EXPECT_EQ(before.out, after.out);
  EXPECT_TRUE(absl::StrContains(after.out, "Is Manager: false")) << after.out;

  // Leaving needs no --force on a worker; afterwards the node can join again.
  CliResult leave = c.Shoal(1, {"swarm", "leave"});
  EXPECT_EQ(leave.exit_code, 0) << leave.err;
  EXPECT_TRUE(absl::StrContains(c.Shoal(1, {"swarm", "info"}).out, "Swarm: inactive"));
  EXPECT_EQ(c.Shoal(1, {"swarm", "join", "--token", worker_token, c.Addr(0)}).exit_code, 0);
  // A manager refuses to leave without --force.
  CliResult mleave = c.Shoal(0, {"swarm", "leave"});
  EXPECT_EQ(mleave.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(mleave.err, "--force")) << mleave.err;
}

// The agent runs in shoald: the node registers with its dispatcher (hostname, Ready) and runs
// real containers (overlayfs rootfs from an imported image, cgroups under --cgroup-parent).
// Images are never pulled here (no traffic leaves loopback): a missing image is REJECTED.
TEST(DaemonE2E, AgentRunsContainersAndRejectsMissingImages) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root (containers)";
  DaemonCluster c(1, {"--raft-tick-ms=100", "--no-image-pull",
                      std::string("--monitor-path=") + SHOAL_MONITOR_PATH,
                      std::string("--init-path=") + SHOAL_INIT_PATH});
  // The image goes into the node's store before shoald starts (shoal-image, same store code).
  std::string tar = c.Dir() + "/image.tar";
  std::string make = std::string(SHOAL_SOURCE_DIR) + "/tests/e2e/daemon/make_test_image.sh " + tar +
                     " dc-busybox:1";
  ASSERT_EQ(std::system(make.c_str()), 0) << make;
  std::string import = std::string(SHOAL_IMAGE_PATH) + " --root " + c.Dir() +
                       "/n0/root/images import " + tar + " >/dev/null";
  ASSERT_EQ(std::system(import.c_str()), 0) << import;

  ASSERT_NO_FATAL_FAILURE(c.Start(0));
  ASSERT_EQ(c.Shoal(0, {"swarm", "init"}).exit_code, 0) << c.Log(0);
  EXPECT_TRUE(WaitFor(
      [&] {
        CliResult ls = c.Shoal(0, {"node", "ls"});
        auto rows = Rows(ls.out);
        return rows.size() == 2 && rows[1].size() > 2 && rows[1][1] == "dc-node-0" &&
               rows[1][2] == "Ready";
      },
      absl::Seconds(60)))
      << c.Shoal(0, {"node", "ls"}).out << c.Shoal(0, {"swarm", "info"}).out << c.Log(0);

  // Two real containers: service ls says 2/2 and two processes live in the node's cgroups.
  CliResult create = c.Shoal(0, {"service", "create", "--name", "real", "--replicas", "2",
                                 "dc-busybox:1", "sleep", "1000"});
  ASSERT_EQ(create.exit_code, 0) << create.err;
  EXPECT_TRUE(WaitFor(
      [&] {
        return ServiceVisible(c, 0, "real", 2) &&
               absl::StrContains(c.Shoal(0, {"service", "ls"}).out, "2/2");
      },
      absl::Seconds(90)))
      << c.Shoal(0, {"service", "ps", "--no-trunc", "real"}).out << c.Log(0);
  EXPECT_EQ(PidsInCgroup(c.CgroupParent(0)).size(), 2u);
  // `node ps` (default: this node; also by hostname) lists both tasks on this node, by name.
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"node", "ps"},
        std::vector<std::string>{"node", "ps", "dc-node-0"}}) {
    CliResult nps = c.Shoal(0, args);
    ASSERT_EQ(nps.exit_code, 0) << nps.err;
    auto rows = Rows(nps.out);
    ASSERT_EQ(rows.size(), 3u) << nps.out;
    EXPECT_EQ(rows[0][1], "NAME") << nps.out;
    std::set<std::string> names;
    for (size_t i = 1; i < rows.size(); ++i) {
      ASSERT_GE(rows[i].size(), 6u) << nps.out;
      names.insert(rows[i][1]);
      EXPECT_EQ(rows[i][3], "dc-node-0") << nps.out;
      EXPECT_EQ(rows[i][4], "Running") << nps.out;
      EXPECT_TRUE(absl::StartsWith(rows[i][5], "Running")) << nps.out;
    }
    EXPECT_EQ(names, (std::set<std::string>{"real.1", "real.2"})) << nps.out;
  }
  CliResult unknown = c.Shoal(0, {"node", "ps", "dc-no-such-node"});
  EXPECT_NE(unknown.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(unknown.err, "dc-no-such-node")) << unknown.err;
  // Removing the service stops them (after the stop grace period: sleep as PID 1 ignores TERM).
  ASSERT_EQ(c.Shoal(0, {"service", "rm", "real"}).exit_code, 0);
  EXPECT_TRUE(WaitFor([&] { return PidsInCgroup(c.CgroupParent(0)).empty(); }, absl::Seconds(60)))
      << "containers still running after service rm";

  CliResult ghost = c.Shoal(0, {"service", "create", "--name", "ghost", "--restart-condition",
                                "none", "dc-no-such-image:1"});
  ASSERT_EQ(ghost.exit_code, 0) << ghost.err;
  EXPECT_TRUE(WaitFor(
      [&] {
        CliResult ps = c.Shoal(0, {"service", "ps", "--no-trunc", "ghost"});
        return absl::StrContains(ps.out, "dc-node-0") && absl::StrContains(ps.out, "Rejected");
      },
      absl::Seconds(60)))
      << c.Shoal(0, {"service", "ps", "--no-trunc", "ghost"}).out << c.Log(0);
  EXPECT_EQ(c.Terminate(0), 0) << c.Log(0);
}

}  // namespace
}  // namespace shoal::daemon::e2e
