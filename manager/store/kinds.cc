#include "manager/store/kinds.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/check.h"

namespace shoal::manager::store {
namespace {

// Dispatches on the kind with the message cast to its concrete type.
template <typename F>
decltype(auto) Visit(Kind kind, const Message& m, F&& f) {
  switch (kind) {
    case Kind::kNode:
      return f(static_cast<const api::Node&>(m));
    case Kind::kService:
      return f(static_cast<const api::Service&>(m));
    case Kind::kTask:
      return f(static_cast<const api::Task&>(m));
    case Kind::kNetwork:
      return f(static_cast<const api::Network&>(m));
    case Kind::kCluster:
      return f(static_cast<const api::Cluster&>(m));
    case Kind::kSecret:
      return f(static_cast<const api::Secret&>(m));
    case Kind::kConfig:
      return f(static_cast<const api::Config&>(m));
  }
  CHECK(false) << "unknown kind " << static_cast<int>(kind);
  return f(static_cast<const api::Node&>(m));
}

void AddUnique(std::vector<std::string>* out, const std::string& v) {
  if (v.empty()) return;
  if (std::find(out->begin(), out->end(), v) == out->end()) out->push_back(v);
}

void ContainerRefs(Index index, const api::ContainerSpec& c, std::vector<std::string>* out) {
  if (index == Index::kSecret) {
    for (const auto& s : c.secrets()) AddUnique(out, s.secret_id());
  } else if (index == Index::kConfig) {
    for (const auto& s : c.configs()) AddUnique(out, s.config_id());
  }
}

}  // namespace

absl::string_view KindName(Kind kind) {
  switch (kind) {
    case Kind::kNode:
      return "node";
    case Kind::kService:
      return "service";
    case Kind::kTask:
      return "task";
    case Kind::kNetwork:
      return "network";
    case Kind::kCluster:
      return "cluster";
    case Kind::kSecret:
      return "secret";
    case Kind::kConfig:
      return "config";
  }
  return "unknown";
}

absl::string_view IndexName(Index index) {
  switch (index) {
    case Index::kName:
      return "name";
    case Index::kService:
      return "service";
    case Index::kNode:
      return "node";
    case Index::kSlot:
      return "slot";
    case Index::kDesiredState:
      return "desired_state";
    case Index::kState:
      return "state";
    case Index::kNetwork:
      return "network";
    case Index::kSecret:
      return "secret";
    case Index::kConfig:
      return "config";
  }
  return "unknown";
}

const std::string& ObjectId(Kind kind, const Message& m) {
  return Visit(kind, m, [](const auto& o) -> const std::string& { return o.id(); });
}

const api::Meta& ObjectMeta(Kind kind, const Message& m) {
  return Visit(kind, m, [](const auto& o) -> const api::Meta& { return o.meta(); });
}

api::Meta* MutableObjectMeta(Kind kind, Message* m) {
  return Visit(kind, *m, [](const auto& o) -> api::Meta* {
    using T = std::decay_t<decltype(o)>;
    return const_cast<T&>(o).mutable_meta();
  });
}

const std::string& ObjectName(Kind kind, const Message& m) {
  switch (kind) {
    case Kind::kNode: {
      const auto& n = static_cast<const api::Node&>(m);
      return n.spec().annotations().name().empty() ? n.description().hostname()
                                                   : n.spec().annotations().name();
    }
    case Kind::kTask:
      return static_cast<const api::Task&>(m).annotations().name();
    case Kind::kService:
      return static_cast<const api::Service&>(m).spec().annotations().name();
    case Kind::kNetwork:
      return static_cast<const api::Network&>(m).spec().annotations().name();
    case Kind::kCluster:
      return static_cast<const api::Cluster&>(m).spec().annotations().name();
    case Kind::kSecret:
      return static_cast<const api::Secret&>(m).spec().annotations().name();
    case Kind::kConfig:
      return static_cast<const api::Config&>(m).spec().annotations().name();
  }
  CHECK(false) << "unknown kind";
  return static_cast<const api::Task&>(m).id();
}

bool NamesUnique(Kind kind) { return kind != Kind::kNode && kind != Kind::kTask; }

std::unique_ptr<Message> NewObject(Kind kind) {
  switch (kind) {
    case Kind::kNode:
      return std::make_unique<api::Node>();
    case Kind::kService:
      return std::make_unique<api::Service>();
    case Kind::kTask:
      return std::make_unique<api::Task>();
    case Kind::kNetwork:
      return std::make_unique<api::Network>();
    case Kind::kCluster:
      return std::make_unique<api::Cluster>();
    case Kind::kSecret:
      return std::make_unique<api::Secret>();
    case Kind::kConfig:
      return std::make_unique<api::Config>();
  }
  CHECK(false) << "unknown kind";
  return nullptr;
}

std::string LowerName(absl::string_view name) { return absl::AsciiStrToLower(name); }

std::string SlotValue(absl::string_view service_id, uint64_t slot) {
  // Fixed width so that the encoding of one slot is never a prefix of another's.
  return absl::StrFormat("%s/%020u", service_id, slot);
}

std::string StateValue(int state) { return absl::StrFormat("%010d", state); }

std::vector<std::string> IndexValues(Kind kind, Index index, const Message& m) {
  std::vector<std::string> out;
  if (index == Index::kName) {
    const std::string& name = ObjectName(kind, m);
    if (!name.empty()) out.push_back(LowerName(name));
    return out;
  }
  switch (kind) {
    case Kind::kTask: {
      const auto& t = static_cast<const api::Task&>(m);
      switch (index) {
        case Index::kService:
          AddUnique(&out, t.service_id());
          break;
        case Index::kNode:
          AddUnique(&out, t.node_id());
          break;
        case Index::kSlot:
          if (!t.service_id().empty()) out.push_back(SlotValue(t.service_id(), t.slot()));
          break;
        case Index::kDesiredState:
          out.push_back(StateValue(t.desired_state()));
          break;
        case Index::kState:
          out.push_back(StateValue(t.status().state()));
          break;
        case Index::kNetwork:
          for (const auto& a : t.networks()) AddUnique(&out, a.network_id());
          for (const auto& a : t.spec().networks()) AddUnique(&out, a.target());
          break;
        case Index::kSecret:
        case Index::kConfig:
          ContainerRefs(index, t.spec().container(), &out);
          break;
        default:
          break;
      }
      break;
    }
    case Kind::kService: {
      const auto& s = static_cast<const api::Service&>(m);
      if (index == Index::kNetwork) {
        for (const auto& a : s.spec().task().networks()) AddUnique(&out, a.target());
      } else {
        ContainerRefs(index, s.spec().task().container(), &out);
      }
      break;
    }
    case Kind::kNode: {
      const auto& n = static_cast<const api::Node&>(m);
      if (index == Index::kNetwork) {
        for (const auto& a : n.attachments()) AddUnique(&out, a.network_id());
      }
      break;
    }
    default:
      break;
  }
  return out;
}

absl::Status CheckObject(Kind kind, const Message& m) {
  const std::string& id = ObjectId(kind, m);
  if (id.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(KindName(kind), ": field id is empty"));
  }
  if (id.find('\0') != std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat(KindName(kind), " id \"", absl::CHexEscape(id), "\": contains NUL"));
  }
  if (NamesUnique(kind) && ObjectName(kind, m).empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(KindName(kind), " ", id, ": field spec.annotations.name is empty"));
  }
  for (size_t i = 0; i < kNumIndexes; ++i) {
    for (const std::string& v : IndexValues(kind, static_cast<Index>(i), m)) {
      if (v.find('\0') != std::string::npos) {
        return absl::InvalidArgumentError(absl::StrCat(KindName(kind), " ", id, ": value of the ",
                                                       IndexName(static_cast<Index>(i)),
                                                       " index contains NUL"));
      }
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<Kind> ActionKind(const api::StoreAction& action) {
  switch (action.target_case()) {
    case api::StoreAction::kNode:
      return Kind::kNode;
    case api::StoreAction::kService:
      return Kind::kService;
    case api::StoreAction::kTask:
      return Kind::kTask;
    case api::StoreAction::kNetwork:
      return Kind::kNetwork;
    case api::StoreAction::kCluster:
      return Kind::kCluster;
    case api::StoreAction::kSecret:
      return Kind::kSecret;
    case api::StoreAction::kConfig:
      return Kind::kConfig;
    case api::StoreAction::TARGET_NOT_SET:
      break;
  }
  return absl::InvalidArgumentError("store action: field target is not set");
}

const Message& ActionObject(const api::StoreAction& a) {
  switch (a.target_case()) {
    case api::StoreAction::kNode:
      return a.node();
    case api::StoreAction::kService:
      return a.service();
    case api::StoreAction::kTask:
      return a.task();
    case api::StoreAction::kNetwork:
      return a.network();
    case api::StoreAction::kCluster:
      return a.cluster();
    case api::StoreAction::kSecret:
      return a.secret();
    case api::StoreAction::kConfig:
      return a.config();
    case api::StoreAction::TARGET_NOT_SET:
      break;
  }
  CHECK(false) << "store action without target";
  return a;
}

Message* MutableActionObject(api::StoreAction* a, Kind kind) {
  switch (kind) {
    case Kind::kNode:
      return a->mutable_node();
    case Kind::kService:
      return a->mutable_service();
    case Kind::kTask:
      return a->mutable_task();
    case Kind::kNetwork:
      return a->mutable_network();
    case Kind::kCluster:
      return a->mutable_cluster();
    case Kind::kSecret:
      return a->mutable_secret();
    case Kind::kConfig:
      return a->mutable_config();
  }
  CHECK(false) << "unknown kind";
  return nullptr;
}

void AddToSnapshot(Kind kind, const Message& m, api::StoreSnapshot* s) {
  Message* dst = nullptr;
  switch (kind) {
    case Kind::kNode:
      dst = s->add_nodes();
      break;
    case Kind::kService:
      dst = s->add_services();
      break;
    case Kind::kTask:
      dst = s->add_tasks();
      break;
    case Kind::kNetwork:
      dst = s->add_networks();
      break;
    case Kind::kCluster:
      dst = s->add_clusters();
      break;
    case Kind::kSecret:
      dst = s->add_secrets();
      break;
    case Kind::kConfig:
      dst = s->add_configs();
      break;
  }
  dst->CopyFrom(m);
}

int SnapshotCount(Kind kind, const api::StoreSnapshot& s) {
  switch (kind) {
    case Kind::kNode:
      return s.nodes_size();
    case Kind::kService:
      return s.services_size();
    case Kind::kTask:
      return s.tasks_size();
    case Kind::kNetwork:
      return s.networks_size();
    case Kind::kCluster:
      return s.clusters_size();
    case Kind::kSecret:
      return s.secrets_size();
    case Kind::kConfig:
      return s.configs_size();
  }
  return 0;
}

const Message& SnapshotObject(Kind kind, const api::StoreSnapshot& s, int i) {
  switch (kind) {
    case Kind::kNode:
      return s.nodes(i);
    case Kind::kService:
      return s.services(i);
    case Kind::kTask:
      return s.tasks(i);
    case Kind::kNetwork:
      return s.networks(i);
    case Kind::kCluster:
      return s.clusters(i);
    case Kind::kSecret:
      return s.secrets(i);
    case Kind::kConfig:
      return s.configs(i);
  }
  CHECK(false) << "unknown kind";
  return s;
}

}  // namespace shoal::manager::store
