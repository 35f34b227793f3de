#include "cli/spec_flags.h"

#include <cmath>
#include <cstdlib>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/status.h"

namespace shoal::cli {
namespace {

absl::Status Bad(const std::string& flag, const std::string& text, absl::string_view want) {
  return absl::InvalidArgumentError(absl::StrCat(flag, ": \"", text, "\" ", want));
}

void SetDuration(absl::Duration d, google::protobuf::Duration* out) {
  int64_t ns = absl::ToInt64Nanoseconds(d);
  out->set_seconds(ns / 1000000000);
  out->set_nanos(static_cast<int32_t>(ns % 1000000000));
}

absl::Status SetResources(const std::string& mem_flag, const std::string& mem,
                          const std::string& cpu_flag, const std::string& cpu,
                          api::Resources* out) {
  if (!mem.empty()) {
    ASSIGN_OR_RETURN(int64_t bytes, ParseBytes(mem_flag, mem));
    out->set_memory_bytes(bytes);
  }
  if (!cpu.empty()) {
    ASSIGN_OR_RETURN(int64_t nano, ParseNanoCpus(cpu_flag, cpu));
    out->set_nano_cpus(nano);
  }
  return absl::OkStatus();
}

// The fields create and update set the same way (only those given).
absl::Status ApplyCommon(const ServiceFlags& f, api::ServiceSpec& spec) {
  auto* task = spec.mutable_task();
  if (!f.image.empty()) task->mutable_container()->set_image(f.image);
  RETURN_IF_ERROR(SetResources("--limit-memory", f.limit_memory, "--limit-cpu", f.limit_cpu,
                               task->mutable_resources()->mutable_limits()));
  RETURN_IF_ERROR(SetResources("--reserve-memory", f.reserve_memory, "--reserve-cpu",
                               f.reserve_cpu, task->mutable_resources()->mutable_reservations()));
  if (f.replicas_set) {
    if (!spec.has_replicated()) {
      return absl::InvalidArgumentError("--replicas: only for replicated services (--mode "
                                        "replicated)");
    }
    spec.mutable_replicated()->set_replicas(f.replicas);
  }
  if (f.update_parallelism_set) spec.mutable_update()->set_parallelism(f.update_parallelism);
  if (!f.update_delay.empty()) {
    ASSIGN_OR_RETURN(absl::Duration d, ParseDuration("--update-delay", f.update_delay));
    SetDuration(d, spec.mutable_update()->mutable_delay());
  }
  if (!f.update_failure_action.empty()) {
    const std::string& a = f.update_failure_action;
    if (a == "pause") {
      spec.mutable_update()->set_failure_action(api::UpdateConfig::FAILURE_ACTION_PAUSE);
    } else if (a == "continue") {
      spec.mutable_update()->set_failure_action(api::UpdateConfig::FAILURE_ACTION_CONTINUE);
    } else if (a == "rollback") {
      spec.mutable_update()->set_failure_action(api::UpdateConfig::FAILURE_ACTION_ROLLBACK);
    } else {
      return Bad("--update-failure-action", a, "is not one of pause, continue, rollback");
    }
  }
  if (!f.update_order.empty()) {
    if (f.update_order == "stop-first") {
      spec.mutable_update()->set_order(api::UpdateConfig::ORDER_STOP_FIRST);
    } else if (f.update_order == "start-first") {
      spec.mutable_update()->set_order(api::UpdateConfig::ORDER_START_FIRST);
    } else {
      return Bad("--update-order", f.update_order, "is not one of stop-first, start-first");
    }
  }
  if (!f.restart_condition.empty()) {
    ASSIGN_OR_RETURN(auto c, ParseRestartCondition("--restart-condition", f.restart_condition));
    task->mutable_restart()->set_condition(c);
  }
  if (!f.restart_delay.empty()) {
    ASSIGN_OR_RETURN(absl::Duration d, ParseDuration("--restart-delay", f.restart_delay));
    SetDuration(d, task->mutable_restart()->mutable_delay());
  }
  if (f.restart_max_attempts_set) task->mutable_restart()->set_max_attempts(f.restart_max_attempts);
  if (!f.endpoint_mode.empty()) {
    if (f.endpoint_mode == "vip") {
      spec.mutable_endpoint()->set_mode(api::EndpointSpec::RESOLUTION_MODE_VIP);
    } else if (f.endpoint_mode == "dnsrr") {
      spec.mutable_endpoint()->set_mode(api::EndpointSpec::RESOLUTION_MODE_DNSRR);
    } else {
      return Bad("--endpoint-mode", f.endpoint_mode, "is not one of vip, dnsrr");
    }
  }
  return absl::OkStatus();
}

bool SamePort(const api::PortConfig& a, const api::PortConfig& b) {
  return a.target_port() == b.target_port() && a.protocol() == b.protocol();
}

}  // namespace

std::pair<std::string, std::string> SplitKeyValue(const std::string& text) {
  auto eq = text.find('=');
  if (eq == std::string::npos) return {text, ""};
  return {text.substr(0, eq), text.substr(eq + 1)};
}

absl::StatusOr<int64_t> ParseBytes(const std::string& flag, const std::string& text) {
  std::string t = absl::AsciiStrToLower(absl::StripAsciiWhitespace(text));
  size_t digits = 0;
  while (digits < t.size() && (absl::ascii_isdigit(t[digits]) || t[digits] == '.')) ++digits;
  double value = 0;
  if (digits == 0 || !absl::SimpleAtod(t.substr(0, digits), &value) || value < 0) {
    return Bad(flag, text, "is not a size (want a number with an optional b, k, m or g suffix)");
  }
  std::string unit = t.substr(digits);
  double mult = 0;
  if (unit.empty() || unit == "b") mult = 1;
  if (unit == "k" || unit == "kb" || unit == "kib") mult = 1024.0;
  if (unit == "m" || unit == "mb" || unit == "mib") mult = 1024.0 * 1024;
  if (unit == "g" || unit == "gb" || unit == "gib") mult = 1024.0 * 1024 * 1024;
  if (unit == "t" || unit == "tb" || unit == "tib") mult = 1024.0 * 1024 * 1024 * 1024;
  if (mult == 0) {
    return Bad(flag, text, "has an unknown unit (want b, k, m, g or t)");
  }
  return static_cast<int64_t>(value * mult);
}

absl::StatusOr<int64_t> ParseNanoCpus(const std::string& flag, const std::string& text) {
  double cpus = 0;
  if (!absl::SimpleAtod(text, &cpus) || !std::isfinite(cpus) || cpus <= 0) {
    return Bad(flag, text, "is not a positive number of CPUs (e.g. 0.5)");
  }
  return static_cast<int64_t>(std::llround(cpus * 1e9));
}

absl::StatusOr<absl::Duration> ParseDuration(const std::string& flag, const std::string& text) {
  if (text == "0") return absl::ZeroDuration();
  absl::Duration d;
  if (text.empty() || text[0] == '-' || !absl::ParseDuration(text, &d)) {
    return Bad(flag, text, "is not a duration (e.g. 10s, 1m30s, 500ms)");
  }
  return d;
}

absl::StatusOr<api::PortConfig> ParsePublish(const std::string& flag, const std::string& text) {
  api::PortConfig p;
  auto port = [&](const std::string& v, void (api::PortConfig::*set)(uint32_t)) -> absl::Status {
    int n = 0;
    if (!absl::SimpleAtoi(v, &n) || n < 1 || n > 65535) {
      return Bad(flag, text, absl::StrCat("has port \"", v, "\" outside 1-65535"));
    }
    (p.*set)(static_cast<uint32_t>(n));
    return absl::OkStatus();
  };
  auto protocol = [&](const std::string& v) -> absl::Status {
    if (v == "tcp") {
      p.set_protocol(api::PortConfig::PROTOCOL_TCP);
    } else if (v == "udp") {
      p.set_protocol(api::PortConfig::PROTOCOL_UDP);
    } else if (v == "sctp") {
      p.set_protocol(api::PortConfig::PROTOCOL_SCTP);
    } else {
      return Bad(flag, text, absl::StrCat("has protocol \"", v, "\" (want tcp, udp or sctp)"));
    }
    return absl::OkStatus();
  };
  if (text.find('=') != std::string::npos) {
    for (absl::string_view part : absl::StrSplit(text, ',')) {
      auto [k, v] = SplitKeyValue(std::string(part));
      if (k == "published") {
        RETURN_IF_ERROR(port(v, &api::PortConfig::set_published_port));
      } else if (k == "target") {
        RETURN_IF_ERROR(port(v, &api::PortConfig::set_target_port));
      } else if (k == "protocol") {
        RETURN_IF_ERROR(protocol(v));
      } else if (k == "mode") {
        if (v == "ingress") {
          p.set_publish_mode(api::PortConfig::PUBLISH_MODE_INGRESS);
        } else if (v == "host") {
          p.set_publish_mode(api::PortConfig::PUBLISH_MODE_HOST);
        } else {
          return Bad(flag, text, absl::StrCat("has mode \"", v, "\" (want ingress or host)"));
        }
      } else {
        return Bad(flag, text,
                   absl::StrCat("has unknown key \"", k, "\" (want published, target, protocol, "
                                                        "mode)"));
      }
    }
    if (p.target_port() == 0) return Bad(flag, text, "has no target port (target=)");
    return p;
  }
  std::string ports = text;
  if (auto slash = text.find('/'); slash != std::string::npos) {
    ports = text.substr(0, slash);
    RETURN_IF_ERROR(protocol(text.substr(slash + 1)));
  }
  if (auto colon = ports.find(':'); colon != std::string::npos) {
    RETURN_IF_ERROR(port(ports.substr(0, colon), &api::PortConfig::set_published_port));
    RETURN_IF_ERROR(port(ports.substr(colon + 1), &api::PortConfig::set_target_port));
  } else {
    RETURN_IF_ERROR(port(ports, &api::PortConfig::set_target_port));
  }
  return p;
}

absl::StatusOr<api::NetworkAttachmentConfig> ParseNetwork(const std::string& flag,
                                                          const std::string& text) {
  api::NetworkAttachmentConfig n;
  if (text.find('=') == std::string::npos) {
    if (text.empty()) return Bad(flag, text, "is empty (want a network name or id)");
    n.set_target(text);
    return n;
  }
  for (absl::string_view part : absl::StrSplit(text, ',')) {
    auto [k, v] = SplitKeyValue(std::string(part));
    if (k == "name" || k == "target") {
      n.set_target(v);
    } else if (k == "alias") {
      n.add_aliases(v);
    } else {
      return Bad(flag, text, absl::StrCat("has unknown key \"", k, "\" (want name, alias)"));
    }
  }
  if (n.target().empty()) return Bad(flag, text, "names no network (name=)");
  return n;
}

absl::StatusOr<std::string> ParseEnv(const std::string& flag, const std::string& text) {
  if (text.empty() || text[0] == '=') return Bad(flag, text, "is not KEY=value");
  if (text.find('=') != std::string::npos) return text;
  const char* v = std::getenv(text.c_str());
  if (v == nullptr) return Bad(flag, text, "has no value and is not set in this environment");
  return absl::StrCat(text, "=", v);
}

absl::StatusOr<api::RestartPolicy::Condition> ParseRestartCondition(const std::string& flag,
                                                                    const std::string& text) {
  if (text == "any") return api::RestartPolicy::CONDITION_ANY;
  if (text == "on-failure") return api::RestartPolicy::CONDITION_ON_FAILURE;
  if (text == "none") return api::RestartPolicy::CONDITION_NONE;
  return Bad(flag, text, "is not one of none, on-failure, any");
}

absl::StatusOr<api::NodeSpec::Availability> ParseAvailability(const std::string& flag,
                                                              const std::string& text) {
  if (text == "active") return api::NodeSpec::AVAILABILITY_ACTIVE;
  if (text == "pause") return api::NodeSpec::AVAILABILITY_PAUSE;
  if (text == "drain") return api::NodeSpec::AVAILABILITY_DRAIN;
  return Bad(flag, text, "is not one of active, pause, drain");
}

absl::StatusOr<api::ServiceSpec> BuildServiceSpec(const ServiceFlags& f) {
  api::ServiceSpec spec;
  if (f.image.empty()) return absl::InvalidArgumentError("IMAGE: required");
  spec.mutable_annotations()->set_name(f.name);
  for (const auto& l : f.labels) {
    auto [k, v] = SplitKeyValue(l);
    (*spec.mutable_annotations()->mutable_labels())[k] = v;
  }
  const std::string mode = f.mode.empty() ? "replicated" : f.mode;
  if (mode == "replicated") {
    spec.mutable_replicated()->set_replicas(f.replicas);
  } else if (mode == "global") {
    spec.mutable_global();
  } else if (mode == "replicated-job") {
    spec.mutable_replicated_job()->set_max_concurrent(f.replicas_set ? f.replicas : 1);
  } else if (mode == "global-job") {
    spec.mutable_global_job();
  } else {
    return Bad("--mode", mode, "is not one of replicated, global, replicated-job, global-job");
  }
  ServiceFlags common = f;
  if (mode != "replicated") {
    if (f.replicas_set && mode != "replicated-job") {
      return absl::InvalidArgumentError(
          absl::StrCat("--replicas: only for replicated services, not --mode ", mode));
    }
    common.replicas_set = false;
  }
  RETURN_IF_ERROR(ApplyCommon(common, spec));
  auto* c = spec.mutable_task()->mutable_container();
  for (const auto& a : f.args) c->add_args(a);
  for (const auto& e : f.env) {
    ASSIGN_OR_RETURN(std::string kv, ParseEnv("--env", e));
    c->add_env(kv);
  }
  for (const auto& k : f.constraints) spec.mutable_task()->mutable_placement()->add_constraints(k);
  for (const auto& p : f.publish) {
    ASSIGN_OR_RETURN(api::PortConfig port, ParsePublish("--publish", p));
    *spec.mutable_endpoint()->add_ports() = port;
  }
  for (const auto& n : f.networks) {
    ASSIGN_OR_RETURN(api::NetworkAttachmentConfig net, ParseNetwork("--network", n));
    *spec.mutable_task()->add_networks() = net;
  }
  return spec;
}

absl::Status ApplyServiceUpdate(const ServiceUpdateFlags& f, api::ServiceSpec& spec) {
  RETURN_IF_ERROR(ApplyCommon(f.set, spec));
  auto* c = spec.mutable_task()->mutable_container();
  if (f.args_set) {
    c->clear_args();
    for (const auto& a : f.set.args) c->add_args(a);
  }
  // env: remove by key, then add (replacing the same key).
  auto remove_env = [&](const std::string& key) {
    auto* env = c->mutable_env();
    for (int i = env->size() - 1; i >= 0; --i) {
      if (SplitKeyValue(env->Get(i)).first == key) env->DeleteSubrange(i, 1);
    }
  };
  for (const auto& k : f.env_rm) remove_env(SplitKeyValue(k).first);
  for (const auto& e : f.env_add) {
    ASSIGN_OR_RETURN(std::string kv, ParseEnv("--env-add", e));
    remove_env(SplitKeyValue(kv).first);
    c->add_env(kv);
  }
  auto* placement = spec.mutable_task()->mutable_placement();
  for (const auto& k : f.constraint_rm) {
    auto* cs = placement->mutable_constraints();
    for (int i = cs->size() - 1; i >= 0; --i) {
      if (cs->Get(i) == k) cs->DeleteSubrange(i, 1);
    }
  }
  for (const auto& k : f.constraint_add) placement->add_constraints(k);
  auto* ports = spec.mutable_endpoint()->mutable_ports();
  for (const auto& p : f.publish_rm) {
    ASSIGN_OR_RETURN(api::PortConfig want, ParsePublish("--publish-rm", p));
    for (int i = ports->size() - 1; i >= 0; --i) {
      if (SamePort(ports->Get(i), want)) ports->DeleteSubrange(i, 1);
    }
  }
  for (const auto& p : f.publish_add) {
    ASSIGN_OR_RETURN(api::PortConfig port, ParsePublish("--publish-add", p));
    for (int i = ports->size() - 1; i >= 0; --i) {
      if (SamePort(ports->Get(i), port)) ports->DeleteSubrange(i, 1);
    }
    *ports->Add() = port;
  }
  auto* nets = spec.mutable_task()->mutable_networks();
  for (const auto& n : f.network_rm) {
    for (int i = nets->size() - 1; i >= 0; --i) {
      if (nets->Get(i).target() == n) nets->DeleteSubrange(i, 1);
    }
  }
  for (const auto& n : f.network_add) {
    ASSIGN_OR_RETURN(api::NetworkAttachmentConfig net, ParseNetwork("--network-add", n));
    *nets->Add() = net;
  }
  auto* labels = spec.mutable_annotations()->mutable_labels();
  for (const auto& k : f.label_rm) labels->erase(k);
  for (const auto& l : f.label_add) {
    auto [k, v] = SplitKeyValue(l);
    (*labels)[k] = v;
  }
  if (f.force) spec.mutable_task()->set_force_update(spec.task().force_update() + 1);
  return absl::OkStatus();
}

}  // namespace shoal::cli
