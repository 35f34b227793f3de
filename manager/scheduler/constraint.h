// Placement constraints in SwarmKit's syntax: "<key> <op> <value>", op is == or !=, all
// constraints of a task are ANDed.
//
// Keys (case-insensitive): node.id, node.hostname, node.ip (address or CIDR), node.role
// (manager|worker), node.platform.os, node.platform.arch, node.labels.<key>,
// engine.labels.<key> (label keys are case-sensitive). Values compare exactly and
// case-insensitively. A missing attribute compares as "" (so != matches it); an unknown key is a
// parse error here (SwarmKit silently never matches — a typo should not strand a service).
//
// Pure and thread-safe.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "api/objects.pb.h"

namespace shoal::manager::scheduler {

struct Constraint {
  enum class Key {
    kNodeId,
    kNodeHostname,
    kNodeIp,
    kNodeRole,
    kNodePlatformOs,
    kNodePlatformArch,
    kNodeLabel,
    kEngineLabel,
  };
  Key key;
  std::string label;  // for kNodeLabel / kEngineLabel
  bool equal = true;  // == or !=
  std::string value;
  std::string text;  // the original expression, for explanations
};

absl::StatusOr<Constraint> ParseConstraint(absl::string_view expr);
// Errors name the offending entry: "constraints[2]: ...".
absl::StatusOr<std::vector<Constraint>> ParseConstraints(const std::vector<std::string>& exprs);

bool NodeMatches(const Constraint& c, const api::v1::Node& node);
bool NodeMatchesAll(const std::vector<Constraint>& cs, const api::v1::Node& node);

// Value of a spread descriptor ("node.labels.rack", "engine.labels.x") on `node`; "" if absent.
// InvalidArgument for any other descriptor.
absl::Status ValidateSpreadDescriptor(absl::string_view descriptor);
std::string SpreadValue(absl::string_view descriptor, const api::v1::Node& node);

}  // namespace shoal::manager::scheduler
