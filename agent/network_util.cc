#include "agent/network_util.h"

#include <fcntl.h>
#include <unistd.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace shoal::agent::net {

std::string Key(const std::string& task, const std::string& net) {
  return absl::StrCat(task, "/", net);
}

std::string AddrOf(const std::string& cidr) { return cidr.substr(0, cidr.find('/')); }

std::string NetName(const api::Network& n) {
  return n.spec().annotations().name().empty() ? n.id() : n.spec().annotations().name();
}

absl::StatusOr<netdrv::NetworkSpec> SpecOf(const api::Network& n) {
  std::string who = absl::StrCat("network ", NetName(n), " (", n.id(), "): ");
  const std::string& driver = n.spec().driver_config().name();
  if (!driver.empty() && driver != "overlay") {
    return absl::UnimplementedError(
        absl::StrCat(who, "driver \"", driver, "\" is not supported by the agent (overlay only)"));
  }
  if (n.ipam().configs().empty()) {
    return absl::FailedPreconditionError(who + "ipam: no subnet allocated");
  }
  netdrv::NetworkSpec s;
  s.id = n.id();
  const api::IPAMConfig& c = n.ipam().configs(0);
  auto subnet = kernel::IpPrefix::Parse(c.subnet());
  if (!subnet.ok()) return absl::InvalidArgumentError(who + "ipam.subnet: " + c.subnet());
  s.subnet = subnet->Network();
  auto gw = kernel::IpAddr::Parse(AddrOf(c.gateway()));
  if (!gw.ok()) return absl::InvalidArgumentError(who + "ipam.gateway: \"" + c.gateway() + "\"");
  s.gateway = *gw;
  auto vni = n.driver_state().options().find("vni");
  if (vni == n.driver_state().options().end() || !absl::SimpleAtoi(vni->second, &s.vni)) {
    return absl::FailedPreconditionError(who + "driver_state: no VNI allocated");
  }
  return s;
}

base::UniqueFd OpenNetns(pid_t pid) {
  std::string path = absl::StrCat("/proc/", pid, "/ns/net");
  return base::UniqueFd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
}

bool IsVip(const api::Service& s) {
  return s.spec().endpoint().mode() != api::EndpointSpec::RESOLUTION_MODE_DNSRR;
}

const google::protobuf::RepeatedPtrField<api::PortConfig>& PortsOf(const api::Service& s) {
  return s.endpoint().ports().empty() ? s.spec().endpoint().ports() : s.endpoint().ports();
}

}  // namespace shoal::agent::net
