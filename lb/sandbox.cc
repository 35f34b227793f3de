#include "lb/sandbox.h"

#include <algorithm>
#include <set>

#include "absl/strings/str_cat.h"
#include "base/status.h"
#include "kernel/netlink/sysctl.h"
#include "kernel/nft/netlink_nft.h"

namespace shoal::lb {

SandboxDeps RealSandboxDeps(kernel::NetnsStore* store, kernel::NetlinkFactory* netlink) {
  SandboxDeps d;
  d.store = store;
  d.netlink = netlink;
  d.open_nft = [](int fd) { return kernel::nft::OpenNft(fd); };
  d.open_conntrack = [](int fd) { return OpenConntrack(fd); };
  d.sysctl = [](int fd, absl::string_view k, absl::string_view v) {
    return kernel::WriteSysctl(fd, k, v);
  };
  return d;
}

absl::StatusOr<std::unique_ptr<LbSandbox>> LbSandbox::Create(const SandboxDeps& deps,
                                                             SandboxSpec spec) {
  if (spec.name.empty()) return absl::InvalidArgumentError("sandbox name: required");
  if (spec.legs.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("sandbox ", spec.name, ": legs: none"));
  }
  for (const SandboxLeg& l : spec.legs) {
    if (l.driver == nullptr || l.network_id.empty() || l.endpoint_id.empty() ||
        !l.address.addr.is_v4()) {
      return absl::InvalidArgumentError(
          absl::StrCat("sandbox ", spec.name, ": leg ", l.ifname,
                       ": needs a driver, network_id, endpoint_id and an IPv4 address"));
    }
  }
  spec.nft.masquerade_oif = spec.legs[0].ifname;
  std::unique_ptr<LbSandbox> sb(new LbSandbox(deps, std::move(spec)));
  absl::Status st = sb->Build();
  if (!st.ok()) {
    (void)sb->Destroy();
    return base::Annotate(st, absl::StrCat("sandbox ", sb->spec_.name));
  }
  return sb;
}

absl::Status LbSandbox::Build() {
  ASSIGN_OR_RETURN(fd_, deps_.store->Create(spec_.name));
  created_ns_ = true;
  // Forwarding (flows in and out of the same leg); no ICMP redirects telling clients to bypass
  // the sandbox (the DNATed destination shares the client's subnet). "default" before the legs
  // exist, so they inherit it.
  for (const char* key : {"net/ipv4/ip_forward", "net/ipv4/conf/all/send_redirects",
                          "net/ipv4/conf/default/send_redirects"}) {
    bool forward = absl::string_view(key) == "net/ipv4/ip_forward";
    RETURN_IF_ERROR(deps_.sysctl(fd_.get(), key, forward ? "1" : "0"));
  }
  for (const SandboxLeg& l : spec_.legs) {
    netdrv::EndpointSpec e;
    e.id = l.endpoint_id;
    e.network_id = l.network_id;
    e.netns_fd = fd_.get();
    e.ifname = l.ifname;
    e.address = l.address;
    e.default_route = l.default_route;
    e.mac = l.mac;
    ASSIGN_OR_RETURN(netdrv::Endpoint ep, l.driver->CreateEndpoint(e));
    legs_built_.push_back(&l);
    endpoints_.push_back(std::move(ep));
  }
  ASSIGN_OR_RETURN(nl_, deps_.netlink->Open(fd_.get()));
  ASSIGN_OR_RETURN(kernel::Link link, nl_->GetLink(spec_.legs[0].ifname));
  vip_link_ = link.index;
  ASSIGN_OR_RETURN(auto nft, deps_.open_nft(fd_.get()));
  std::unique_ptr<ConntrackCleaner> ct;
  if (deps_.open_conntrack) {
    ASSIGN_OR_RETURN(ct, deps_.open_conntrack(fd_.get()));
  }
  ASSIGN_OR_RETURN(backend_, NftBackend::Create(std::move(nft), std::move(ct), spec_.nft));
  return absl::OkStatus();
}

LbSandbox::~LbSandbox() { (void)Destroy(); }

