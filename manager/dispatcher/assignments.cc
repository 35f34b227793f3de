#include "manager/dispatcher/assignments.h"

#include <algorithm>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"

namespace shoal::manager::dispatcher {
namespace {

using TaskPtr = std::shared_ptr<const api::Task>;

bool Active(const api::Task& t) {
  return t.status().state() >= api::TASK_STATE_ASSIGNED &&
         t.status().state() <= api::TASK_STATE_RUNNING;
}

// 64-bit FNV-1a: stable across processes and versions (MACs must be the same on every leader).
uint64_t Fnv1a(absl::string_view a, absl::string_view b) {
  uint64_t h = 1469598103934665603ull;
  auto mix = [&](absl::string_view s) {
    for (unsigned char c : s) {
      h ^= c;
      h *= 1099511628211ull;
    }
  };
  mix(a);
  mix(absl::string_view("\0", 1));
  mix(b);
  return h;
}

Item MakeItem(api::Assignment a, uint64_t fingerprint) {
  Item item;
  item.fingerprint = fingerprint;
  item.assignment = std::make_shared<const api::Assignment>(std::move(a));
  return item;
}

Item MakeItem(api::Assignment a) {
  uint64_t fp = Fingerprint(a);
  return MakeItem(std::move(a), fp);
}

// The address part of "1.2.3.4:5678", "ipv4:1.2.3.4:5678", "[::1]:5" (session peer strings).
std::string HostOf(absl::string_view addr) {
  for (absl::string_view p : {"ipv4:", "ipv6:"}) {
    if (absl::StartsWith(addr, p)) addr.remove_prefix(p.size());
  }
  if (absl::StartsWith(addr, "unix:")) return "";
  if (!addr.empty() && addr.front() == '[') {
    size_t end = addr.find(']');
    return end == absl::string_view::npos ? "" : std::string(addr.substr(1, end - 1));
  }
  size_t colon = addr.rfind(':');
  if (colon != absl::string_view::npos && addr.find(':') == colon) addr = addr.substr(0, colon);
  return std::string(addr);
}

std::string NodeVtep(const store::ReadTx& tx, const std::string& node_id) {
  auto node = tx.Get<api::Node>(node_id);
  if (node == nullptr) return "";
  if (!node->vtep_addr().empty()) return node->vtep_addr();
  return HostOf(node->status().addr());
}

api::Service ReducedService(const api::Service& s) {
  api::Service out;
  out.set_id(s.id());
  *out.mutable_spec()->mutable_annotations() = s.spec().annotations();
  *out.mutable_spec()->mutable_endpoint() = s.spec().endpoint();
  *out.mutable_spec()->mutable_task()->mutable_networks() = s.spec().task().networks();
  *out.mutable_endpoint() = s.endpoint();
  return out;
}

bool ServiceOnNetwork(const api::Service& s, const api::Network& n) {
  for (const auto& vip : s.endpoint().virtual_ips()) {
    if (vip.network_id() == n.id()) return true;
  }
  for (const auto& att : s.spec().task().networks()) {
    if (att.target() == n.id() || att.target() == n.spec().annotations().name()) return true;
  }
  return false;
}

std::shared_ptr<const NetworkItems> ComputeNetwork(const store::ReadTx& tx,
                                                   const std::string& network_id) {
  auto out = std::make_shared<NetworkItems>();
  out->version = tx.version();
  auto net = tx.Get<api::Network>(network_id);
  if (net == nullptr) return out;
  {
    api::Assignment a;
    *a.mutable_network()->mutable_network() = *net;
    out->items.emplace(absl::StrCat("n/", network_id), MakeItem(std::move(a)));
  }
  std::set<std::string> service_ids;
  absl::flat_hash_map<std::string, std::string> vteps;
  tx.ForEach<api::Task>(store::ByNetworkId(network_id), [&](const TaskPtr& t) {
    if (t->node_id().empty() || !Active(*t) || t->desired_state() > api::TASK_STATE_RUNNING) {
      return true;
    }
    for (const auto& att : t->networks()) {
      if (att.network_id() != network_id || att.addresses().empty()) continue;
      auto [it, fresh] = vteps.try_emplace(t->node_id());
      if (fresh) it->second = NodeVtep(tx, t->node_id());
      api::Assignment a;
      api::EndpointRecord* e = a.mutable_endpoint();
      e->set_task_id(t->id());
      e->set_network_id(network_id);
      e->set_ip(att.addresses(0));
      e->set_mac(att.mac_address().empty() ? EndpointMac(t->id(), network_id) : att.mac_address());
      e->set_node_vtep(it->second);
      e->set_node_id(t->node_id());
      e->set_service_id(t->service_id());
      e->set_service_name(t->service_annotations().name());
      e->set_task_name(t->annotations().name());
      *e->mutable_aliases() = att.aliases();
      e->set_running(t->status().state() == api::TASK_STATE_RUNNING);
      out->items.emplace(absl::StrCat("e/", t->id(), "/", network_id), MakeItem(std::move(a)));
      if (!t->service_id().empty()) service_ids.insert(t->service_id());
      break;
    }
    return true;
  });
  // Each node's ingress sandbox (its Node.attachments address): a peer every node programs, so
  // replies to a routing-mesh flow masqueraded on one node come back to it.
  if (net->spec().ingress()) {
    tx.ForEach<api::Node>(store::All(), [&](const std::shared_ptr<const api::Node>& node) {
      for (const auto& att : node->attachments()) {
        if (att.network_id() != network_id || att.addresses().empty()) continue;
        std::string id = absl::StrCat(kIngressSandboxPrefix, node->id());
        api::Assignment a;
        api::EndpointRecord* e = a.mutable_endpoint();
        e->set_task_id(id);
        e->set_network_id(network_id);
        e->set_ip(att.addresses(0));
        e->set_mac(EndpointMac(id, network_id));
        e->set_node_vtep(NodeVtep(tx, node->id()));
        e->set_node_id(node->id());
        out->items.emplace(absl::StrCat("e/", id, "/", network_id), MakeItem(std::move(a)));
      }
      return true;
    });
  }
  tx.ForEach<api::Service>(store::ByNetworkId(network_id), [&](const auto& s) {
    service_ids.insert(s->id());
    return true;
  });
  if (!net->spec().annotations().name().empty()) {
    tx.ForEach<api::Service>(store::ByNetworkId(net->spec().annotations().name()),
                             [&](const auto& s) {
                               service_ids.insert(s->id());
                               return true;
                             });
  }
  // Services with a VIP here but no task yet (and no spec entry: the ingress VIP).
  if (net->spec().ingress()) {
    tx.ForEach<api::Service>(store::All(), [&](const auto& s) {
      if (ServiceOnNetwork(*s, *net)) service_ids.insert(s->id());
      return true;
    });
  }
  for (const auto& id : service_ids) {
    auto s = tx.Get<api::Service>(id);
    if (s == nullptr) continue;
    api::Assignment a;
    *a.mutable_service() = ReducedService(*s);
    out->items.emplace(absl::StrCat("v/", id), MakeItem(std::move(a)));
  }
  return out;
}

api::Assignment Bare(absl::string_view key) {
  api::Assignment a;
  absl::string_view id = key.substr(2);
  switch (key[0]) {
    case 't':
      a.mutable_task()->set_id(std::string(id));
      break;
    case 's':
      a.mutable_secret()->set_id(std::string(id));
      break;
    case 'c':
      a.mutable_config()->set_id(std::string(id));
      break;
    case 'n':
      a.mutable_network()->mutable_network()->set_id(std::string(id));
      break;
    case 'e': {
      size_t slash = id.find('/');
      a.mutable_endpoint()->set_task_id(std::string(id.substr(0, slash)));
      a.mutable_endpoint()->set_network_id(std::string(id.substr(slash + 1)));
      break;
    }
    case 'v':
      a.mutable_service()->set_id(std::string(id));
      break;
  }
  return a;
}

}  // namespace

uint64_t Fingerprint(const google::protobuf::Message& m) {
  std::string bytes;
  {
    google::protobuf::io::StringOutputStream sos(&bytes);
    google::protobuf::io::CodedOutputStream cos(&sos);
    cos.SetSerializationDeterministic(true);
    m.SerializeToCodedStream(&cos);
  }
  return Fnv1a(bytes, "");
}

std::string EndpointMac(absl::string_view task_id, absl::string_view network_id) {
  uint64_t h = Fnv1a(task_id, network_id);
  return absl::StrFormat("02:%02x:%02x:%02x:%02x:%02x", (h >> 32) & 0xff, (h >> 24) & 0xff,
                         (h >> 16) & 0xff, (h >> 8) & 0xff, h & 0xff);
}

std::shared_ptr<const NetworkItems> NetworkCache::Get(const store::ReadTx& tx,
                                                      const std::string& network_id) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = by_network_.find(network_id);
    if (it != by_network_.end() && it->second->version == tx.version()) return it->second;
  }
  auto items = ComputeNetwork(tx, network_id);
  std::lock_guard<std::mutex> lock(mu_);
  auto& slot = by_network_[network_id];
  if (slot == nullptr || slot->version <= items->version) slot = items;
  return items;
}

