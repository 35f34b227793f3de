#include "tests/e2e/netdrv/overlay_lab.h"

#include <unistd.h>

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "base/status.h"

namespace shoal::netdrv::testing {

absl::StatusOr<std::unique_ptr<OverlayLab>> OverlayLab::Create(const std::string& prefix, int hosts,
                                                               uint32_t underlay_mtu) {
  std::unique_ptr<OverlayLab> o(new OverlayLab());
  o->dir_ = absl::StrCat("/run/", prefix, ::getpid());
  lab::LabOptions opts;
  opts.prefix = prefix;
  opts.hosts = hosts;
  opts.underlay_mtu = underlay_mtu;
  ASSIGN_OR_RETURN(o->lab_, lab::Lab::Create(opts));
  o->container_store_ = std::make_unique<kernel::BindMountNetnsStore>(o->dir_ + "/ctr");
  for (int i = 0; i < hosts; ++i) {
    o->sandbox_stores_.push_back(
        std::make_unique<kernel::BindMountNetnsStore>(absl::StrCat(o->dir_, "/h", i + 1)));
    OverlayConfig c;
    c.node_netns_fd = o->lab_->host(i).netns.get();
    c.vtep = o->lab_->host(i).ip;
    ASSIGN_OR_RETURN(auto d,
                     OverlayDriver::Create(c, o->netlink_, *o->sandbox_stores_.back(), o->random_));
    o->drivers_.push_back(std::move(d));
  }
  return o;
}

OverlayLab::~OverlayLab() {
  drivers_.clear();
  containers_.clear();
  std::vector<kernel::BindMountNetnsStore*> stores;
  if (container_store_) stores.push_back(container_store_.get());
  for (auto& s : sandbox_stores_) stores.push_back(s.get());
  for (auto* s : stores) {
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
  ASSIGN_OR_RETURN(base::UniqueFd fd, container_store_->Create(name));
  EndpointSpec s;
  s.id = name + "-ep";
  s.network_id = network;
  s.netns_fd = fd.get();
  ASSIGN_OR_RETURN(s.address, kernel::IpPrefix::Parse(address));
  auto ep = drivers_.at(host)->CreateEndpoint(s);
  if (!ep.ok()) {
    fd.Reset();
    (void)container_store_->Delete(name);
    return ep.status();
  }
  containers_[name] = std::move(fd);
  endpoints_[network][s.id] = Placed{host, *ep};
  return ep;
}

absl::StatusOr<lab::CommandResult> OverlayLab::RunIn(const std::string& container,
                                                     const std::string& cmd) {
  return lab::RunIn(containers_.at(container).get(), cmd);
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
    out.push_back(Peer{id, p.ep.address.addr, p.ep.mac, lab_->host(p.host).ip});
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
