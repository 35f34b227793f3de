#include "ipam/ipam.h"

#include "absl/strings/str_cat.h"
#include "base/status.h"
#include "nlohmann/json.hpp"

namespace shoal::ipam {

absl::StatusOr<Ipam> Ipam::Create(IpamConfig config) {
  if (config.pools.empty()) {
    config.pools = DefaultGlobalPools();
    for (const PoolSpec& p : DefaultLocalPools()) config.pools.push_back(p);
  }
  ASSIGN_OR_RETURN(SubnetPools pools, SubnetPools::Create(std::move(config.pools)));
  return Ipam(std::move(pools));
}

absl::StatusOr<Prefix> Ipam::AddSubnet(const SubnetRequest& req) {
  SubnetSpec spec{Prefix{}, req.range, req.gateway, req.no_gateway, req.reserved};
  if (req.subnet) {
    spec.subnet = *req.subnet;
    // Validate the spec before claiming the subnet, so a bad request changes nothing.
    RETURN_IF_ERROR(AddressPool::Create(spec).status());
    RETURN_IF_ERROR(pools_.Reserve(spec.subnet));
  } else {
    if (req.range || req.gateway || !req.reserved.empty()) {
      return absl::InvalidArgumentError(
          "ip_range, gateway and reserved addresses need an explicit subnet");
    }
    ASSIGN_OR_RETURN(spec.subnet, pools_.Allocate(req.scope, req.v6));
  }
  absl::StatusOr<AddressPool> pool = AddressPool::Create(spec);
  if (!pool.ok()) {
    (void)pools_.Release(spec.subnet);
    return pool.status();
  }
  subnets_.emplace(spec.subnet, std::move(*pool));
  return spec.subnet;
}

absl::Status Ipam::RemoveSubnet(const Prefix& subnet, bool force) {
  ASSIGN_OR_RETURN(AddressPool * p, Get(subnet));
  if (!force && p->InUse() != 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "subnet ", subnet.ToString(), " still has ", absl::Uint128Low64(p->InUse()),
        " allocated address(es)"));
  }
  RETURN_IF_ERROR(pools_.Release(subnet));
  subnets_.erase(subnet);
  return absl::OkStatus();
}

absl::StatusOr<AddressPool*> Ipam::Get(const Prefix& subnet) {
  auto it = subnets_.find(subnet);
  if (it == subnets_.end()) {
    return absl::NotFoundError(absl::StrCat("subnet ", subnet.ToString(), " is not managed"));
  }
  return &it->second;
}

absl::StatusOr<IpAddr> Ipam::Allocate(const Prefix& subnet, std::optional<IpAddr> want) {
  ASSIGN_OR_RETURN(AddressPool * p, Get(subnet));
  if (!want) return p->Allocate();
  RETURN_IF_ERROR(p->AllocateSpecific(*want));
  return *want;
}

absl::Status Ipam::Release(const Prefix& subnet, const IpAddr& addr) {
  ASSIGN_OR_RETURN(AddressPool * p, Get(subnet));
  return p->Release(addr);
}

const AddressPool* Ipam::Find(const Prefix& subnet) const {
  auto it = subnets_.find(subnet);
  return it == subnets_.end() ? nullptr : &it->second;
}

std::vector<Prefix> Ipam::Subnets() const {
  std::vector<Prefix> out;
  for (const auto& [p, pool] : subnets_) out.push_back(p);
  return out;
}

nlohmann::json Ipam::ToJson() const {
  nlohmann::json j;
  j["version"] = 1;
  j["pools"] = pools_.ToJson();
  j["subnets"] = nlohmann::json::array();
  for (const auto& [p, pool] : subnets_) j["subnets"].push_back(pool.ToJson());
  return j;
}

absl::StatusOr<Ipam> Ipam::FromJson(const nlohmann::json& j) {
  if (!j.is_object() || j.value("version", 0) != 1) {
    return absl::InvalidArgumentError("ipam state: missing or unsupported \"version\" (want 1)");
  }
  ASSIGN_OR_RETURN(SubnetPools pools, SubnetPools::FromJson(j.value("pools", nlohmann::json())));
  Ipam out(std::move(pools));
  for (const auto& s : j.value("subnets", nlohmann::json::array())) {
    ASSIGN_OR_RETURN(AddressPool pool, AddressPool::FromJson(s));
    Prefix subnet = pool.subnet();
    if (!out.pools_.FindOverlap(subnet) || !(*out.pools_.FindOverlap(subnet) == subnet)) {
      return absl::InvalidArgumentError(absl::StrCat("ipam state: subnet ", subnet.ToString(),
                                                     " is not recorded as in use"));
    }
    out.subnets_.emplace(subnet, std::move(pool));
  }
  return out;
}

}  // namespace shoal::ipam
