#include "tests/e2e/netdrv/overlay_lab.h"

#include <unistd.h>

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "base/status.h"

namespace shoal::netdrv::testing {

absl::StatusOr<std::unique_ptr<OverlayLab>> OverlayLab::Create(const OverlayLabOptions& options) {
  std::unique_ptr<OverlayLab> o(new OverlayLab());
  o->dir_ = absl::StrCat("/run/", options.prefix, ::getpid());
  lab::LabOptions opts;
  opts.prefix = options.prefix;
  opts.hosts = options.hosts;
  opts.underlay_mtu = options.underlay_mtu;
  opts.ipv6 = options.ipv6_underlay;
  ASSIGN_OR_RETURN(o->lab_, lab::Lab::Create(opts));
  ASSIGN_OR_RETURN(o->containers_, lab::ContainerLab::Create(options.prefix));
  for (int i = 0; i < options.hosts; ++i) {
    o->sandbox_stores_.push_back(
        std::make_unique<kernel::BindMountNetnsStore>(absl::StrCat(o->dir_, "/h", i + 1)));
    OverlayConfig c;
    c.node_netns_fd = o->lab_->host(i).netns.get();
    c.vxlan_port = options.vxlan_port;
    c.vtep = options.ipv6_underlay ? o->lab_->host(i).ip6 : o->lab_->host(i).ip;
    o->vteps_.push_back(c.vtep);
    ASSIGN_OR_RETURN(auto d,
                     OverlayDriver::Create(c, o->netlink_, *o->sandbox_stores_.back(), o->random_));
    o->drivers_.push_back(std::move(d));
  }
  return o;
}

OverlayLab::~OverlayLab() {
  containers_.reset();  // kills the containers; their namespaces (and eth0 veths) go with them
  drivers_.clear();
  for (auto& s : sandbox_stores_) {
    auto names = s->List();
    if (names.ok()) {
      for (const auto& n : *names) (void)s->Delete(n);
    }
  }
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);  // only empty dirs are left at this point
  lab_.reset();
}

absl::StatusOr<Endpoint> OverlayLab::AddContainer(int host, const std::string& name,
                                                  const std::string& network,
                                                  const std::string& address) {
  EndpointSpec s;
  s.id = name + "-ep";
  s.network_id = network;
  ASSIGN_OR_RETURN(s.address, kernel::IpPrefix::Parse(address));
  Endpoint ep;
  OverlayDriver& d = *drivers_.at(host);
  auto c = containers_->Run(name, [&](int netns_fd) -> absl::Status {
    s.netns_fd = netns_fd;
    ASSIGN_OR_RETURN(ep, d.CreateEndpoint(s));
    return absl::OkStatus();
  });
  if (!c.ok()) {
    if (!ep.id.empty()) (void)d.DeleteEndpoint(network, s.id);  // start failed after attach
    return c.status();
  }
  endpoints_[network][s.id] = Placed{host, ep};
  return ep;
}

absl::StatusOr<lab::CommandResult> OverlayLab::Exec(const std::string& container,
                                                    const std::string& cmd) {
  return containers_->at(container).Exec(cmd);
}

absl::StatusOr<lab::CommandResult> OverlayLab::RunInSandbox(int host, const std::string& network,
                                                            const std::string& cmd) {
  ASSIGN_OR_RETURN(int fd, drivers_.at(host)->SandboxFd(network));
  return lab::RunIn(fd, cmd);
}

std::vector<Peer> OverlayLab::PeersOf(const std::string& network) const {
  std::vector<Peer> out;
  auto it = endpoints_.find(network);
  if (it == endpoints_.end()) return out;
  for (const auto& [id, p] : it->second) {
    out.push_back(Peer{id, p.ep.address.addr, p.ep.mac, vteps_.at(p.host)});
  }
  return out;
}

void OverlayLab::ForgetPeer(const std::string& network, const std::string& endpoint_id) {
  endpoints_[network].erase(endpoint_id);
}

absl::Status OverlayLab::SyncPeers(const std::string& network) {
  std::vector<Peer> peers = PeersOf(network);
  for (auto& d : drivers_) {
    if (d->SandboxFd(network).ok()) RETURN_IF_ERROR(d->SetPeers(network, peers));
  }
  return absl::OkStatus();
}

}  // namespace shoal::netdrv::testing
