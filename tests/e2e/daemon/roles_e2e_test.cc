// Node certificates over a node's life, with real shoald processes driven by the `shoal` CLI:
// renewal before expiry while tasks keep running, promotion of a worker (it joins raft, serves
// the Control API, and is part of the quorum when the old leader is killed), demotion of a
// manager (raft shrinks, its Control API refuses), and a worker whose only configured manager
// dies finding another one through the dispatcher's manager list.
#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gtest/gtest.h"
#include "tests/e2e/daemon/daemon_cluster.h"

namespace shoal::daemon::e2e {
namespace {

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// What the node's certificate files on disk say.
struct CertOnDisk {
  std::string serial;  // hex
  time_t not_after = 0;
  std::string ou;
  bool key_matches = false;
};

CertOnDisk ReadCert(DaemonCluster& c, int i) {
  std::string dir = absl::StrCat(c.Dir(), "/n", i, "/root/swarm/certificates/");
  CertOnDisk out;
  std::string cert_pem = Slurp(dir + "node.crt");
  std::string key_pem = Slurp(dir + "node.key");
  BIO* cb = BIO_new_mem_buf(cert_pem.data(), static_cast<int>(cert_pem.size()));
  X509* x = PEM_read_bio_X509(cb, nullptr, nullptr, nullptr);
  BIO_free(cb);
  if (x == nullptr) return out;
  BIGNUM* bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), nullptr);
  char* hex = BN_bn2hex(bn);
  out.serial = hex;
  OPENSSL_free(hex);
  BN_free(bn);
  struct tm tm {};
  ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm);
  out.not_after = timegm(&tm);
  char ou[128] = {0};
  X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_organizationalUnitName, ou, sizeof(ou));
  out.ou = ou;
  BIO* kb = BIO_new_mem_buf(key_pem.data(), static_cast<int>(key_pem.size()));
  EVP_PKEY* key = PEM_read_bio_PrivateKey(kb, nullptr, nullptr, nullptr);
  BIO_free(kb);
  out.key_matches = key != nullptr && X509_check_private_key(x, key) == 1;
  EVP_PKEY_free(key);
  X509_free(x);
  return out;
}

std::vector<std::string> AgentArgs() {
  return {"--raft-tick-ms=100", "--no-image-pull", "--role-check-ms=500",
          std::string("--monitor-path=") + SHOAL_MONITOR_PATH,
          std::string("--init-path=") + SHOAL_INIT_PATH};
}

std::string Token(DaemonCluster& c, int i, const std::string& role) {
  CliResult t = c.Shoal(i, {"swarm", "join-token", "-q", role});
  EXPECT_EQ(t.exit_code, 0) << t.err;
  return std::string(absl::StripAsciiWhitespace(t.out));
}

// The row of `node ls` for hostname dc-node-<n>, empty when absent.
std::string NodeRow(const std::string& ls, int n) {
  for (absl::string_view line : absl::StrSplit(ls, '\n')) {
    if (absl::StrContains(line, absl::StrCat(" dc-node-", n, " "))) return std::string(line);
  }
  return "";
}

// `node ls` on node i shows `managers` manager statuses (one Leader) and every node in
// `ready` Ready.
bool Managers(DaemonCluster& c, int i, size_t managers, const std::vector<int>& ready) {
  CliResult ls = c.Shoal(i, {"node", "ls"});
  if (ls.exit_code != 0) return false;
  auto st = ManagerStatuses(ls.out);
  if (st.size() != managers || std::count(st.begin(), st.end(), "Leader") != 1) return false;
  for (const auto& s : st) {
    if (s != "Leader" && s != "Reachable") return false;
  }
  for (int n : ready) {
    if (!absl::StrContains(NodeRow(ls.out, n), "Ready")) return false;
  }
  return true;
}

// Task ids `service ps` lists for `service` (first column).
std::vector<std::string> TaskIds(DaemonCluster& c, int i, const std::string& service) {
  std::vector<std::string> ids;
  auto rows = Rows(c.Shoal(i, {"service", "ps", "--no-trunc", service}).out);
  for (size_t r = 1; r < rows.size(); ++r) ids.push_back(rows[r][0]);
  return ids;
}

std::string Field(const std::string& info, const std::string& name) {
  for (absl::string_view line : absl::StrSplit(info, '\n')) {
    line = absl::StripAsciiWhitespace(line);
    if (absl::ConsumePrefix(&line, name + ": ")) return std::string(line);
  }
  return "";
}