ItemSet ComputeSet(const store::ReadTx& tx, absl::string_view node_id, const SetOptions& options,
                   NetworkCache& cache, Refs* refs) {
  ItemSet set;
  std::set<std::string> secrets, configs, networks;
  tx.ForEach<api::Task>(store::ByNodeId(node_id), [&](const TaskPtr& t) {
    if (t->status().state() < api::TASK_STATE_ASSIGNED) return true;
    api::Assignment a;
    api::Task* task = a.mutable_task();
    *task = *t;
    for (auto& att : *task->mutable_networks()) {
      if (att.mac_address().empty()) att.set_mac_address(EndpointMac(t->id(), att.network_id()));
    }
    api::Task stripped = *task;
    stripped.clear_status();
    stripped.clear_meta();
    uint64_t fp = Fingerprint(stripped);
    set.emplace(absl::StrCat("t/", t->id()), MakeItem(std::move(a), fp));
    if (t->status().state() <= api::TASK_STATE_RUNNING) {
      for (const auto& s : t->spec().container().secrets()) secrets.insert(s.secret_id());
      for (const auto& c : t->spec().container().configs()) configs.insert(c.config_id());
      for (const auto& att : t->networks()) networks.insert(att.network_id());
    }
    return true;
  });
  for (const auto& id : secrets) {
    auto s = tx.Get<api::Secret>(id);
    if (s == nullptr) continue;
    api::Assignment a;
    *a.mutable_secret() = *s;
    set.emplace(absl::StrCat("s/", id), MakeItem(std::move(a)));
  }
  for (const auto& id : configs) {
    auto c = tx.Get<api::Config>(id);
    if (c == nullptr) continue;
    api::Assignment a;
    *a.mutable_config() = *c;
    set.emplace(absl::StrCat("c/", id), MakeItem(std::move(a)));
  }
  if (options.ingress_everywhere) {
    tx.ForEach<api::Network>(store::All(), [&](const auto& n) {
      if (n->spec().ingress()) networks.insert(n->id());
      return true;
    });
  }
  for (const auto& id : networks) {
    auto items = cache.Get(tx, id);
    for (const auto& [key, item] : items->items) set.emplace(key, item);
  }
  if (refs != nullptr) {
    refs->networks.assign(networks.begin(), networks.end());
    refs->secrets.assign(secrets.begin(), secrets.end());
    refs->configs.assign(configs.begin(), configs.end());
  }
  return set;
}

std::vector<api::AssignmentChange> Diff(const ItemSet& want, SentSet& sent) {
  std::vector<api::AssignmentChange> out;
  for (const auto& [key, item] : want) {
    auto it = sent.find(key);
    if (it != sent.end() && it->second == item.fingerprint) continue;
    api::AssignmentChange c;
    c.set_action(api::AssignmentChange::ACTION_UPDATE);
    *c.mutable_assignment() = *item.assignment;
    out.push_back(std::move(c));
    sent[key] = item.fingerprint;
  }
  std::vector<std::string> gone;
  for (const auto& [key, fp] : sent) {
    if (!want.contains(key)) gone.push_back(key);
  }
  std::sort(gone.begin(), gone.end());
  for (const auto& key : gone) {
    api::AssignmentChange c;
    c.set_action(api::AssignmentChange::ACTION_REMOVE);
    *c.mutable_assignment() = Bare(key);
    out.push_back(std::move(c));
    sent.erase(key);
  }
  return out;
}

std::vector<api::AssignmentChange> Complete(const ItemSet& want, SentSet& sent) {
  sent.clear();
  return Diff(want, sent);
}

}  // namespace shoal::manager::dispatcher
