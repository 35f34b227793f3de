// Internal: the dispatcher's record of one agent session (guarded by Dispatcher::mu_).
#pragma once

#include <cstdint>
#include <string>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "manager/dispatcher/dispatcher.h"

namespace shoal::manager::dispatcher {

struct Dispatcher::Session {
  std::string node_id;
  std::string id;
  absl::Time expires;  // heartbeat deadline (dispatcher clock)
  bool closed = false;
  absl::Status why;  // why it closed
  // Bumped when what the session's streams send may have changed.
  uint64_t node_gen = 1;    // node object, cluster, managers -> SessionMessage
  uint64_t assign_gen = 1;  // assignment set
  // What the last computed assignment set referenced (the watch marks the session dirty when a
  // change touches one of these).
  absl::flat_hash_set<std::string> networks;
  absl::flat_hash_set<std::string> secrets;
  absl::flat_hash_set<std::string> configs;
};

}  // namespace shoal::manager::dispatcher