absl::Status LbSandbox::Destroy() {
  absl::Status first;
  backend_.reset();  // the table dies with the namespace
  nl_.reset();
  for (auto it = legs_built_.rbegin(); it != legs_built_.rend(); ++it) {
    absl::Status st = (*it)->driver->DeleteEndpoint((*it)->network_id, (*it)->endpoint_id);
    if (!st.ok() && !absl::IsNotFound(st) && first.ok()) first = st;
  }
  legs_built_.clear();
  endpoints_.clear();
  fd_.Reset();
  if (created_ns_) {
    absl::Status st = deps_.store->Delete(spec_.name);
    if (!st.ok() && !absl::IsNotFound(st) && first.ok()) first = st;
    created_ns_ = false;
  }
  vips_.clear();
  return first;
}

absl::Status LbSandbox::CheckVip(const Service& s) const {
  if (s.frontend != Frontend::kVip) return absl::OkStatus();
  auto vip = kernel::IpAddr::Parse(s.vip);
  if (!vip.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("service ", s.name, ": vip \"", s.vip, "\": not an IP address"));
  }
  const SandboxLeg& leg = spec_.legs[0];
  if (!leg.address.Contains(*vip)) {
    return absl::InvalidArgumentError(
        absl::StrCat("service ", s.name, ": vip ", s.vip, " is outside the subnet ",
                     leg.address.Network().ToString(), " of network ", leg.network_id));
  }
  if (*vip == leg.address.Network().addr) {
    return absl::InvalidArgumentError(
        absl::StrCat("service ", s.name, ": vip ", s.vip, " is the network address"));
  }
  for (const SandboxLeg& l : spec_.legs) {
    if (l.address.addr == *vip) {
      return absl::InvalidArgumentError(
          absl::StrCat("service ", s.name, ": vip ", s.vip, " is the LB sandbox's own address"));
    }
  }
  return absl::OkStatus();
}

absl::Status LbSandbox::SetVips(const std::map<std::string, int>& want,
                                std::vector<std::string>* added) {
  for (const auto& [vip, n] : want) {
    if (vips_.contains(vip)) continue;
    ASSIGN_OR_RETURN(kernel::IpAddr a, kernel::IpAddr::Parse(vip));
    absl::Status st = nl_->AddAddress({vip_link_, kernel::IpPrefix{a, 32}});
    if (!st.ok() && !absl::IsAlreadyExists(st)) return base::Annotate(st, "add vip " + vip);
    added->push_back(vip);
  }
  return absl::OkStatus();
}

absl::Status LbSandbox::Apply(const Change& change) {
  if (!backend_) return absl::FailedPreconditionError("sandbox " + spec_.name + " destroyed");
  for (const Service& s : change.upsert) RETURN_IF_ERROR(CheckVip(s));
  // The VIPs in use once the change is applied.
  std::map<std::string, Service> after;
  for (Service& s : backend_->Services()) after[s.name] = std::move(s);
  for (const std::string& n : change.remove) after.erase(n);
  for (const Service& s : change.upsert) after[s.name] = s;
  std::map<std::string, int> want;
  for (const auto& [n, s] : after) {
    if (s.frontend == Frontend::kVip) ++want[s.vip];
  }
  std::vector<std::string> added;
  absl::Status st = SetVips(want, &added);
  if (st.ok()) st = backend_->Apply(change);
  if (!st.ok()) {
    for (const std::string& vip : added) {
      (void)nl_->DeleteAddress({vip_link_, kernel::IpPrefix{*kernel::IpAddr::Parse(vip), 32}});
    }
    return st;
  }
  for (const auto& [vip, n] : vips_) {
    if (want.contains(vip)) continue;
    absl::Status del =
        nl_->DeleteAddress({vip_link_, kernel::IpPrefix{*kernel::IpAddr::Parse(vip), 32}});
    if (!del.ok() && !absl::IsNotFound(del)) return base::Annotate(del, "remove vip " + vip);
  }
  vips_ = std::move(want);
  return absl::OkStatus();
}

absl::Status LbSandbox::Reconcile() {
  if (!backend_) return absl::FailedPreconditionError("sandbox " + spec_.name + " destroyed");
  RETURN_IF_ERROR(backend_->Resync());
  ASSIGN_OR_RETURN(std::vector<kernel::Address> have, nl_->ListAddresses());
  for (const auto& [vip, n] : vips_) {
    kernel::Address want{vip_link_, kernel::IpPrefix{*kernel::IpAddr::Parse(vip), 32}};
    if (std::find(have.begin(), have.end(), want) != have.end()) continue;
    absl::Status st = nl_->AddAddress(want);
    if (!st.ok() && !absl::IsAlreadyExists(st)) return base::Annotate(st, "restore vip " + vip);
  }
  return absl::OkStatus();
}

}  // namespace shoal::lb
