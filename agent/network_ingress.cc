// Networking: the routing mesh (ingress sandbox, gateway bridge, node table via lb::Mesh).
#include "agent/network.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "agent/network_util.h"
#include "base/log.h"
#include "base/status.h"
#include "kernel/nft/netlink_nft.h"
#include "kernel/nft/plan.h"
#include "lb/nft_backend.h"

namespace shoal::agent {

using net::AddrOf;
using net::Key;
using net::kGatewayBridge;
using net::kGatewayNetwork;
using net::kIngressSandbox;
using net::kIngressSandboxPrefix;
using net::NetName;
using net::PortsOf;

void Networking::SyncIngress() {
  const api::Network* ingress = nullptr;
  for (const auto& [id, n] : networks_) {
    if (n.spec().ingress()) ingress = &n;
  }
  const api::EndpointRecord* own = nullptr;
  if (ingress != nullptr && !node_id_.empty()) {
    auto e = endpoints_.find(Key(absl::StrCat(kIngressSandboxPrefix, node_id_), ingress->id()));
    if (e != endpoints_.end()) own = &e->second;
  }
  auto log = base::Logger("agent");
  if (own == nullptr || (mesh_ != nullptr && ingress_ != ingress->id())) DisableIngress();
  if (own == nullptr) return;
  if (mesh_ == nullptr) {
    absl::Status s = EnableIngress(*ingress, *own);
    if (!s.ok()) {
      log->warn("routing mesh: {}", std::string(s.message()));
      DisableIngress();
      return;
    }
  }
  // Ingress-mode published ports of every service, to its running tasks' ingress addresses.
  std::vector<lb::ServiceConfig> want;
  for (const auto& [sid, s] : services_) {
    lb::ServiceConfig c;
    c.name = absl::AsciiStrToLower(sid.substr(0, 40));
    c.network_id = ingress_;
    c.balance_vip = false;
    for (const auto& p : PortsOf(s)) {
      if (p.publish_mode() != api::PortConfig::PUBLISH_MODE_INGRESS || p.published_port() == 0 ||
          p.target_port() == 0) {
        continue;
      }
      lb::PortConfig lp;
      lp.protocol = p.protocol() == api::PortConfig::PROTOCOL_UDP    ? lb::Protocol::kUdp
                    : p.protocol() == api::PortConfig::PROTOCOL_SCTP ? lb::Protocol::kSctp
                                                                     : lb::Protocol::kTcp;
      lp.target_port = static_cast<uint16_t>(p.target_port());
      lp.published_port = static_cast<uint16_t>(p.published_port());
      lp.mode = lb::PublishMode::kIngress;
      c.ports.push_back(lp);
    }
    if (c.ports.empty()) continue;
    for (const auto& [key, e] : endpoints_) {
      if (e.network_id() != ingress_ || e.service_id() != sid || !e.running()) continue;
      lb::TaskEndpoint t;
      t.id = e.task_id();
      t.ip = AddrOf(e.ip());
      t.ingress_ip = t.ip;
      c.tasks.push_back(std::move(t));
    }
    if (!c.tasks.empty()) want.push_back(std::move(c));
  }
  absl::Status s = mesh_->SetServices(want);
  if (!s.ok()) log->warn("routing mesh: {}", std::string(s.message()));
}

absl::Status Networking::EnableIngress(const api::Network& ingress,
                                       const api::EndpointRecord& own) {
  RETURN_IF_ERROR(EnsureDriver(own.node_vtep()));
  RETURN_IF_ERROR(EnsureNetwork(ingress.id()));
  ingress_ = ingress.id();  // in use from here on (ReleaseUnused keeps it)
  ASSIGN_OR_RETURN(auto address, kernel::IpPrefix::Parse(own.ip()));
  ASSIGN_OR_RETURN(auto mac, kernel::MacAddr::Parse(own.mac()));
  // What a previous agent that did not stop cleanly left: the sandbox and the bridge.
  if (auto fd = sandboxes_.Open(kIngressSandbox); fd.ok()) {
    auto nl = netlink_.Open(fd->get());
    auto links = nl.ok() ? (*nl)->ListLinks() : absl::StatusOr<std::vector<kernel::Link>>();
    if (links.ok()) {
      for (const auto& l : *links) {
        if (l.kind != kernel::LinkKind::kLoopback) (void)(*nl)->DeleteLink(l.index);
      }
    }
    (void)sandboxes_.Delete(kIngressSandbox);
  }
  ASSIGN_OR_RETURN(auto node, netlink_.Open(opts_.node_netns_fd));
  if (auto br = node->GetLink(kGatewayBridge); br.ok()) (void)node->DeleteLink(br->index);

  ASSIGN_OR_RETURN(node_nft_, kernel::nft::OpenNft(opts_.node_netns_fd));
  netdrv::BridgeConfig bc;
  bc.node_netns_fd = opts_.node_netns_fd;
  bc.bridge_name = kGatewayBridge;
  ASSIGN_OR_RETURN(gw_, netdrv::BridgeDriver::Create(bc, netlink_, *node_nft_, random_));
  netdrv::NetworkSpec gs;
  gs.id = kGatewayNetwork;
  gs.subnet = *kernel::IpPrefix::Parse("172.18.0.0/16");
  gs.gateway = *kernel::IpAddr::Parse("172.18.0.1");
  RETURN_IF_ERROR(gw_->CreateNetwork(gs));
  lb::MeshConfig mc;
  mc.node_netns_fd = opts_.node_netns_fd;
  mc.deps = lb::RealSandboxDeps(&sandboxes_, &netlink_);
  mc.overlay = overlay_.get();
  mc.gateway = gw_.get();
  mc.gateway_network_id = kGatewayNetwork;
  mc.gateway_bridge = kGatewayBridge;
  mc.node_nft = node_nft_.get();
  mc.ingress_sandbox = kIngressSandbox;
  ASSIGN_OR_RETURN(mesh_, lb::Mesh::Create(mc));
  lb::IngressSpec is;
  is.network_id = ingress.id();
  is.address = address;
  is.gw_address = *kernel::IpPrefix::Parse("172.18.0.2/16");
  is.mac = mac;
  RETURN_IF_ERROR(mesh_->EnableIngress(is));
  base::Logger("agent")->info("routing mesh: ingress sandbox at {} on network {}", own.ip(),
                              NetName(ingress));
  return absl::OkStatus();
}

void Networking::DisableIngress(bool release) {
  if (mesh_ != nullptr) {
    absl::Status s = mesh_->Destroy();
    if (!s.ok()) base::Logger("agent")->warn("routing mesh: {}", std::string(s.message()));
    mesh_.reset();
  }
  if (gw_ != nullptr) {
    (void)gw_->DeleteNetwork(kGatewayNetwork);
    gw_.reset();
  }
  node_nft_.reset();
  if (!ingress_.empty()) {
    ingress_.clear();
    if (release) ReleaseUnused();
  }
}

}  // namespace shoal::agent
