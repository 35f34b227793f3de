#include "tests/e2e/dns/dns_lab.h"

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "absl/strings/str_cat.h"
#include "base/file.h"
#include "base/status.h"
#include "dns/container_dns.h"
#include "kernel/nft/netlink_nft.h"

namespace shoal::dns::e2e {
namespace {

constexpr char kOverlayId[] = "fronta000001";
constexpr char kGwId[] = "gwbridge";

absl::Status RunOk(int netns_fd, const std::string& cmd) {
  ASSIGN_OR_RETURN(lab::CommandResult r, lab::RunIn(netns_fd, cmd));
  if (!r.ok()) {
    return absl::InternalError(absl::StrCat("`", cmd, "` exited ", r.exit_code, ": ", r.output));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<DnsLab>> DnsLab::Create() {
  std::unique_ptr<DnsLab> l(new DnsLab());
  RETURN_IF_ERROR(l->Build());
  return l;
}

absl::Status DnsLab::Build() {
  dir_ = absl::StrCat("/run/shdn-", ::getpid());
  std::filesystem::create_directories(dir_);
  RETURN_IF_ERROR(
      base::WriteFileAtomic(dir_ + "/resolv.conf", "nameserver 127.0.0.11\noptions ndots:0\n"));
  lab::LabOptions opts;
  opts.prefix = "shdn-";
  opts.hosts = 3;
  opts.outside = true;
  ASSIGN_OR_RETURN(lab_, lab::Lab::Create(opts));

  for (int i = 0; i < lab_->size(); ++i) {
    Node n;
    int fd = lab_->host(i).netns.get();
    n.sandboxes = std::make_unique<kernel::BindMountNetnsStore>(absl::StrCat(dir_, "/h", i + 1));
    netdrv::OverlayConfig oc;
    oc.node_netns_fd = fd;
    oc.vtep = lab_->host(i).ip;
    ASSIGN_OR_RETURN(n.overlay, netdrv::OverlayDriver::Create(oc, netlink_, *n.sandboxes, random_));
    netdrv::NetworkSpec front;
    front.id = kOverlayId;
    front.vni = 4242;
    ASSIGN_OR_RETURN(front.subnet, kernel::IpPrefix::Parse("10.10.1.0/24"));
    ASSIGN_OR_RETURN(front.gateway, kernel::IpAddr::Parse("10.10.1.1"));
    RETURN_IF_ERROR(n.overlay->CreateNetwork(front));

    ASSIGN_OR_RETURN(n.nft, kernel::nft::OpenNft(fd));
    netdrv::BridgeConfig bc;
    bc.node_netns_fd = fd;
    ASSIGN_OR_RETURN(n.gw, netdrv::BridgeDriver::Create(bc, netlink_, *n.nft, random_));
    netdrv::NetworkSpec gw;
    gw.id = kGwId;
    ASSIGN_OR_RETURN(gw.subnet, kernel::IpPrefix::Parse("172.18.0.0/16"));
    ASSIGN_OR_RETURN(gw.gateway, kernel::IpAddr::Parse("172.18.0.1"));
    RETURN_IF_ERROR(n.gw->CreateNetwork(gw));

    n.table = std::make_unique<RecordTable>();
    ResolverOptions ro;
    ro.upstream_timeout = std::chrono::milliseconds(1500);
    ASSIGN_OR_RETURN(n.resolver, Resolver::Start(n.table.get(), ro));
    nodes_.push_back(std::move(n));
  }

  int out = lab_->outside()->netns.get();
  RETURN_IF_ERROR(RunOk(out, "ip link set lo up"));
  ASSIGN_OR_RETURN(
      dnsmasq_,
      lab::Spawn(out,
                 absl::StrCat("exec dnsmasq --keep-in-foreground --no-resolv --no-hosts "
                              "--bind-interfaces --listen-address=",
                              kUpstream,
                              " --address=/external.test/192.0.2.10 "
                              "--address=/external.test/2001:db8::10 --local=/test/ --pid-file= "
                              "--user=root --log-queries --log-facility=",
                              dir_, "/dnsmasq.log")));
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (true) {
    auto r =
        lab::RunIn(out, absl::StrCat("dig +short +time=1 +tries=1 @", kUpstream, " external.test"));
    if (r.ok() && r->output.find("192.0.2.10") != std::string::npos) break;
    if (std::chrono::steady_clock::now() > deadline) {
      return absl::DeadlineExceededError("dnsmasq on the outside host did not answer");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // dnsmasq starting
  }
  ASSIGN_OR_RETURN(containers_, lab::ContainerLab::Create("shdn-"));
  return absl::OkStatus();
}

DnsLab::~DnsLab() {
  for (Node& n : nodes_) n.resolver.reset();  // closes every socket in container namespaces
  dnsmasq_.reset();
  containers_.reset();
  for (Node& n : nodes_) {
    n.gw.reset();
    n.nft.reset();
    n.overlay.reset();
    if (!n.sandboxes) continue;
    auto names = n.sandboxes->List();
    if (names.ok()) {
      for (const auto& name : *names) (void)n.sandboxes->Delete(name);
    }
  }
  nodes_.clear();
  lab_.reset();
  std::error_code ec;
  if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
}

absl::StatusOr<lab::LabContainer*> DnsLab::AddContainer(int host, const std::string& name,
                                                        const std::string& ip, bool egress) {
  Node& node = nodes_.at(host);
  auto attach = [&](int fd) -> absl::Status {
    // Binding 127.0.0.11 needs lo up (the 127/8 local route exists only then).
    RETURN_IF_ERROR(RunOk(fd, "ip link set lo up"));
    netdrv::EndpointSpec ov;
    ov.id = name + "-ov";
    ov.network_id = kOverlayId;
    ov.netns_fd = fd;
    ASSIGN_OR_RETURN(ov.address, kernel::IpPrefix::Parse(ip + "/24"));
    ASSIGN_OR_RETURN(netdrv::Endpoint ep, node.overlay->CreateEndpoint(ov));
    endpoints_[ov.id] = Placed{host, ep};
    if (egress) {
      netdrv::EndpointSpec gw;
      gw.id = name + "-gw";
      gw.network_id = kGwId;
      gw.netns_fd = fd;
      gw.ifname = "eth1";
      gw.default_route = true;
      ASSIGN_OR_RETURN(gw.address, kernel::IpPrefix::Parse(
                                       absl::StrCat("172.18.0.", 2 + endpoints_.size(), "/16")));
      RETURN_IF_ERROR(node.gw->CreateEndpoint(gw).status());
    }
    // DNS is served before the container's process runs (no start-up race, moby#34596), as
    // the agent does it: endpoint in the container's namespace + its :53 DNAT.
    dns::EndpointSpec d;
    d.id = name;
    d.netns_fd = fd;
    d.networks = {kNetwork};
    d.upstreams = {kUpstream};
    ASSIGN_OR_RETURN(auto nft, kernel::nft::OpenNft(fd));
    return ServeContainer(*node.resolver, *nft, d).status();
  };
  lab::ContainerOptions opts;
  std::string resolv = dir_ + "/resolv.conf";
  opts.customize = [resolv](runtime::ContainerSpec& spec) {
    spec.mounts.push_back({"/etc/resolv.conf", "bind", resolv, {"ro"}});
  };
  ASSIGN_OR_RETURN(lab::LabContainer * c, containers_->Run(name, attach, opts));
  RETURN_IF_ERROR(SyncPeers());
  return c;
}

absl::Status DnsLab::SyncPeers() {
  std::vector<netdrv::Peer> peers;
  for (const auto& [id, p] : endpoints_) {
    peers.push_back(netdrv::Peer{id, p.ep.address.addr, p.ep.mac, lab_->host(p.host).ip});
  }
  for (Node& n : nodes_) RETURN_IF_ERROR(n.overlay->SetPeers(kOverlayId, peers));
  return absl::OkStatus();
}

absl::Status DnsLab::SetService(const ServiceRecord& service) {
  for (Node& n : nodes_) RETURN_IF_ERROR(n.table->SetService(kNetwork, service));
  return absl::OkStatus();
}

absl::Status DnsLab::SetTask(const TaskRecord& task) {
  for (Node& n : nodes_) RETURN_IF_ERROR(n.table->SetTask(kNetwork, task));
  return absl::OkStatus();
}

absl::Status DnsLab::RemoveTask(const std::string& id) {
  for (Node& n : nodes_) RETURN_IF_ERROR(n.table->RemoveTask(kNetwork, id));
  return absl::OkStatus();
}

absl::StatusOr<lab::CommandResult> DnsLab::InNetns(const std::string& container,
                                                   const std::string& cmd) {
  return lab::RunIn(containers_->at(container).netns_fd(), cmd);
}

std::string DnsLab::dnsmasq_log() const {
  auto s = base::ReadFile(dir_ + "/dnsmasq.log");
  return s.ok() ? *s : s.status().ToString();
}

}  // namespace shoal::dns::e2e
