// Internal to agent/network*.cc (not part of the agent's interface): constants and conversions
// shared by the task-networking files — network.cc (networks, peers, endpoints),
// network_services.cc (embedded DNS, VIP load balancing) and network_ingress.cc (the routing
// mesh).
#pragma once

#include <sys/types.h>

#include <string>

#include "absl/status/statusor.h"
#include "api/objects.pb.h"
#include "base/unique_fd.h"
#include "netdrv/driver.h"

namespace shoal::agent::net {

namespace api = ::shoal::api::v1;

inline constexpr char kLbTable[] = "shoal-lb";
inline constexpr char kDnsIp[] = "127.0.0.11";
// Must match manager/dispatcher (kIngressSandboxPrefix): the agent does not depend on manager/.
inline constexpr char kIngressSandboxPrefix[] = "ingress-sbox-";
inline constexpr char kIngressSandbox[] = "ingress-sbox";
inline constexpr char kGatewayBridge[] = "shoal_gwbridge";
inline constexpr char kGatewayNetwork[] = "gwbridge";

// "<task>/<network>": the key of one attachment.
std::string Key(const std::string& task, const std::string& net);
// "10.0.1.5/24" -> "10.0.1.5".
std::string AddrOf(const std::string& cidr);
// The network's name, or its id when it has none.
std::string NetName(const api::Network& n);
// The overlay spec (subnet, gateway, VNI) of an allocated network; errors name the network and
// the missing or bad field (UNIMPLEMENTED for drivers other than overlay).
absl::StatusOr<netdrv::NetworkSpec> SpecOf(const api::Network& n);
// /proc/<pid>/ns/net opened O_CLOEXEC (invalid on failure).
base::UniqueFd OpenNetns(pid_t pid);
// The service is reached through a VIP (not DNS round-robin).
bool IsVip(const api::Service& s);
// The allocated ports (published ports filled in), else the spec's.
const google::protobuf::RepeatedPtrField<api::PortConfig>& PortsOf(const api::Service& s);

}  // namespace shoal::agent::net