// (a) 30 s certificates: every node renews at 50-80 % of the lifetime, again and again; the
// worker stays connected and its containers keep running (same tasks, same processes).
TEST(DaemonRolesE2E, CertificatesRenewWhileTasksKeepRunning) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root (containers)";
  std::vector<std::string> args = AgentArgs();
  args.push_back("--node-cert-expiry-seconds=30");
  DaemonCluster c(2, args);
  std::string tar = c.Dir() + "/image.tar";
  std::string make = std::string(SHOAL_SOURCE_DIR) + "/tests/e2e/daemon/make_test_image.sh " + tar +
                     " dc-busybox:1";
  ASSERT_EQ(std::system(make.c_str()), 0) << make;
  for (int i = 0; i < 2; ++i) {
    std::string import = absl::StrCat(SHOAL_IMAGE_PATH, " --root ", c.Dir(), "/n", i,
                                      "/root/images import ", tar, " >/dev/null");
    ASSERT_EQ(std::system(import.c_str()), 0) << import;
    ASSERT_NO_FATAL_FAILURE(c.Start(i));
  }
  ASSERT_EQ(c.Shoal(0, {"swarm", "init"}).exit_code, 0) << c.Log(0);
  CliResult join = c.Shoal(1, {"swarm", "join", "--token", Token(c, 0, "worker"), c.Addr(0)});
  ASSERT_EQ(join.exit_code, 0) << join.err << c.Log(1);
  ASSERT_TRUE(WaitFor(
      [&] {
        return Managers(c, 0, 1, {0, 1});
      },
      absl::Seconds(60)))
      << c.Shoal(0, {"node", "ls"}).out;
  // One task on the worker (the manager drains itself out of the picture).
  ASSERT_EQ(c.Shoal(0, {"node", "update", "--availability", "drain", "dc-node-0"}).exit_code, 0);
  CliResult create =
      c.Shoal(0, {"service", "create", "--name", "keep", "dc-busybox:1", "sleep", "1000"});
  ASSERT_EQ(create.exit_code, 0) << create.err;
  ASSERT_TRUE(
      WaitFor([&] { return PidsInCgroup(c.CgroupParent(1)).size() == 1; }, absl::Seconds(90)))
      << c.Shoal(0, {"service", "ps", "--no-trunc", "keep"}).out << c.Log(1);
  const std::vector<pid_t> pids = PidsInCgroup(c.CgroupParent(1));
  const std::vector<std::string> tasks_before = TaskIds(c, 0, "keep");
  ASSERT_EQ(tasks_before.size(), 1u);

  CertOnDisk first = ReadCert(c, 1);
  ASSERT_FALSE(first.serial.empty());
  EXPECT_EQ(first.ou, "shoal-worker");
  EXPECT_TRUE(first.key_matches);
  CertOnDisk manager_first = ReadCert(c, 0);
  // Two renewals of the worker's certificate (each within 15-24 s of the previous issue).
  std::set<std::string> serials = {first.serial};
  CertOnDisk last = first;
  EXPECT_TRUE(WaitFor(
      [&] {
        CertOnDisk now = ReadCert(c, 1);
        if (now.serial.empty()) return false;
        if (!serials.contains(now.serial)) {
          EXPECT_GT(now.not_after, last.not_after);
          EXPECT_TRUE(now.key_matches) << "certificate and key on disk must match";
          EXPECT_EQ(now.ou, "shoal-worker");
          serials.insert(now.serial);
          last = now;
        }
        return serials.size() >= 3;
      },
      absl::Seconds(75)))
      << "the worker's certificate was renewed " << serials.size() - 1 << " times\n"
      << c.Log(1);
  // Past the first certificate's expiry: the node works only because it renewed.
  EXPECT_TRUE(WaitFor([&] { return ::time(nullptr) > first.not_after + 1; }, absl::Seconds(40)));
  CertOnDisk manager_now = ReadCert(c, 0);
  EXPECT_NE(manager_now.serial, manager_first.serial) << "the manager renews too\n" << c.Log(0);
  EXPECT_TRUE(manager_now.key_matches);

  // Still connected and Ready; the task and its process are the same ones. Polled: the only
  // manager restarts on each of its own renewals (no listener hot-swap yet), and the agent
  // reconnects after each restart.
  EXPECT_TRUE(WaitFor(
      [&] {
        return Managers(c, 0, 1, {0, 1}) &&
               absl::StartsWith(Field(c.Shoal(1, {"swarm", "info"}).out, "Agent"), "connected");
      },
      absl::Seconds(30)))
      << c.Shoal(0, {"node", "ls"}).out << c.Shoal(1, {"swarm", "info"}).out;
  EXPECT_EQ(TaskIds(c, 0, "keep"), tasks_before);
  EXPECT_TRUE(absl::StrContains(c.Shoal(0, {"service", "ls"}).out, "1/1"))
      << c.Shoal(0, {"service", "ps", "keep"}).out;
  EXPECT_EQ(PidsInCgroup(c.CgroupParent(1)), pids);
  EXPECT_FALSE(absl::StrContains(c.Log(1), "EXPIRED")) << c.Log(1);
  for (int i = 0; i < 2; ++i) EXPECT_EQ(c.Terminate(i), 0) << c.Log(i);
}

