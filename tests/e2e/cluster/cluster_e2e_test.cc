// A multi-host Shoal cluster: 3 lab hosts (network namespaces on one bridge), one real shoald
// per host inside its namespace, driven only through the `shoal` CLI as a user would. A
// replicated service runs real containers spread over the nodes; scale up/down, drain and the
// loss of a worker (kill -9 of its shoald) move tasks as swarm mode does.
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gtest/gtest.h"
#include "tests/e2e/cluster/lab_cluster.h"
#include "tests/lab/lab.h"

namespace shoal::cluster::e2e {
namespace {

// The service's command: busybox httpd serving the container's hostname (the task's short id)
// on port 80; sh as PID 1 exits on SIGTERM so `service scale` down stops tasks at once.
const std::vector<std::string> kWebCommand = {
    "lab-busybox:1", "sh", "-c",
    "trap 'exit 0' TERM; mkdir -p /tmp/www && hostname >/tmp/www/index.html && "
    "httpd -f -p 80 -h /tmp/www & wait"};

struct Task {
  std::string id, name, node, desired, current;
};

// Tasks of `service ps` asked on host `on` (every row, history included).
std::vector<Task> Tasks(LabCluster& c, const std::string& service, int on = 1) {
  std::vector<Task> tasks;
  lab::CommandResult ps = c.Shoal(on, {"service", "ps", service});
  if (!ps.ok()) return tasks;
  auto rows = Rows(ps.output);
  for (size_t i = 1; i < rows.size(); ++i) {
    const auto& r = rows[i];
    if (r.size() < 6) continue;
    tasks.push_back({r[0], r[1], r[3], r[4], r[5]});
  }
  return tasks;
}

// Node -> number of tasks desired and observed Running.
std::map<std::string, int> RunningPerNode(LabCluster& c, const std::string& service) {
  std::map<std::string, int> per_node;
  for (const Task& t : Tasks(c, service)) {
    if (t.desired == "Running" && absl::StartsWith(t.current, "Running")) ++per_node[t.node];
  }
  return per_node;
}

int Total(const std::map<std::string, int>& m) {
  int n = 0;
  for (const auto& [k, v] : m) n += v;
  return n;
}

// The httpd processes (one per container) living in host i's cgroup parent.
std::vector<pid_t> Httpds(LabCluster& c, int i) {
  std::vector<pid_t> pids;
  for (const auto& [pid, comm] : ProcsInCgroup(c.CgroupParent(i))) {
    if (comm == "httpd") pids.push_back(pid);
  }
  return pids;
}

std::string Describe(LabCluster& c) {
  std::string s = c.Shoal(1, {"node", "ls"}).output + c.Shoal(1, {"service", "ps", "web"}).output;
  for (int i = 1; i <= 3; ++i) {
    absl::StrAppend(&s, c.CgroupParent(i), ": ", Httpds(c, i).size(), " httpd\n");
  }
  return s;
}

// node ls on host 1 shows `hostname` with status `status`.
bool NodeStatus(LabCluster& c, const std::string& hostname, const std::string& status) {
  for (const auto& r : Rows(c.Shoal(1, {"node", "ls"}).output)) {
    if (r.size() > 2 && r[1] == hostname && r[2] == status) return true;
  }
  return false;
}

int CountOf(const std::string& text, const std::string& what) {
  int n = 0;
  for (size_t pos = text.find(what); pos != std::string::npos; pos = text.find(what, pos + 1)) ++n;
  return n;
}

// Nothing left of a cluster: no process, namespace, cgroup, mount or directory.
void ExpectNothingLeft(const std::string& prefix) {
  EXPECT_TRUE(ProcsMentioning("/tmp/" + prefix + "cluster/").empty());
  EXPECT_EQ(lab::Leftovers(prefix), std::vector<std::string>{});
  std::string mounts;
  std::ifstream in("/proc/self/mountinfo");
  for (std::string line; std::getline(in, line);) {
    if (absl::StrContains(line, "/tmp/" + prefix)) mounts += line + "\n";
  }
  EXPECT_EQ(mounts, "");
}

TEST(ClusterE2E, ReplicatedServiceSpreadsScalesDrainsAndSurvivesAWorkerLoss) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root (network namespaces, containers)";
  const std::string prefix = "clu-";
  {
    LabCluster c(prefix, /*hosts=*/3, /*managers=*/1);
    lab::CommandResult up = c.Up();
    ASSERT_TRUE(up.ok()) << up.output;

    // Three nodes, Ready, one leader (host 1); the others joined as workers over the lab.
    lab::CommandResult ls = c.Shoal(1, {"node", "ls"});
    ASSERT_TRUE(ls.ok()) << ls.output;
    auto rows = Rows(ls.output);
    ASSERT_EQ(rows.size(), 4u) << ls.output;
    for (int i = 1; i <= 3; ++i) EXPECT_TRUE(NodeStatus(c, c.Hostname(i), "Ready")) << ls.output;
    EXPECT_TRUE(absl::StrContains(ls.output, "Leader")) << ls.output;
    lab::CommandResult info = c.Shoal(2, {"swarm", "info"});
    EXPECT_TRUE(absl::StrContains(info.output, "Is Manager: false")) << info.output;
    // Each shoald runs inside its lab host: its manager port is bound to that host's address.
    lab::CommandResult listen = c.InHost(1, "ss -Hltn");
    EXPECT_TRUE(absl::StrContains(listen.output, c.Ip(1) + "]:2377") ||
                absl::StrContains(listen.output, c.Ip(1) + ":2377"))
        << listen.output;

    // 6 replicas: all Running, 2 per node, each a real container (an httpd process in the
    // node's cgroup parent, its own hostname = its task id, serving it on port 80).
    std::vector<std::string> create = {"service", "create", "--name", "web", "--replicas", "6"};
    create.insert(create.end(), kWebCommand.begin(), kWebCommand.end());
    lab::CommandResult created = c.Shoal(1, create);
    ASSERT_TRUE(created.ok()) << created.output;
    ASSERT_TRUE(WaitFor(
        [&] {
          auto per = RunningPerNode(c, "web");
          return per.size() == 3 && Total(per) == 6 && Httpds(c, 1).size() == 2 &&
                 Httpds(c, 2).size() == 2 && Httpds(c, 3).size() == 2;
        },
        absl::Seconds(120)))
        << Describe(c) << c.Log(1);
    for (const auto& [node, n] : RunningPerNode(c, "web")) EXPECT_EQ(n, 2) << node;
    for (int i = 1; i <= 3; ++i) {
      std::set<std::string> ids_on_node, served;
      for (const Task& t : Tasks(c, "web")) {
        if (t.node == c.Hostname(i) && t.desired == "Running") ids_on_node.insert(t.id);
      }
      for (pid_t pid : Httpds(c, i)) {
        // Inside the container's own network namespace, httpd answers with its hostname.
        lab::CommandResult get =
            lab::RunIn(-1, absl::StrCat("nsenter -t ", pid, " -n curl -s http://127.0.0.1/"))
                .value_or(lab::CommandResult{});
        EXPECT_TRUE(get.ok()) << get.output;
        served.insert(std::string(absl::StripAsciiWhitespace(get.output)));
      }
      EXPECT_EQ(served, ids_on_node) << "node " << i << ": containers serve their task ids";
    }

    // Scale up to 9 (3 per node), then down to 3: stopped tasks' processes are gone.
    ASSERT_TRUE(c.Shoal(1, {"service", "scale", "web=9"}).ok());
    EXPECT_TRUE(WaitFor(
        [&] {
          auto per = RunningPerNode(c, "web");
          return Total(per) == 9 && per.size() == 3 && Httpds(c, 1).size() == 3 &&
                 Httpds(c, 2).size() == 3 && Httpds(c, 3).size() == 3;
        },
        absl::Seconds(120)))
        << Describe(c);
    ASSERT_TRUE(c.Shoal(1, {"service", "scale", "web=3"}).ok());
    EXPECT_TRUE(WaitFor(
        [&] {
          return Total(RunningPerNode(c, "web")) == 3 &&
                 Httpds(c, 1).size() + Httpds(c, 2).size() + Httpds(c, 3).size() == 3;
        },
        absl::Seconds(120)))
        << Describe(c);

    // Drain host 3: its tasks move to hosts 1 and 2, its containers stop.
    ASSERT_TRUE(c.Shoal(1, {"node", "update", "--availability", "drain", c.Hostname(3)}).ok());
    EXPECT_TRUE(WaitFor(
        [&] {
          auto per = RunningPerNode(c, "web");
          return Total(per) == 3 && per.count(c.Hostname(3)) == 0 && Httpds(c, 3).empty() &&
                 Httpds(c, 1).size() + Httpds(c, 2).size() == 3;
        },
        absl::Seconds(120)))
        << Describe(c);
    EXPECT_TRUE(absl::StrContains(c.Shoal(1, {"node", "ls"}).output, "Drain"));
    ASSERT_TRUE(c.Shoal(1, {"node", "update", "--availability", "active", c.Hostname(3)}).ok());

    // kill -9 of worker 2's shoald: once the node is Down its tasks are replaced on the others.
    int on_2 = RunningPerNode(c, "web")[c.Hostname(2)];
    ASSERT_GT(on_2, 0) << Describe(c);
    c.Kill9(2);
    EXPECT_TRUE(WaitFor([&] { return NodeStatus(c, c.Hostname(2), "Down"); }, absl::Seconds(90)))
        << Describe(c);
    EXPECT_TRUE(WaitFor(
        [&] {
          auto per = RunningPerNode(c, "web");
          return Total(per) == 3 && per.count(c.Hostname(2)) == 0;
        },
        absl::Seconds(120)))
        << Describe(c) << c.Log(1);
    EXPECT_EQ(Httpds(c, 1).size() + Httpds(c, 3).size(), 3u) << Describe(c);

    // Restarted, worker 2 is Ready again and stops the containers it no longer owns.
    lab::CommandResult restart = c.Script("start", {"2"});
    ASSERT_TRUE(restart.ok()) << restart.output;
    EXPECT_TRUE(WaitFor([&] { return NodeStatus(c, c.Hostname(2), "Ready"); }, absl::Seconds(90)))
        << Describe(c) << c.Log(2);
    EXPECT_TRUE(WaitFor([&] { return Httpds(c, 2).empty(); }, absl::Seconds(90)))
        << Describe(c) << c.Log(2);

    lab::CommandResult down = c.Down();
    EXPECT_TRUE(down.ok()) << down.output;
  }
  ExpectNothingLeft(prefix);
}

// Three managers on three hosts (raft over the lab network): kill -9 of the leader's shoald —
// the two others elect a leader, the dead node goes Down and its task is replaced; restarted,
// it rejoins the raft group.
TEST(ClusterE2E, ThreeManagersSurviveTheLeadersLoss) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root (network namespaces, containers)";
  const std::string prefix = "clum-";
  {
    LabCluster c(prefix, /*hosts=*/3, /*managers=*/3);
    lab::CommandResult up = c.Up();
    ASSERT_TRUE(up.ok()) << up.output;
    auto managers = [&](int i, int leaders, int reachable) {
      lab::CommandResult ls = c.Shoal(i, {"node", "ls"});
      return ls.ok() && CountOf(ls.output, " Leader ") == leaders &&
             CountOf(ls.output, " Reachable ") == reachable;
    };
    EXPECT_TRUE(WaitFor([&] { return managers(1, 1, 2); }, absl::Seconds(60)))
        << c.Shoal(1, {"node", "ls"}).output;

    std::vector<std::string> create = {"service", "create", "--name", "web", "--replicas", "3"};
    create.insert(create.end(), kWebCommand.begin(), kWebCommand.end());
    ASSERT_TRUE(c.Shoal(2, create).ok());
    ASSERT_TRUE(WaitFor([&] { return RunningPerNode(c, "web").size() == 3; }, absl::Seconds(120)))
        << Describe(c);

    int leader = 0;
    for (int i = 1; i <= 3; ++i) {
      if (absl::StrContains(c.Shoal(i, {"swarm", "info"}).output, "Is Leader: true")) leader = i;
    }
    ASSERT_GT(leader, 0);
    int other = leader == 1 ? 2 : 1;
    // The tasks on the two surviving nodes: their agents must find the new leader (the
    // dispatcher's manager list), so these tasks are kept, never replaced.
    std::set<std::string> kept;
    for (const Task& t : Tasks(c, "web", other)) {
      if (t.desired == "Running" && t.node != c.Hostname(leader)) kept.insert(t.id);
    }
    ASSERT_EQ(kept.size(), 2u) << c.Shoal(other, {"service", "ps", "web"}).output;
    c.Kill9(leader);
    auto on_other = [&](const std::string& service) {
      std::map<std::string, int> per;
      for (const auto& r : Rows(c.Shoal(other, {"service", "ps", service}).output)) {
        if (r.size() > 5 && r[4] == "Running" && absl::StartsWith(r[5], "Running")) ++per[r[3]];
      }
      return per;
    };
    EXPECT_TRUE(WaitFor(
        [&] {
          for (const auto& r : Rows(c.Shoal(other, {"node", "ls"}).output)) {
            if (r.size() > 2 && r[1] == c.Hostname(leader) && r[2] == "Down") return true;
          }
          return false;
        },
        absl::Seconds(120)))
        << c.Shoal(other, {"node", "ls"}).output << c.Log(other);
    EXPECT_TRUE(WaitFor(
        [&] {
          auto per = on_other("web");
          return Total(per) == 3 && per.count(c.Hostname(leader)) == 0;
        },
        absl::Seconds(120)))
        << c.Shoal(other, {"service", "ps", "web"}).output << c.Log(other);
    EXPECT_TRUE(managers(other, 1, 1)) << c.Shoal(other, {"node", "ls"}).output;
    // The surviving nodes stayed Ready and kept their tasks (the surviving manager that lost
    // the election reconnected its agent to the new leader).
    auto status_of = [&](int i) {
      for (const auto& r : Rows(c.Shoal(other, {"node", "ls"}).output)) {
        if (r.size() > 2 && r[1] == c.Hostname(i)) return r[2];
      }
      return std::string();
    };
    for (int i = 1; i <= 3; ++i) {
      if (i == leader) continue;
      EXPECT_EQ(status_of(i), "Ready") << c.Shoal(other, {"node", "ls"}).output;
    }
    std::set<std::string> still;
    for (const Task& t : Tasks(c, "web", other)) {
      if (t.desired == "Running" && absl::StartsWith(t.current, "Running")) still.insert(t.id);
    }
    for (const std::string& id : kept) {
      EXPECT_TRUE(still.count(id)) << id << " was replaced\n"
                                   << c.Shoal(other, {"service", "ps", "web"}).output;
    }

    // Restarted from its state dir, the old leader rejoins raft as a Reachable manager, its
    // node is Ready again, and its agent (connected to the new leader) stops the orphaned
    // container of the replaced task.
    lab::CommandResult restart = c.Script("start", {std::to_string(leader)});
    ASSERT_TRUE(restart.ok()) << restart.output;
    EXPECT_TRUE(WaitFor([&] { return managers(other, 1, 2); }, absl::Seconds(90)))
        << c.Shoal(other, {"node", "ls"}).output << c.Log(leader);
    EXPECT_TRUE(WaitFor([&] { return status_of(leader) == "Ready"; }, absl::Seconds(90)))
        << c.Shoal(other, {"node", "ls"}).output << c.Log(leader);
    EXPECT_TRUE(WaitFor([&] { return Httpds(c, leader).empty(); }, absl::Seconds(90)))
        << c.Log(leader);

    lab::CommandResult down = c.Down();
    EXPECT_TRUE(down.ok()) << down.output;
  }
  ExpectNothingLeft(prefix);
}

