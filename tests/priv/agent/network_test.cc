// Task networking through the agent: two agents, each with its "host" = a lab host network
// namespace (tests/lab: hosts on one underlay bridge), joined to one in-process manager. A
// service on an overlay network gets a task on each host; everything asserted is what a user of
// the containers observes (ping, wget, nslookup run inside the containers with nsenter) and
// what is left in the kernel afterwards (links in the hosts, sandbox namespaces).

#include <filesystem>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "kernel/netlink/libnl_netlink.h"
#include "manager/ca/tls.h"
#include "tests/lab/lab.h"
#include "tests/priv/agent/fixture.h"

namespace shoal::agent::testing {
namespace {

constexpr char kPrefix[] = "hC1";

class AgentNetworkTest : public AgentTest {
 protected:
  void SetUp() override {
    AgentTest::SetUp();
    if (HasFatalFailure() || IsSkipped()) return;
    lab::LabOptions lo;
    lo.prefix = kPrefix;
    lo.hosts = 2;
    lo.subnet = "192.168.93";
    auto lab = lab::Lab::Create(lo);
    ASSERT_TRUE(lab.ok()) << lab.status();
    lab_ = *std::move(lab);
    auto tokens = manager_->JoinTokens();
    ASSERT_TRUE(tokens.ok()) << tokens.status();
    auto joined = manager::ca::Join(manager_->address(), tokens->first, clock_);
    ASSERT_TRUE(joined.ok()) << joined.status();
    worker2_ = *joined;
  }

  void TearDown() override {
    for (auto& a : agents_) {
      if (a) a->Stop();
    }
    agents_.clear();
    KillContainers(dir_ + "/exec2");  // the second agent's (AgentTest handles the first one's)
    AgentTest::TearDown();
    lab_.reset();
    std::vector<std::string> left = lab::Leftovers(kPrefix);
    EXPECT_TRUE(left.empty()) << absl::StrJoin(left, ", ");
  }

  AgentOptions HostOptions(int host) {
    AgentOptions o = Options();
    if (host == 1) {
      o.state_dir = dir_ + "/agent2";
      o.exec_root = dir_ + "/exec2";
      manager::ca::TlsMaterial tls = worker2_.tls;
      o.dial = [tls](const std::string& addr) {
        return manager::ca::DialManager(addr, manager::ca::ChannelCredentials(tls));
      };
    }
    o.description.set_hostname(absl::StrCat(kPrefix, "-node", host + 1));
    o.node_netns_fd = lab_->host(host).netns.get();
    o.vtep_addr = lab_->host(host).ip.ToString();
    o.dns_upstreams = std::vector<std::string>{};  // nothing leaves the lab
    return o;
  }

  void StartAgents() {
    agents_.resize(2);
    for (int i = 0; i < 2; ++i) StartAgentOn(i);
  }
  void StartAgentOn(int host) {
    auto a = Agent::Start(HostOptions(host));
    ASSERT_TRUE(a.ok()) << a.status();
    agents_[host] = *std::move(a);
    ASSERT_TRUE(WaitFor([&] { return !agents_[host]->status().node_id.empty(); }));
  }