// (a') Three managers with 30 s certificates: each renews (restarting its manager on the new
// certificate, the leader included) and the cluster keeps its quorum and takes writes.
TEST(DaemonRolesE2E, ManagersRenewAndKeepTheQuorum) {
  DaemonCluster c(3, {"--no-agent", "--raft-tick-ms=100", "--node-cert-expiry-seconds=30"});
  for (int i = 0; i < 3; ++i) ASSERT_NO_FATAL_FAILURE(c.Start(i));
  ASSERT_EQ(c.Shoal(0, {"swarm", "init"}).exit_code, 0) << c.Log(0);
  std::string token = Token(c, 0, "manager");
  for (int i : {1, 2}) {
    ASSERT_EQ(c.Shoal(i, {"swarm", "join", "--token", token, c.Addr(0)}).exit_code, 0) << c.Log(i);
  }
  ASSERT_TRUE(WaitFor([&] { return Managers(c, 0, 3, {}); }, absl::Seconds(60)))
      << c.Shoal(0, {"node", "ls"}).out;
  std::vector<CertOnDisk> first;
  for (int i = 0; i < 3; ++i) first.push_back(ReadCert(c, i));
  EXPECT_TRUE(WaitFor(
      [&] {
        for (int i = 0; i < 3; ++i) {
          CertOnDisk now = ReadCert(c, i);
          if (now.serial.empty() || now.serial == first[i].serial) return false;
        }
        return true;
      },
      absl::Seconds(60)))
      << c.Log(0);
  for (int i = 0; i < 3; ++i) {
    CertOnDisk now = ReadCert(c, i);
    EXPECT_TRUE(now.key_matches);
    EXPECT_EQ(now.ou, "shoal-manager");
    EXPECT_GT(now.not_after, first[i].not_after);
  }
  // Past every first certificate's expiry the three still form the cluster and take writes.
  EXPECT_TRUE(WaitFor([&] { return ::time(nullptr) > first[2].not_after + 1; }, absl::Seconds(40)));
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(WaitFor([&] { return Managers(c, i, 3, {}); }, absl::Seconds(60)))
        << "node " << i << ":\n"
        << c.Shoal(i, {"node", "ls"}).out << c.Log(i);
  }
  // A write may meet a manager restarting on its new certificate: it answers "retry"
  // (UNAVAILABLE) and the user retries, as here.
  CliResult svc;
  EXPECT_TRUE(WaitFor(
      [&] {
        svc = c.Shoal(1, {"service", "create", "--name", "renewed", "--replicas", "0", "busybox"});
        return svc.exit_code == 0 || absl::StrContains(svc.err, "already exists");
      },
      absl::Seconds(30)))
      << svc.err;
  EXPECT_TRUE(WaitFor([&] { return ServiceVisible(c, 2, "renewed", 0); }, absl::Seconds(30)));
  for (int i = 0; i < 3; ++i) EXPECT_FALSE(absl::StrContains(c.Log(i), "EXPIRED")) << c.Log(i);
}

