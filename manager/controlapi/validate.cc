#include "manager/controlapi/validate.h"

#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "base/status.h"
#include "manager/scheduler/constraint.h"

namespace shoal::manager::controlapi {
namespace {

absl::Status Invalid(absl::string_view field, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", why));
}

int64_t DurationNanos(const google::protobuf::Duration& d) {
  return d.seconds() * 1'000'000'000 + d.nanos();
}

absl::Status ValidateResources(absl::string_view field, const api::Resources& r) {
  if (r.nano_cpus() < 0 || (r.nano_cpus() != 0 && r.nano_cpus() < kMinNanoCpus)) {
    return Invalid(absl::StrCat(field, ".nano_cpus"),
                   absl::StrCat(r.nano_cpus(), " is below the minimum of 0.001 CPU (1000000)"));
  }
  if (r.memory_bytes() < 0 || (r.memory_bytes() != 0 && r.memory_bytes() < kMinMemoryBytes)) {
    return Invalid(absl::StrCat(field, ".memory_bytes"),
                   absl::StrCat(r.memory_bytes(), " is below the minimum of 4 MiB"));
  }
  return absl::OkStatus();
}

absl::Status ValidateUpdateConfig(absl::string_view field, const api::UpdateConfig& u) {
  if (u.max_failure_ratio() < 0 || u.max_failure_ratio() > 1) {
    return Invalid(absl::StrCat(field, ".max_failure_ratio"), "must be between 0 and 1");
  }
  if (DurationNanos(u.delay()) < 0) return Invalid(absl::StrCat(field, ".delay"), "must not be negative");
  if (DurationNanos(u.monitor()) < 0) {
    return Invalid(absl::StrCat(field, ".monitor"), "must not be negative");
  }
  return absl::OkStatus();
}

absl::Status ValidateContainer(const api::ContainerSpec& c) {
  if (c.image().empty()) return Invalid("spec.task.container.image", "is required");
  if (c.image().find_first_of(" \t\n") != std::string::npos) {
    return Invalid("spec.task.container.image", absl::StrCat("'", c.image(), "' contains white space"));
  }
  for (int i = 0; i < c.mounts_size(); ++i) {
    const auto& m = c.mounts(i);
    std::string f = absl::StrCat("spec.task.container.mounts[", i, "]");
    if (m.target().empty() || m.target()[0] != '/') {
      return Invalid(absl::StrCat(f, ".target"), absl::StrCat("must be an absolute path, got '", m.target(), "'"));
    }
    if (m.type() == api::Mount::TYPE_BIND && (m.source().empty() || m.source()[0] != '/')) {
      return Invalid(absl::StrCat(f, ".source"),
                     absl::StrCat("bind mounts need an absolute host path, got '", m.source(), "'"));
    }
    if (m.type() == api::Mount::TYPE_TMPFS && !m.source().empty()) {
      return Invalid(absl::StrCat(f, ".source"), "must be empty for tmpfs mounts");
    }
  }
  for (int i = 0; i < c.env_size(); ++i) {
    if (c.env(i).empty() || c.env(i)[0] == '=') {
      return Invalid(absl::StrCat("spec.task.container.env[", i, "]"),
                     absl::StrCat("'", c.env(i), "' is not KEY=value"));
    }
  }
  if (c.has_stop_grace_period() && DurationNanos(c.stop_grace_period()) < 0) {
    return Invalid("spec.task.container.stop_grace_period", "must not be negative");
  }
  if (c.pids_limit() < 0) return Invalid("spec.task.container.pids_limit", "must not be negative");
  const auto& hc = c.healthcheck();
  for (auto [name, d] : {std::pair{"interval", &hc.interval()}, std::pair{"timeout", &hc.timeout()},
                         std::pair{"start_period", &hc.start_period()}}) {
    int64_t n = DurationNanos(*d);
    if (n != 0 && n < 1'000'000) {
      return Invalid(absl::StrCat("spec.task.container.healthcheck.", name), "must be at least 1ms");
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateName(absl::string_view field, absl::string_view name) {
  if (name.empty()) return Invalid(field, "is required");
  if (name.size() > 63) return Invalid(field, absl::StrCat("'", name, "' is longer than 63 characters"));
  // ^[a-zA-Z0-9](?:[-_]*[A-Za-z0-9]+)*$ : alphanumeric at both ends, '-' and '_' inside.
  auto alnum = [](char c) { return absl::ascii_isalnum(static_cast<unsigned char>(c)); };
  bool ok = alnum(name.front()) && alnum(name.back());
  for (char c : name) ok = ok && (alnum(c) || c == '-' || c == '_');
  if (!ok) {
    return Invalid(field, absl::StrCat("'", name,
                                       "' must be letters, digits, '-' and '_', starting and "
                                       "ending with a letter or digit"));
  }
  return absl::OkStatus();
}

absl::Status ValidateServiceSpec(const api::ServiceSpec& spec) {
  RETURN_IF_ERROR(ValidateName("spec.annotations.name", spec.annotations().name()));
  if (spec.mode_case() == api::ServiceSpec::MODE_NOT_SET) {
    return Invalid("spec.mode", "must be replicated, global, replicated_job or global_job");
  }
  RETURN_IF_ERROR(ValidateContainer(spec.task().container()));
  const auto& res = spec.task().resources();
  RETURN_IF_ERROR(ValidateResources("spec.task.resources.limits", res.limits()));
  RETURN_IF_ERROR(ValidateResources("spec.task.resources.reservations", res.reservations()));
  if (res.limits().memory_bytes() != 0 &&
      res.reservations().memory_bytes() > res.limits().memory_bytes()) {
    return Invalid("spec.task.resources.reservations.memory_bytes", "exceeds the memory limit");
  }
  if (res.limits().nano_cpus() != 0 && res.reservations().nano_cpus() > res.limits().nano_cpus()) {
    return Invalid("spec.task.resources.reservations.nano_cpus", "exceeds the CPU limit");
  }
  if (DurationNanos(spec.task().restart().delay()) < 0) {
    return Invalid("spec.task.restart.delay", "must not be negative");
  }
  std::vector<std::string> constraints(spec.task().placement().constraints().begin(),
                                       spec.task().placement().constraints().end());
  if (auto c = scheduler::ParseConstraints(constraints); !c.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("spec.task.placement.", c.status().message()));
  }
  for (int i = 0; i < spec.task().placement().preferences_size(); ++i) {
    auto s = scheduler::ValidateSpreadDescriptor(spec.task().placement().preferences(i).spread_descriptor());
    if (!s.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("spec.task.placement.preferences[", i, "]: ", s.message()));
    }
  }
  RETURN_IF_ERROR(ValidateUpdateConfig("spec.update", spec.update()));
  RETURN_IF_ERROR(ValidateUpdateConfig("spec.rollback", spec.rollback()));
  if ((spec.has_replicated_job() || spec.has_global_job()) && spec.has_update()) {
    return Invalid("spec.update", "jobs cannot have an update config");
  }
  std::set<std::pair<int, uint32_t>> published;
  const bool dnsrr = spec.endpoint().mode() == api::EndpointSpec::RESOLUTION_MODE_DNSRR;
  for (int i = 0; i < spec.endpoint().ports_size(); ++i) {
    const auto& p = spec.endpoint().ports(i);
    std::string f = absl::StrCat("spec.endpoint.ports[", i, "]");
    if (p.target_port() < 1 || p.target_port() > 65535) {
      return Invalid(absl::StrCat(f, ".target_port"), absl::StrCat(p.target_port(), " is not a port (1-65535)"));
    }
    if (p.published_port() > 65535) {
      return Invalid(absl::StrCat(f, ".published_port"), absl::StrCat(p.published_port(), " is not a port (0-65535)"));
    }
    if (dnsrr && p.publish_mode() == api::PortConfig::PUBLISH_MODE_INGRESS) {
      return Invalid(f, "ingress-mode published ports need endpoint mode vip (dnsrr services "
                        "can publish in host mode)");
    }
    if (p.published_port() != 0 &&
        !published.insert({static_cast<int>(p.protocol()), p.published_port()}).second) {
      return Invalid(absl::StrCat(f, ".published_port"),
                     absl::StrCat("port ", p.published_port(), " is published twice"));
    }
  }
  for (int i = 0; i < spec.task().networks_size(); ++i) {
    if (spec.task().networks(i).target().empty()) {
      return Invalid(absl::StrCat("spec.task.networks[", i, "].target"), "is required");
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateServiceUpdate(const api::ServiceSpec& old_spec, const api::ServiceSpec& spec) {
  RETURN_IF_ERROR(ValidateServiceSpec(spec));
  if (old_spec.mode_case() != spec.mode_case()) {
    return Invalid("spec.mode", "service mode change is not allowed (remove and re-create the service)");
  }
  if (old_spec.annotations().name() != spec.annotations().name()) {
    return Invalid("spec.annotations.name", "renaming a service is not supported");
  }
  return absl::OkStatus();
}

absl::Status ValidateNetworkSpec(const api::NetworkSpec& spec) {
  RETURN_IF_ERROR(ValidateName("spec.annotations.name", spec.annotations().name()));
  const std::string& driver = spec.driver_config().name();
  if (!driver.empty() && driver != "overlay" && driver != "macvlan" && driver != "bridge") {
    return Invalid("spec.driver_config.name",
                   absl::StrCat("unknown driver '", driver, "' (want overlay, macvlan or bridge)"));
  }
  if (spec.ingress() && !driver.empty() && driver != "overlay") {
    return Invalid("spec.ingress", "the ingress network must use the overlay driver");
  }
  if (spec.ingress() && spec.attachable()) {
    return Invalid("spec.attachable", "the ingress network cannot be attachable");
  }
  if (spec.ipam().configs_size() > 1) {
    return Invalid("spec.ipam.configs", "only one subnet per network is supported");
  }
  return absl::OkStatus();
}

absl::Status ValidateSecretSpec(const api::SecretSpec& spec) {
  RETURN_IF_ERROR(ValidateName("spec.annotations.name", spec.annotations().name()));
  if (spec.data().empty() || spec.data().size() >= kMaxSecretSize) {
    return Invalid("spec.data", absl::StrCat("secret data must be 1 byte to 500 KiB, got ",
                                             spec.data().size(), " bytes"));
  }
  return absl::OkStatus();
}

absl::Status ValidateConfigSpec(const api::ConfigSpec& spec) {
  RETURN_IF_ERROR(ValidateName("spec.annotations.name", spec.annotations().name()));
  if (spec.data().empty() || spec.data().size() >= kMaxConfigSize) {
    return Invalid("spec.data", absl::StrCat("config data must be 1 byte to 1000 KiB, got ",
                                             spec.data().size(), " bytes"));
  }
  return absl::OkStatus();
}

absl::Status ValidateNodeSpec(const api::NodeSpec& spec) {
  if (!spec.annotations().name().empty()) {
    RETURN_IF_ERROR(ValidateName("spec.annotations.name", spec.annotations().name()));
  }
  return absl::OkStatus();
}

}  // namespace shoal::manager::controlapi