// The first process named `comm` in host i's cgroup parent (0 if none).
pid_t ProcIn(LabCluster& c, int i, const std::string& comm) {
  for (const auto& [pid, name] : ProcsInCgroup(c.CgroupParent(i))) {
    if (name == comm) return pid;
  }
  return 0;
}

// Runs `cmd` inside the container of PID `pid` (its mount, network, uts, ipc and pid
// namespaces: the container's own busybox, /etc/resolv.conf and DNS resolver).
lab::CommandResult InContainer(pid_t pid, const std::string& cmd) {
  return lab::RunIn(-1, absl::StrCat("timeout 20 nsenter -t ", pid, " -m -n -u -i -p ", cmd),
                    std::chrono::seconds(30))
      .value_or(lab::CommandResult{});
}

// Task networking across hosts (the agent's overlay, embedded DNS, VIP load balancing and the
// ingress routing mesh): a client task reaches every replica of a service on other hosts by the
// service's name, and the published port reaches every replica from outside the cluster.
TEST(ClusterE2E, TasksReachAServiceByNameAcrossHosts) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root (network namespaces, containers)";
  const std::string prefix = "clun-";
  {
    LabCluster c(prefix, /*hosts=*/3, /*managers=*/1);
    lab::CommandResult up = c.Up();
    ASSERT_TRUE(up.ok()) << up.output;
    // The ingress network carries published ports (routing mesh), as Docker's `ingress`.
    lab::CommandResult ingress =
        c.Shoal(1, {"network", "create", "--driver", "overlay", "--ingress", "ingress"});
    ASSERT_TRUE(ingress.ok()) << ingress.output;
    lab::CommandResult net = c.Shoal(1, {"network", "create", "--driver", "overlay", "appnet"});
    ASSERT_TRUE(net.ok()) << net.output;
    // The published port declares port 80 of the service (VIP load balancing covers the
    // service's declared ports).
    std::vector<std::string> web = {"service", "create",    "--name", "web",       "--replicas",
                                    "3",       "--network", "appnet", "--publish", "8080:80"};
    web.insert(web.end(), kWebCommand.begin(), kWebCommand.end());
    ASSERT_TRUE(c.Shoal(1, web).ok());
    ASSERT_TRUE(c.Shoal(1, {"service", "create", "--name", "client", "--network", "appnet",
                            "lab-busybox:1", "sleep", "1000"})
                    .ok());
    ASSERT_TRUE(WaitFor(
        [&] {
          return RunningPerNode(c, "web").size() == 3 && Total(RunningPerNode(c, "client")) == 1;
        },
        absl::Seconds(120)))
        << Describe(c) << c.Shoal(1, {"service", "ps", "client"}).output << c.Log(1);
    std::set<std::string> web_ids;
    for (const Task& t : Tasks(c, "web")) {
      if (t.desired == "Running") web_ids.insert(t.id);
    }
    ASSERT_EQ(web_ids.size(), 3u);
    pid_t client = 0;
    for (int i = 1; i <= 3 && client == 0; ++i) client = ProcIn(c, i, "sleep");
    ASSERT_GT(client, 0) << Describe(c);

    // tasks.web resolves to the three task addresses; each answers with its own task id
    // (two of them live on other hosts: over the VXLAN overlay).
    std::set<std::string> task_ips;
    ASSERT_TRUE(WaitFor(
        [&] {
          lab::CommandResult ns = InContainer(client, "/bin/busybox nslookup tasks.web");
          task_ips.clear();
          for (absl::string_view line : absl::StrSplit(ns.output, '\n')) {
            if (absl::ConsumePrefix(&line, "Address: ") && !absl::StrContains(line, ":53")) {
              task_ips.insert(std::string(absl::StripAsciiWhitespace(line)));
            }
          }
          return task_ips.size() == 3;
        },
        absl::Seconds(60)))
        << InContainer(client, "/bin/busybox nslookup tasks.web").output;
    std::set<std::string> by_ip;
    for (const std::string& ip : task_ips) {
      lab::CommandResult get = InContainer(client, "/bin/busybox wget -qO- http://" + ip + "/");
      EXPECT_TRUE(get.ok()) << ip << ": " << get.output;
      by_ip.insert(std::string(absl::StripAsciiWhitespace(get.output)));
    }
    EXPECT_EQ(by_ip, web_ids);

    // `web` is the service's VIP: requests to it are balanced over all three replicas.
    std::set<std::string> by_name;
    EXPECT_TRUE(WaitFor(
        [&] {
          lab::CommandResult get = InContainer(client, "/bin/busybox wget -qO- http://web/");
          if (get.ok()) by_name.insert(std::string(absl::StripAsciiWhitespace(get.output)));
          return by_name == web_ids;
        },
        absl::Seconds(60)))
        << "replicas reached through the VIP: " << by_name.size()
        << InContainer(client, "/bin/busybox wget -qO- http://web/").output;

    // The published port (routing mesh): from the lab's outside host, port 8080 of every lab
    // host answers, and each host's port reaches all three replicas (one runs elsewhere than
    // the host asked, over the ingress overlay).
    for (int i = 1; i <= 3; ++i) {
      std::set<std::string> seen;
      std::string url = absl::StrCat("http://", c.Ip(i), ":8080/");
      EXPECT_TRUE(WaitFor(
          [&] {
            lab::CommandResult get = c.InHost(0, "curl -s -m 5 " + url);
            if (get.ok()) seen.insert(std::string(absl::StripAsciiWhitespace(get.output)));
            return seen == web_ids;
          },
          absl::Seconds(60)))
          << url << " reached " << seen.size() << " replicas; "
          << c.InHost(0, "curl -sS -m 5 " + url).output << c.Log(i);
    }

    lab::CommandResult down = c.Down();
    EXPECT_TRUE(down.ok()) << down.output;
  }
  ExpectNothingLeft(prefix);
}
}  // namespace
}  // namespace shoal::cluster::e2e