// (b) A promoted worker joins raft, shows as Reachable, serves the Control API on its own
// socket and, once the old leader is killed, is part of the quorum that elects a new one. A
// worker that was given only the old leader's address finds the new leader (item: the
// dispatcher's manager list).
TEST(DaemonRolesE2E, PromotedWorkerJoinsTheQuorum) {
  DaemonCluster c(4, AgentArgs());
  for (int i = 0; i < 4; ++i) ASSERT_NO_FATAL_FAILURE(c.Start(i));
  ASSERT_EQ(c.Shoal(0, {"swarm", "init"}).exit_code, 0) << c.Log(0);
  ASSERT_EQ(c.Shoal(1, {"swarm", "join", "--token", Token(c, 0, "manager"), c.Addr(0)}).exit_code,
            0)
      << c.Log(1);
  for (int i : {2, 3}) {
    CliResult j = c.Shoal(i, {"swarm", "join", "--token", Token(c, 0, "worker"), c.Addr(0)});
    ASSERT_EQ(j.exit_code, 0) << j.err << c.Log(i);
  }
  ASSERT_TRUE(WaitFor(
      [&] {
        return Managers(c, 0, 2, {0, 1, 2, 3});
      },
      absl::Seconds(60)))
      << c.Shoal(0, {"node", "ls"}).out;
  ASSERT_EQ(LeaderIndex(c, {0, 1}), 0);
  CliResult refused = c.Shoal(2, {"node", "ls"});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(refused.err, "not a swarm manager")) << refused.err;

  CliResult promote = c.Shoal(1, {"node", "promote", "dc-node-2"});
  ASSERT_EQ(promote.exit_code, 0) << promote.err;
  EXPECT_TRUE(WaitFor(
      [&] {
        return Field(c.Shoal(2, {"swarm", "info"}).out, "Is Manager") == "true";
      },
      absl::Seconds(60)))
      << c.Shoal(2, {"swarm", "info"}).out << c.Log(2);
  // Three managers (Leader + 2 Reachable) as every manager sees it, node 2 included.
  for (int i : {0, 1, 2}) {
    EXPECT_TRUE(WaitFor(
        [&] {
          return Managers(c, i, 3, {0, 1, 2, 3});
        },
        absl::Seconds(60)))
        << "node " << i << ":\n"
        << c.Shoal(i, {"node", "ls"}).out << c.Log(2);
  }
  EXPECT_EQ(ReadCert(c, 2).ou, "shoal-manager");
  EXPECT_TRUE(absl::StrContains(c.Shoal(2, {"swarm", "info"}).out, "Raft ID"));
  EXPECT_TRUE(std::filesystem::exists(c.Dir() + "/n2/root/swarm/raft-id"));

  // Node 0 has recorded the managers it knows (node.json), for its restart below.
  EXPECT_TRUE(WaitFor(
      [&] {
        std::string state = Slurp(c.Dir() + "/n0/root/swarm/node.json");
        return absl::StrContains(state, c.Addr(1)) && absl::StrContains(state, c.Addr(2));
      },
      absl::Seconds(30)))
      << Slurp(c.Dir() + "/n0/root/swarm/node.json");
  // kill -9 the leader (node 0, the only manager node 3 was told about): nodes 1 and 2 are a
  // quorum of three and elect a leader; node 3's agent moves to it.
  ASSERT_EQ(LeaderIndex(c, {0, 1, 2}), 0);
  c.Kill9(0);
  int next = -1;
  ASSERT_TRUE(WaitFor(
      [&] {
        return (next = LeaderIndex(c, {1, 2})) >= 0;
      },
      absl::Seconds(60)))
      << "no new leader among nodes 1 and 2\n"
      << c.Log(2);
  CliResult svc =
      c.Shoal(2, {"service", "create", "--name", "after", "--replicas", "0", "busybox"});
  EXPECT_EQ(svc.exit_code, 0) << svc.err;
  EXPECT_TRUE(WaitFor([&] { return ServiceVisible(c, 1, "after", 0); }, absl::Seconds(30)));
  EXPECT_TRUE(WaitFor(
      [&] {
        std::string agent = Field(c.Shoal(3, {"swarm", "info"}).out, "Agent");
        return agent == "connected to " + c.Addr(next);
      },
      absl::Seconds(60)))
      << c.Shoal(3, {"swarm", "info"}).out << c.Log(3);
  EXPECT_TRUE(WaitFor(
      [&] {
        return absl::StrContains(NodeRow(c.Shoal(next, {"node", "ls"}).out, 3), "Ready");
      },
      absl::Seconds(60)))
      << c.Shoal(next, {"node", "ls"}).out;
  // The agent of the surviving manager that lost the election moves to the new leader too.
  const int other = next == 1 ? 2 : 1;
  EXPECT_TRUE(WaitFor(
      [&] {
        return Field(c.Shoal(other, {"swarm", "info"}).out, "Agent") ==
               "connected to " + c.Addr(next);
      },
      absl::Seconds(60)))
      << c.Shoal(other, {"swarm", "info"}).out << c.Log(other);
  // The old leader, restarted, rejoins as a manager and its agent finds the new leader (its
  // node.json names only itself: the raft members it restores tell it the others).
  ASSERT_NO_FATAL_FAILURE(c.Start(0));
  EXPECT_TRUE(WaitFor(
      [&] {
        return Field(c.Shoal(0, {"swarm", "info"}).out, "Agent") == "connected to " + c.Addr(next);
      },
      absl::Seconds(60)))
      << c.Shoal(0, {"swarm", "info"}).out << c.Log(0);
  EXPECT_TRUE(WaitFor(
      [&] {
        return Managers(c, next, 3, {0, 1, 2, 3});
      },
      absl::Seconds(60)))
      << c.Shoal(next, {"node", "ls"}).out;
  // Node 3 remembers the manager it found (its `swarm info` lists it): restarted, it
  // reconnects although node 0 is gone.
  EXPECT_TRUE(WaitFor(
      [&] {
        return absl::StrContains(c.Shoal(3, {"swarm", "info"}).out, "  " + c.Addr(next) + "\n");
      },
      absl::Seconds(30)))
      << c.Shoal(3, {"swarm", "info"}).out;
  ASSERT_EQ(c.Terminate(3), 0) << c.Log(3);
  ASSERT_NO_FATAL_FAILURE(c.Start(3));
  EXPECT_TRUE(WaitFor(
      [&] {
        std::string agent = Field(c.Shoal(3, {"swarm", "info"}).out, "Agent");
        return absl::StartsWith(agent, "connected to ") && agent != "connected to " + c.Addr(0);
      },
      absl::Seconds(60)))
      << c.Shoal(3, {"swarm", "info"}).out << c.Log(3);
}