  std::string CreateNetwork(const std::string& name, const std::string& driver = "") {
    api::CreateNetworkRequest req;
    req.mutable_spec()->mutable_annotations()->set_name(name);
    if (!driver.empty()) req.mutable_spec()->mutable_driver_config()->set_name(driver);
    grpc::ClientContext ctx;
    api::CreateNetworkResponse resp;
    grpc::Status s = control_->CreateNetwork(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp.network().id();
  }

  void RemoveService(const std::string& id) {
    grpc::ClientContext ctx;
    api::RemoveServiceRequest req;
    req.set_service_id(id);
    api::RemoveServiceResponse resp;
    grpc::Status s = control_->RemoveService(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
  }

  // A web service: busybox httpd on :80 serving the container's hostname.
  api::Service CreateWeb(const std::string& name, uint64_t replicas, const std::string& net) {
    return CreateService(
        name, replicas,
        {"sh", "-c", "mkdir -p /srv && hostname > /srv/index.html && exec httpd -f -p 80 -h /srv"},
        [&](api::ServiceSpec& spec) {
          spec.mutable_task()->add_networks()->set_target(net);
          auto* p = spec.mutable_endpoint()->add_ports();
          p->set_target_port(80);
          p->set_publish_mode(api::PortConfig::PUBLISH_MODE_HOST);
        });
  }

  // Runs `cmd` inside the running container of `task` (all its namespaces, its root).
  lab::CommandResult Exec(const api::Task& task, const std::string& cmd) {
    std::string line = absl::StrCat("nsenter -t ", task.status().container().pid(),
                                    " -m -u -i -n -p -r -w /bin/sh -c '", cmd, "' 2>&1");
    auto r = lab_->Run(0, line);
    if (!r.ok()) return lab::CommandResult{-1, std::string(r.status().message())};
    return *r;
  }

  // One HTTP GET to <host>:80 printing the body's last line (busybox nc: Debian's static
  // busybox wget segfaults).
  static std::string Get(const std::string& host) {
    return absl::StrCat("printf \"GET / HTTP/1.0\\r\\n\\r\\n\" | nc -w 3 ", host,
                        " 80 | tail -n 1 | grep .");
  }
  static std::string Ip(const api::Task& t) {
    const std::string& cidr = t.networks(0).addresses(0);
    return cidr.substr(0, cidr.find('/'));
  }
  static std::string Hostname(const api::Task& t) { return t.id().substr(0, 12); }

  // Links in a lab host besides its lo and eth0 (VXLAN devices, stray veths).
  std::vector<std::string> ExtraLinks(int host) {
    std::vector<std::string> out;
    kernel::LibnlNetlinkFactory f;
    auto nl = f.Open(lab_->host(host).netns.get());
    if (!nl.ok()) return {"netlink: " + std::string(nl.status().message())};
    auto links = (*nl)->ListLinks();
    if (!links.ok()) return {"links: " + std::string(links.status().message())};
    for (const auto& l : *links) {
      if (l.name != "lo" && l.name != "eth0") out.push_back(l.name);
    }
    return out;
  }
  // Sandbox namespaces the agents keep under <exec_root>/netns.
  std::vector<std::string> Sandboxes() {
    std::vector<std::string> out;
    for (const char* exec : {"/exec/netns", "/exec2/netns"}) {
      std::error_code ec;
      for (const auto& e : std::filesystem::directory_iterator(dir_ + exec, ec)) {
        out.push_back(e.path().string());
      }
    }
    return out;
  }

  // Waits until `svc` has a running task on each host.
  bool AwaitOnePerHost(const std::string& svc) {
    return WaitFor(
        [&] {
          auto t = OnePerHost(svc);
          return !t[0].id().empty() && !t[1].id().empty();
        },
        absl::Seconds(60));
  }

  // Two running tasks of `svc`, one on each host (in host order).
  std::vector<api::Task> OnePerHost(const std::string& svc) {
    std::vector<api::Task> out(2);
    for (const auto& t : RunningTasks(svc)) {
      for (int i = 0; i < 2; ++i) {
        if (t.node_id() == agents_[i]->status().node_id) out[i] = t;
      }
    }
    return out;
  }

  std::unique_ptr<lab::Lab> lab_;
  manager::ca::JoinResult worker2_;
  std::vector<std::unique_ptr<Agent>> agents_;
};

TEST_F(AgentNetworkTest, TasksOnTwoHostsReachEachOtherByIpNameAndVipAndNothingIsLeft) {
  StartAgents();
  std::string net = CreateNetwork("hc1net");
  ASSERT_FALSE(net.empty());
  api::Service web = CreateWeb("web", 2, net);
  ASSERT_TRUE(AwaitOnePerHost(web.id()))
      << "no running task on each host; running: " << RunningTasks(web.id()).size();
  std::vector<api::Task> t = OnePerHost(web.id());
  const std::string ip0 = Ip(t[0]), ip1 = Ip(t[1]);

  // By IP across the hosts (VXLAN through the lab underlay), both directions.
  lab::CommandResult r = Exec(t[0], "ping -c 1 -W 5 " + ip1);
  EXPECT_TRUE(r.ok()) << r.output;
  r = Exec(t[1], "ping -c 1 -W 5 " + ip0);
  EXPECT_TRUE(r.ok()) << r.output;
  r = Exec(t[0], Get(ip1));
  EXPECT_TRUE(r.ok()) << r.output;
  EXPECT_EQ(r.output, Hostname(t[1]) + "\n");
  // The default route goes via the network's gateway; resolv.conf names the embedded resolver.
  r = Exec(t[0], "ip route show default; cat /etc/resolv.conf");
  EXPECT_TRUE(absl::StrContains(r.output, "default via ")) << r.output;
  EXPECT_TRUE(absl::StrContains(r.output, "nameserver 127.0.0.11")) << r.output;

  // DNS: tasks.web -> both task IPs; web -> the VIP (not a task IP).
  EXPECT_TRUE(WaitFor([&] {
    r = Exec(t[0], "nslookup tasks.web");
    return absl::StrContains(r.output, ip0) && absl::StrContains(r.output, ip1);
  })) << r.output;
  r = Exec(t[1], "nslookup web");
  EXPECT_TRUE(r.ok()) << r.output;
  EXPECT_FALSE(absl::StrContains(r.output, ip0) || absl::StrContains(r.output, ip1)) << r.output;
  // Names work for the containers' own tools (ping resolves through the libc resolver).
  r = Exec(t[0], "ping -c 1 -W 5 tasks.web");
  EXPECT_TRUE(r.ok()) << r.output;
  // The task's own network-qualified name works too.
  r = Exec(t[1], "nslookup tasks.web.hc1net");
  EXPECT_TRUE(absl::StrContains(r.output, ip0)) << r.output;

  // The VIP by service name reaches both backends (from each host).
  for (int from = 0; from < 2; ++from) {
    std::set<std::string> seen;
    EXPECT_TRUE(WaitFor(
        [&] {
          r = Exec(t[from], Get("web"));
          if (r.ok()) seen.insert(r.output);
          return seen.size() == 2;
        },
        absl::Seconds(60)))
        << "from host " << from << ": backends seen " << seen.size() << "; last: " << r.output;
    EXPECT_TRUE(seen.count(Hostname(t[0]) + "\n") && seen.count(Hostname(t[1]) + "\n"));
  }
  // A name nobody knows: an answer, not a hang (no upstreams in the lab).
  r = Exec(t[0], "nslookup nosuchname.example");
  EXPECT_FALSE(r.ok()) << r.output;

  RemoveService(web.id());
  ASSERT_TRUE(WaitFor([&] { return ContainerCgroups().empty(); }, absl::Seconds(60)))
      << ContainerCgroups().size() << " containers left";
  EXPECT_TRUE(WaitFor([&] { return ExtraLinks(0).empty() && ExtraLinks(1).empty(); }))
      << "links left in the hosts: " << absl::StrJoin(ExtraLinks(0), ",") << " / "
      << absl::StrJoin(ExtraLinks(1), ",");
  EXPECT_TRUE(WaitFor([&] { return Sandboxes().empty(); }))
      << "sandboxes left: " << absl::StrJoin(Sandboxes(), ",");
}

TEST_F(AgentNetworkTest, RestartedAgentKeepsTheEndpointsAndServesDnsAndVipAgain) {
  StartAgents();
  std::string net = CreateNetwork("hc1net");
  api::Service web = CreateWeb("web", 2, net);
  ASSERT_TRUE(AwaitOnePerHost(web.id()));
  std::vector<api::Task> t = OnePerHost(web.id());
  const std::string ip0 = Ip(t[0]), ip1 = Ip(t[1]);
  lab::CommandResult r = Exec(t[0], "ping -c 1 -W 5 " + ip1);
  ASSERT_TRUE(r.ok()) << r.output;

  // Host 0's agent goes away: its container keeps its interface and reaches the other host.
  agents_[0]->Stop();
  agents_[0].reset();
  r = Exec(t[0], "ping -c 1 -W 5 " + ip1);
  EXPECT_TRUE(r.ok()) << "while the agent is down: " << r.output;
  r = Exec(t[1], Get(ip0));
  EXPECT_EQ(r.output, Hostname(t[0]) + "\n");

  StartAgentOn(0);
  ASSERT_TRUE(WaitFor([&] {
    auto st = agents_[0]->status();
    auto it = st.tasks.find(t[0].id());
    return it != st.tasks.end() && it->second == api::TASK_STATE_RUNNING;
  })) << "the restarted agent did not adopt task "
      << t[0].id();
  std::vector<api::Task> after = OnePerHost(web.id());
  EXPECT_EQ(after[0].id(), t[0].id());
  EXPECT_EQ(after[0].status().container().pid(), t[0].status().container().pid());
  // The same interface (no second one), DNS and the VIP work again from the adopted container.
  r = Exec(t[0], "ip -o link show | wc -l");
  EXPECT_EQ(r.output, "2\n") << "lo and eth0 only";
  r = Exec(t[0], "ip -o -4 addr show eth0");
  EXPECT_TRUE(absl::StrContains(r.output, " " + ip0 + "/")) << r.output;
  EXPECT_TRUE(WaitFor([&] {
    r = Exec(t[0], "nslookup tasks.web");
    return absl::StrContains(r.output, ip0) && absl::StrContains(r.output, ip1);
  })) << r.output;
  std::set<std::string> seen;
  EXPECT_TRUE(WaitFor([&] {
    r = Exec(t[0], Get("web"));
    if (r.ok()) seen.insert(r.output);
    return seen.size() == 2;
  })) << "backends seen "
      << seen.size() << "; last: " << r.output;
  r = Exec(t[1], "ping -c 1 -W 5 " + ip0);
  EXPECT_TRUE(r.ok()) << r.output;

  RemoveService(web.id());
  ASSERT_TRUE(WaitFor([&] { return ContainerCgroups().empty(); }, absl::Seconds(60)));
  EXPECT_TRUE(WaitFor([&] { return ExtraLinks(0).empty() && ExtraLinks(1).empty(); }))
      << absl::StrJoin(ExtraLinks(0), ",") << " / " << absl::StrJoin(ExtraLinks(1), ",");
  EXPECT_TRUE(WaitFor([&] { return Sandboxes().empty(); })) << absl::StrJoin(Sandboxes(), ",");
}

TEST_F(AgentNetworkTest, UnsupportedDriverRejectsTheTaskNamingItAndLeavesNothingHalfBuilt) {
  StartAgents();
  std::string net = CreateNetwork("hc1mv", "macvlan");
  ASSERT_FALSE(net.empty());
  // The overlay network first: its endpoint and sandbox are built, then the second fails.
  std::string overlay = CreateNetwork("hc1net");
  api::Service svc = CreateService("mv", 1, {"sleep", "1000"}, [&](api::ServiceSpec& spec) {
    spec.mutable_task()->add_networks()->set_target(overlay);
    spec.mutable_task()->add_networks()->set_target(net);
  });
  std::string err;
  ASSERT_TRUE(WaitFor([&] {
    for (const auto& task : Tasks(svc.id())) {
      if (task.status().state() == api::TASK_STATE_REJECTED) err = task.status().err();
    }
    return !err.empty();
  })) << "no task was rejected";
  EXPECT_TRUE(absl::StrContains(err, "hc1mv") && absl::StrContains(err, "\"macvlan\"")) << err;
  RemoveService(svc.id());
  EXPECT_TRUE(WaitFor([&] { return ContainerCgroups().empty(); }));
  // The overlay network goes once the rejected task's endpoint leaves the assignment.
  EXPECT_TRUE(WaitFor([&] { return Sandboxes().empty(); })) << absl::StrJoin(Sandboxes(), ",");
  EXPECT_TRUE(ExtraLinks(0).empty() && ExtraLinks(1).empty());
}

TEST_F(AgentNetworkTest, ScalingDownUpdatesDnsAndTheVipOfAClientOnTheNetwork) {
  StartAgents();
  std::string net = CreateNetwork("hc1net");
  api::Service web = CreateWeb("web", 2, net);
  ASSERT_TRUE(AwaitOnePerHost(web.id()));
  // A client on host 0 (its own service on the same network) watches the web service.
  api::Service client = CreateService("client", 1, {"sleep", "1000"}, [&](api::ServiceSpec& s) {
    s.mutable_task()->add_networks()->set_target(net);
    s.mutable_task()->mutable_placement()->add_constraints(
        absl::StrCat("node.hostname==", kPrefix, "-node1"));
  });
  ASSERT_TRUE(WaitFor([&] { return RunningTasks(client.id()).size() == 1; }, absl::Seconds(60)));
  api::Task c = RunningTasks(client.id())[0];
  ASSERT_EQ(c.node_id(), agents_[0]->status().node_id);

  std::vector<api::Task> before = OnePerHost(web.id());
  Scale(web.id(), 1);
  std::vector<api::Task> left;
  ASSERT_TRUE(WaitFor([&] {
    left = Tasks(web.id());
    return left.size() == 1 && left[0].status().state() == api::TASK_STATE_RUNNING;
  })) << "web did not scale to 1";
  const std::string ip = Ip(left[0]);
  lab::CommandResult r;
  const std::string gone = Ip(before[0]) == ip ? Ip(before[1]) : Ip(before[0]);
  EXPECT_TRUE(WaitFor([&] {
    r = Exec(c, "nslookup tasks.web");
    return r.ok() && absl::StrContains(r.output, ip) && !absl::StrContains(r.output, gone);
  })) << r.output;
  // Every request through the VIP reaches the remaining task.
  for (int i = 0; i < 5; ++i) {
    r = Exec(c, Get("web"));
    EXPECT_EQ(r.output, Hostname(left[0]) + "\n");
  }

  RemoveService(client.id());
  RemoveService(web.id());
  ASSERT_TRUE(WaitFor([&] { return ContainerCgroups().empty(); }, absl::Seconds(60)));
  EXPECT_TRUE(WaitFor([&] { return Sandboxes().empty(); })) << absl::StrJoin(Sandboxes(), ",");
}

TEST_F(AgentNetworkTest, PublishedPortAnswersOnEveryHostAndReachesAllTasks) {
  StartAgents();
  api::CreateNetworkRequest ireq;
  ireq.mutable_spec()->mutable_annotations()->set_name("ingress");
  ireq.mutable_spec()->set_ingress(true);
  api::CreateNetworkResponse iresp;
  {
    grpc::ClientContext ctx;
    grpc::Status s = control_->CreateNetwork(&ctx, ireq, &iresp);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  std::string net = CreateNetwork("hc1net");
  api::Service web = CreateService(
      "web", 2,
      {"sh", "-c", "mkdir -p /srv && hostname > /srv/index.html && exec httpd -f -p 80 -h /srv"},
      [&](api::ServiceSpec& spec) {
        spec.mutable_task()->add_networks()->set_target(net);
        auto* p = spec.mutable_endpoint()->add_ports();
        p->set_target_port(80);
        p->set_published_port(30080);
      });
  ASSERT_TRUE(AwaitOnePerHost(web.id()));
  std::vector<api::Task> t = OnePerHost(web.id());
  const std::set<std::string> want = {Hostname(t[0]), Hostname(t[1])};
  // From each host, to its own address and to the other host's: every task answers.
  for (int from = 0; from < 2; ++from) {
    for (int to = 0; to < 2; ++to) {
      std::string url = absl::StrCat("http://", lab_->host(to).ip.ToString(), ":30080/");
      std::set<std::string> seen;
      std::string last;
      EXPECT_TRUE(WaitFor(
          [&] {
            auto r = lab_->Run(from, "curl -s -m 3 " + url);
            if (r.ok()) {
              last = r->output;
              if (r->ok()) seen.insert(std::string(absl::StripAsciiWhitespace(r->output)));
            }
            return seen == want;
          },
          absl::Seconds(60)))
          << "host " << from << " -> " << url << ": seen " << absl::StrJoin(seen, ",")
          << "; last: " << last;
    }
  }

  // One task left: the host without a task still answers, through the other host's task.
  Scale(web.id(), 1);
  std::vector<api::Task> left;
  ASSERT_TRUE(WaitFor([&] {
    left = Tasks(web.id());
    return left.size() == 1 && left[0].status().state() == api::TASK_STATE_RUNNING;
  })) << "web did not scale to 1";
  for (int to = 0; to < 2; ++to) {
    std::string url = absl::StrCat("http://", lab_->host(to).ip.ToString(), ":30080/");
    std::string out;
    EXPECT_TRUE(WaitFor([&] {
      auto r = lab_->Run(1 - to, "curl -s -m 3 " + url);
      out = r.ok() ? r->output : std::string(r.status().message());
      return out == Hostname(left[0]) + "\n";
    })) << url
        << ": " << out;
  }

  RemoveService(web.id());
  for (const std::string& id : {net, iresp.network().id()}) {
    EXPECT_TRUE(WaitFor([&] {
      grpc::ClientContext ctx;
      api::RemoveNetworkRequest req;
      req.set_network_id(id);
      api::RemoveNetworkResponse resp;
      return control_->RemoveNetwork(&ctx, req, &resp).ok();
    })) << "network "
        << id << " not removed";
  }
  ASSERT_TRUE(WaitFor([&] { return ContainerCgroups().empty(); }, absl::Seconds(60)));
  EXPECT_TRUE(WaitFor([&] { return ExtraLinks(0).empty() && ExtraLinks(1).empty(); }))
      << absl::StrJoin(ExtraLinks(0), ",") << " / " << absl::StrJoin(ExtraLinks(1), ",");
  EXPECT_TRUE(WaitFor([&] { return Sandboxes().empty(); })) << absl::StrJoin(Sandboxes(), ",");
  for (int h = 0; h < 2; ++h) {
    auto r = lab_->Run(h, "nft list tables");
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->output, "") << "host " << h << " keeps nft tables";
  }
}

}  // namespace
}  // namespace shoal::agent::testing
