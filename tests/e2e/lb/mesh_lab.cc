#include "tests/e2e/lb/mesh_lab.h"

#include <unistd.h>

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "base/status.h"
#include "kernel/nft/netlink_nft.h"

namespace shoal::lb::testing {
namespace {

netdrv::NetworkSpec Net(const std::string& id, const char* subnet, const char* gw, uint32_t vni) {
  netdrv::NetworkSpec s;
  s.id = id;
  s.subnet = *kernel::IpPrefix::Parse(subnet);
  s.gateway = *kernel::IpAddr::Parse(gw);
  s.vni = vni;
  return s;
}

}  // namespace

absl::StatusOr<std::unique_ptr<MeshLab>> MeshLab::Create(const std::string& prefix, int hosts) {
  std::unique_ptr<MeshLab> m(new MeshLab());
  m->dir_ = absl::StrCat("/run/", prefix, ::getpid());
  lab::LabOptions opts;
  opts.prefix = prefix;
  opts.hosts = hosts;
  opts.outside = true;
  ASSIGN_OR_RETURN(m->lab_, lab::Lab::Create(opts));
  std::filesystem::create_directories(m->dir_);
  ASSIGN_OR_RETURN(m->containers_, lab::ContainerLab::Create(prefix));
  for (int i = 0; i < hosts; ++i) {
    Host h;
    int node = m->lab_->host(i).netns.get();
    h.store = std::make_unique<kernel::BindMountNetnsStore>(absl::StrCat(m->dir_, "/h", i + 1));
    netdrv::OverlayConfig oc;
    oc.node_netns_fd = node;
    oc.vtep = m->lab_->host(i).ip;
    ASSIGN_OR_RETURN(h.overlay,
                     netdrv::OverlayDriver::Create(oc, m->netlink_, *h.store, m->random_));
    ASSIGN_OR_RETURN(h.nft, kernel::nft::OpenNft(node));
    netdrv::BridgeConfig bc;
    bc.node_netns_fd = node;
    ASSIGN_OR_RETURN(h.bridge, netdrv::BridgeDriver::Create(bc, m->netlink_, *h.nft, m->random_));
    RETURN_IF_ERROR(h.overlay->CreateNetwork(Net(kApp, "10.20.1.0/24", "10.20.1.1", 4101)));
    RETURN_IF_ERROR(h.overlay->CreateNetwork(Net(kIngress, "10.255.0.0/24", "10.255.0.1", 4100)));
    RETURN_IF_ERROR(h.bridge->CreateNetwork(Net(kGw, "172.18.0.0/16", "172.18.0.1", 0)));
    MeshConfig mc;
    mc.node_netns_fd = node;
    mc.deps = RealSandboxDeps(h.store.get(), &m->netlink_);
    mc.overlay = h.overlay.get();
    mc.gateway = h.bridge.get();
    mc.gateway_network_id = kGw;
    mc.node_nft = h.nft.get();
    m->hosts_.push_back(std::move(h));
    ASSIGN_OR_RETURN(auto mesh, Mesh::Create(mc));
    m->meshes_.push_back(std::move(mesh));
    Mesh& mesh_ref = *m->meshes_.back();
    RETURN_IF_ERROR(mesh_ref.AddNetwork(
        {kApp, *kernel::IpPrefix::Parse(absl::StrCat("10.20.1.20", i + 1, "/24"))}));
    RETURN_IF_ERROR(mesh_ref.EnableIngress(
        {kIngress, *kernel::IpPrefix::Parse(absl::StrCat("10.255.0.20", i + 1, "/24")),
         *kernel::IpPrefix::Parse("172.18.0.2/16")}));
    std::string at = absl::StrCat("@", i + 1);
    m->endpoints_[kApp]["lb-app" + at] = {i, mesh_ref.sandbox(kApp)->endpoints().at(0)};
    m->endpoints_[kIngress]["ingress-sbox" + at] = {i,
                                                    mesh_ref.ingress_sandbox()->endpoints().at(0)};
  }
  RETURN_IF_ERROR(m->SyncPeers());
  return m;
}

MeshLab::~MeshLab() {
  for (auto& [name, c] : placed_) {
    c.procs.clear();
    DeleteEndpoints(c);
  }
  placed_.clear();
  containers_.reset();  // their namespaces (and the veth ends in them) go with them
  for (auto& mesh : meshes_) (void)mesh->Destroy();
  meshes_.clear();
  for (Host& h : hosts_) {
    if (h.bridge) (void)h.bridge->DeleteNetwork(kGw);
    if (h.overlay) {
      (void)h.overlay->DeleteNetwork(kApp);
      (void)h.overlay->DeleteNetwork(kIngress);
    }
  }
  for (Host& h : hosts_) {
    if (!h.store) continue;
    auto names = h.store->List();
    if (names.ok()) {
      for (const auto& n : *names) (void)h.store->Delete(n);
    }
  }
  hosts_.clear();
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
  lab_.reset();
}

void MeshLab::DeleteEndpoints(Container& c) {
  for (auto& [net, id] : c.endpoints) {
    if (net == kGw) {
      (void)hosts_[c.host].bridge->DeleteEndpoint(net, id);
    } else {
      (void)hosts_[c.host].overlay->DeleteEndpoint(net, id);
      endpoints_[net].erase(id);
    }
  }
  c.endpoints.clear();
}

absl::Status MeshLab::Attach(int host, int netns_fd, Container& c, const std::string& name,
                             const std::string& net, const std::string& ifname,
                             const std::string& ip, bool default_route) {
  netdrv::EndpointSpec s;
  s.id = absl::StrCat(name, "-", ifname);
  s.network_id = net;
  s.netns_fd = netns_fd;
  s.ifname = ifname;
  s.default_route = default_route;
  ASSIGN_OR_RETURN(s.address, kernel::IpPrefix::Parse(ip));
  netdrv::Driver& d = net == kGw ? static_cast<netdrv::Driver&>(*hosts_[host].bridge)
                                 : static_cast<netdrv::Driver&>(*hosts_[host].overlay);
  ASSIGN_OR_RETURN(netdrv::Endpoint ep, d.CreateEndpoint(s));
  c.endpoints.push_back({net, s.id});
  if (net != kGw) endpoints_[net][s.id] = {host, ep};
  return absl::OkStatus();
}

absl::Status MeshLab::AddContainer(int host, const std::string& name, const std::string& app_ip,
                                   const std::string& ingress_ip, const std::string& gw_ip) {
  Container& c = placed_[name];
  c.host = host;
  auto run = containers_->Run(name, [&](int fd) -> absl::Status {
    RETURN_IF_ERROR(Attach(host, fd, c, name, kApp, "eth0", app_ip + "/24", false));
    if (!ingress_ip.empty()) {
      RETURN_IF_ERROR(Attach(host, fd, c, name, kIngress, "eth1", ingress_ip + "/24", false));
    }
    if (!gw_ip.empty())
      RETURN_IF_ERROR(Attach(host, fd, c, name, kGw, "eth2", gw_ip + "/16", true));
    return absl::OkStatus();
  });
  absl::Status st = run.status();
  if (st.ok()) st = SyncPeers();
  if (!st.ok()) {
    (void)RemoveContainer(name);
    return st;
  }
  return absl::OkStatus();
}

absl::Status MeshLab::RemoveContainer(const std::string& name) {
  auto it = placed_.find(name);
  if (it == placed_.end()) return absl::NotFoundError(name);
  it->second.procs.clear();
  DeleteEndpoints(it->second);
  placed_.erase(it);
  if (containers_->contains(name)) RETURN_IF_ERROR(containers_->Remove(name));
  return SyncPeers();
}

absl::StatusOr<lab::CommandResult> MeshLab::Run(const std::string& name, const std::string& cmd) {
  return containers_->at(name).Exec(cmd, std::chrono::seconds(60));
}

absl::Status MeshLab::StartServers(const std::string& name) {
  lab::LabContainer& c = containers_->at(name);
  ASSIGN_OR_RETURN(lab::CommandResult r,
                   c.Exec("mkdir -p /srv && hostname > /srv/index.html && "
                          "printf 'hostname\\nwhile read l; do echo \"$l\"; done\\n' > "
                          "/srv/echo.sh"));
  if (!r.ok()) return absl::InternalError("prepare servers in " + name + ": " + r.output);
  ASSIGN_OR_RETURN(auto httpd, c.Spawn("exec httpd -f -p 80 -h /srv"));
  ASSIGN_OR_RETURN(auto lines, c.Spawn("exec nc -ll -p 9000 -e /bin/sh /srv/echo.sh"));
  placed_.at(name).procs.push_back(std::move(httpd));
  placed_.at(name).procs.push_back(std::move(lines));
  return absl::OkStatus();
}

absl::Status MeshLab::SyncPeers() {
  for (const char* net : {kApp, kIngress}) {
    std::vector<netdrv::Peer> peers;
    for (const auto& [id, p] : endpoints_[net]) {
      peers.push_back(netdrv::Peer{id, p.ep.address.addr, p.ep.mac, lab_->host(p.host).ip});
    }
    for (Host& h : hosts_) RETURN_IF_ERROR(h.overlay->SetPeers(net, peers));
  }
  return absl::OkStatus();
}

}  // namespace shoal::lb::testing