// (c) A demoted manager leaves raft, becomes a worker (agent still running), and its Control
// API refuses with the worker message; the remaining two managers keep working.
TEST(DaemonRolesE2E, DemotedManagerBecomesAWorker) {
  DaemonCluster c(3, AgentArgs());
  for (int i = 0; i < 3; ++i) ASSERT_NO_FATAL_FAILURE(c.Start(i));
  ASSERT_EQ(c.Shoal(0, {"swarm", "init"}).exit_code, 0) << c.Log(0);
  std::string token = Token(c, 0, "manager");
  for (int i : {1, 2}) {
    ASSERT_EQ(c.Shoal(i, {"swarm", "join", "--token", token, c.Addr(0)}).exit_code, 0) << c.Log(i);
  }
  ASSERT_TRUE(WaitFor(
      [&] {
        return Managers(c, 0, 3, {0, 1, 2});
      },
      absl::Seconds(60)))
      << c.Shoal(0, {"node", "ls"}).out;
  ASSERT_EQ(c.Shoal(2, {"node", "ls"}).exit_code, 0);

  CliResult demote = c.Shoal(0, {"node", "demote", "dc-node-2"});
  ASSERT_EQ(demote.exit_code, 0) << demote.err;
  EXPECT_TRUE(WaitFor(
      [&] {
        return Field(c.Shoal(2, {"swarm", "info"}).out, "Is Manager") == "false";
      },
      absl::Seconds(60)))
      << c.Shoal(2, {"swarm", "info"}).out << c.Log(2);
  CliResult refused = c.Shoal(2, {"node", "ls"});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(refused.err, "not a swarm manager")) << refused.err;
  EXPECT_EQ(ReadCert(c, 2).ou, "shoal-worker");
  EXPECT_FALSE(std::filesystem::exists(c.Dir() + "/n2/root/swarm/raft"));
  EXPECT_FALSE(std::filesystem::exists(c.Dir() + "/n2/root/swarm/raft-id"));

  // Raft has two members; node 2 is a Ready worker; the cluster takes writes.
  for (int i : {0, 1}) {
    EXPECT_TRUE(WaitFor(
        [&] {
          return Managers(c, i, 2, {0, 1, 2});
        },
        absl::Seconds(60)))
        << "node " << i << ":\n"
        << c.Shoal(i, {"node", "ls"}).out;
    std::string info = c.Shoal(i, {"swarm", "info"}).out;
    EXPECT_FALSE(absl::StrContains(info, "  " + c.Addr(2))) << info;
  }
  CliResult svc =
      c.Shoal(1, {"service", "create", "--name", "after", "--replicas", "0", "busybox"});
  EXPECT_EQ(svc.exit_code, 0) << svc.err;
  EXPECT_TRUE(WaitFor([&] { return ServiceVisible(c, 0, "after", 0); }, absl::Seconds(30)));
  // It stays a worker across a restart.
  ASSERT_EQ(c.Terminate(2), 0) << c.Log(2);
  ASSERT_NO_FATAL_FAILURE(c.Start(2));
  EXPECT_EQ(Field(c.Shoal(2, {"swarm", "info"}).out, "Is Manager"), "false");
  EXPECT_TRUE(WaitFor(
      [&] {
        return Managers(c, 0, 2, {0, 1, 2});
      },
      absl::Seconds(60)))
      << c.Shoal(0, {"node", "ls"}).out;
}

}  // namespace
}  // namespace shoal::daemon::e2e
