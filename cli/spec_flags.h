// Flag values of `shoal service create/update` (and friends) parsed into API specs. Pure: no
// I/O, unit-tested. Every error names the flag it comes from, e.g.
//   --limit-memory: "12x" is not a size (want a number with an optional b, k, m or g suffix)
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "api/specs.pb.h"

namespace shoal::cli {

namespace api = ::shoal::api::v1;

absl::StatusOr<int64_t> ParseBytes(const std::string& flag, const std::string& text);
absl::StatusOr<int64_t> ParseNanoCpus(const std::string& flag, const std::string& text);
// Go-style durations: "1h2m3.5s", "500ms", "0".
absl::StatusOr<absl::Duration> ParseDuration(const std::string& flag, const std::string& text);
// "8080:80[/udp]", "80" (published port allocated) or
// "published=8080,target=80,protocol=tcp|udp|sctp,mode=ingress|host".
absl::StatusOr<api::PortConfig> ParsePublish(const std::string& flag, const std::string& text);
// "name" or "name=web,alias=a,alias=b" (also "target=").
absl::StatusOr<api::NetworkAttachmentConfig> ParseNetwork(const std::string& flag,
                                                          const std::string& text);
// "KEY=value"; a bare "KEY" takes the value from the client's environment.
absl::StatusOr<std::string> ParseEnv(const std::string& flag, const std::string& text);
absl::StatusOr<api::RestartPolicy::Condition> ParseRestartCondition(const std::string& flag,
                                                                    const std::string& text);
absl::StatusOr<api::NodeSpec::Availability> ParseAvailability(const std::string& flag,
                                                              const std::string& text);
// "k=v" (or "k" with an empty value).
std::pair<std::string, std::string> SplitKeyValue(const std::string& text);

// The flags `service create` and `service update` share; a field applies only when `set` says
// the flag was given (update) — create passes everything it has.
struct ServiceFlags {
  std::string name;
  std::string mode;  // replicated (default) | global | replicated-job | global-job
  bool replicas_set = false;
  uint64_t replicas = 1;
  std::vector<std::string> env;
  std::vector<std::string> constraints;
  std::vector<std::string> publish;
  std::vector<std::string> networks;
  std::vector<std::string> labels;
  std::string limit_memory, limit_cpu, reserve_memory, reserve_cpu;
  bool update_parallelism_set = false;
  uint64_t update_parallelism = 1;
  std::string update_delay, update_failure_action, update_order;
  std::string restart_condition, restart_delay;
  bool restart_max_attempts_set = false;
  uint64_t restart_max_attempts = 0;
  std::string endpoint_mode;  // vip | dnsrr
  std::string image;
  std::vector<std::string> args;
};

absl::StatusOr<api::ServiceSpec> BuildServiceSpec(const ServiceFlags& f);

// `service update`: the changes on top of the current spec.
struct ServiceUpdateFlags {
  ServiceFlags set;  // --image, --replicas, --limit-*, --update-*, --restart-*, --args
  bool args_set = false;
  std::vector<std::string> env_add, env_rm;
  std::vector<std::string> constraint_add, constraint_rm;
  std::vector<std::string> publish_add, publish_rm;  // rm: target port ("80" or "80/udp")
  std::vector<std::string> network_add, network_rm;
  std::vector<std::string> label_add, label_rm;
  bool force = false;
};

absl::Status ApplyServiceUpdate(const ServiceUpdateFlags& f, api::ServiceSpec& spec);

}  // namespace shoal::cli
