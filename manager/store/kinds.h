// The object kinds the store holds and what the store needs to know about each: id, meta,
// name, secondary index values, and how it travels in StoreAction / StoreSnapshot.
//
// All functions are pure and thread-safe. Objects are handled as google::protobuf::Message
// internally (one table implementation for every kind); the typed API in read_tx.h / tx.h maps
// C++ types to kinds through KindOf<T>.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "api/objects.pb.h"
#include "api/raft.pb.h"

namespace shoal::manager::store {

namespace api = ::shoal::api::v1;
using Message = ::google::protobuf::Message;
// Stored objects are immutable once in the store and shared between versions and readers.
using ObjectPtr = std::shared_ptr<const Message>;

enum class Kind : uint8_t { kNode, kService, kTask, kNetwork, kCluster, kSecret, kConfig };
inline constexpr size_t kNumKinds = 7;
inline constexpr std::array<Kind, kNumKinds> kAllKinds = {
    Kind::kNode,    Kind::kService, Kind::kTask,  Kind::kNetwork,
    Kind::kCluster, Kind::kSecret,  Kind::kConfig};

// "node", "service", "task", "network", "cluster", "secret", "config".
absl::string_view KindName(Kind kind);

// Secondary indexes. Which kinds carry which index:
//   kName          every kind (annotations name, lower-cased; nodes fall back to hostname)
//   kService       task.service_id
//   kNode          task.node_id
//   kSlot          task (service_id, slot)
//   kDesiredState  task.desired_state
//   kState         task.status.state
//   kNetwork       task attachments + spec networks, service spec networks, node attachments
//   kSecret        task / service container secrets (secret_id)
//   kConfig        task / service container configs (config_id)
enum class Index : uint8_t {
  kName,
  kService,
  kNode,
  kSlot,
  kDesiredState,
  kState,
  kNetwork,
  kSecret,
  kConfig,
};
inline constexpr size_t kNumIndexes = 9;
absl::string_view IndexName(Index index);

template <typename T>
struct KindOf;
template <>
struct KindOf<api::Node> {
  static constexpr Kind value = Kind::kNode;
};
template <>
struct KindOf<api::Service> {
  static constexpr Kind value = Kind::kService;
};
template <>
struct KindOf<api::Task> {
  static constexpr Kind value = Kind::kTask;
};
template <>
struct KindOf<api::Network> {
  static constexpr Kind value = Kind::kNetwork;
};
template <>
struct KindOf<api::Cluster> {
  static constexpr Kind value = Kind::kCluster;
};
template <>
struct KindOf<api::Secret> {
  static constexpr Kind value = Kind::kSecret;
};
template <>
struct KindOf<api::Config> {
  static constexpr Kind value = Kind::kConfig;
};

const std::string& ObjectId(Kind kind, const Message& m);
const api::Meta& ObjectMeta(Kind kind, const Message& m);
api::Meta* MutableObjectMeta(Kind kind, Message* m);
// The name the kName index and uniqueness use ("" when the object has none).
const std::string& ObjectName(Kind kind, const Message& m);
// Services, networks, secrets, configs and clusters have names unique per kind
// (case-insensitive, as in SwarmKit); nodes and tasks do not.
bool NamesUnique(Kind kind);
std::unique_ptr<Message> NewObject(Kind kind);

// The index value(s) of `m` for `index` (empty when the kind does not carry the index).
// Values are encoded so that equal inputs give equal strings; see By* in by.h.
std::vector<std::string> IndexValues(Kind kind, Index index, const Message& m);

// Encodings shared with the lookup side (by.h).
std::string LowerName(absl::string_view name);
std::string SlotValue(absl::string_view service_id, uint64_t slot);
std::string StateValue(int state);

// Structural checks the store enforces on every write: id present, index values free of NUL
// (the index key separator), name present for kinds with unique names. Error names the field.
absl::Status CheckObject(Kind kind, const Message& m);

// StoreAction plumbing.
absl::StatusOr<Kind> ActionKind(const api::StoreAction& action);
const Message& ActionObject(const api::StoreAction& action);
Message* MutableActionObject(api::StoreAction* action, Kind kind);

// StoreSnapshot plumbing.
void AddToSnapshot(Kind kind, const Message& m, api::StoreSnapshot* snapshot);
int SnapshotCount(Kind kind, const api::StoreSnapshot& snapshot);
const Message& SnapshotObject(Kind kind, const api::StoreSnapshot& snapshot, int i);

}  // namespace shoal::manager::store
