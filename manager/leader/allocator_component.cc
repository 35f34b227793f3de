#include "manager/leader/allocator_component.h"

#include "absl/strings/str_cat.h"
#include "base/log.h"
#include "base/status.h"
#include "google/protobuf/util/message_differencer.h"
#include "google/protobuf/util/time_util.h"

namespace shoal::manager::leader {

namespace api = ::shoal::api::v1;
using google::protobuf::util::MessageDifferencer;

namespace {

bool Finished(const api::Task& t) { return t.status().state() > api::TASK_STATE_RUNNING; }

// The endpoint needs (re)allocation when it was never allocated or its spec changed.
bool NeedsEndpoint(const api::Service& s) {
  if (!s.has_endpoint()) return true;
  if (!MessageDifferencer::Equals(s.endpoint().spec(), s.spec().endpoint())) return true;
  if (s.spec().endpoint().mode() == api::EndpointSpec::RESOLUTION_MODE_DNSRR) return false;
  std::set<std::string> want, have;
  for (const auto& n : s.spec().task().networks()) want.insert(n.target());
  for (const auto& v : s.endpoint().virtual_ips()) have.insert(v.network_id());
  for (const auto& w : want) {
    if (!have.contains(w)) return true;
  }
  return false;
}

}  // namespace

std::map<std::string, api::Network> AllocatorComponent::Networks(const store::ReadTx& tx) const {
  std::map<std::string, api::Network> out;
  for (const auto& n : tx.Find<api::Network>(store::All())) out[n->id()] = *n;
  return out;
}

void AllocatorComponent::Init(const store::ReadView& view) {
  alloc_ = std::make_unique<allocator::Allocator>(*allocator::Allocator::Create(config_));
  networks_.clear();
  services_.clear();
  tasks_.clear();
  waiting_.clear();
  held_.clear();
  auto log = base::Logger("allocator");
  for (const auto& n : view.Find<api::Network>(store::All())) {
    if (n->ipam().configs().empty()) {
      networks_.insert(n->id());
    } else if (auto s = alloc_->RestoreNetwork(*n); !s.ok()) {
      log->error("{}", s.ToString());
    }
  }
  known_nodes_.clear();
  nodes_.clear();
  for (const auto& n : view.Find<api::Node>(store::All())) {
    if (auto st = alloc_->RestoreNode(*n); !st.ok()) log->error("{}", st.ToString());
    known_nodes_.insert(n->id());
    if (alloc_->NodeNeedsAllocation(*n)) nodes_.insert(n->id());
  }
  for (const auto& s : view.Find<api::Service>(store::All())) {
    if (auto st = alloc_->RestoreService(*s); !st.ok()) log->error("{}", st.ToString());
    if (NeedsEndpoint(*s)) services_.insert(s->id());
  }
  for (const auto& t : view.Find<api::Task>(store::All())) ObserveTask(*t, false);
}

void AllocatorComponent::ObserveTask(const api::Task& t, bool deleted) {
  auto held = held_.find(t.id());
  if (deleted || Finished(t)) {
    if (held != held_.end()) {
      alloc_->ReleaseTask(held->second);
      held_.erase(held);
      tasks_.insert(waiting_.begin(), waiting_.end());  // room may have been freed
      waiting_.clear();
    }
    tasks_.erase(t.id());
    waiting_.erase(t.id());
    return;
  }
  if (t.status().state() == api::TASK_STATE_NEW) {
    if (!waiting_.contains(t.id())) tasks_.insert(t.id());
  } else if (held == held_.end() && !t.networks().empty()) {
    // Allocated earlier (by us or a previous leader): hold it.
    if (auto s = alloc_->RestoreTask(t); !s.ok()) {
      base::Logger("allocator")->error("{}", s.ToString());
    }
    held_[t.id()] = t;
  }
}

void AllocatorComponent::Observe(const store::Commit& commit) {
  for (const auto& e : commit.events) {
    const bool deleted = e.type == store::EventType::kDelete;
    if (const auto* n = e.Get<api::Network>()) {
      if (deleted) {
        alloc_->ReleaseNetwork(*n);
      } else if (n->ipam().configs().empty()) {
        networks_.insert(n->id());
      }
      if (n->spec().ingress()) nodes_.insert(known_nodes_.begin(), known_nodes_.end());
    } else if (const auto* node = e.Get<api::Node>()) {
      if (deleted) {
        alloc_->ReleaseNode(*node);
        known_nodes_.erase(node->id());
        nodes_.erase(node->id());
      } else {
        known_nodes_.insert(node->id());
        if (alloc_->NodeNeedsAllocation(*node)) nodes_.insert(node->id());
      }
    } else if (const auto* s = e.Get<api::Service>()) {
      if (deleted) {
        alloc_->ReleaseService(*s);
        services_.erase(s->id());
        tasks_.insert(waiting_.begin(), waiting_.end());
        waiting_.clear();
      } else if (NeedsEndpoint(*s)) {
        services_.insert(s->id());
      }
    } else if (const auto* t = e.Get<api::Task>()) {
      ObserveTask(*t, deleted);
    }
  }
}

absl::Status AllocatorComponent::Step(store::MemoryStore& store, absl::Time now) {
  if (networks_.empty() && services_.empty() && tasks_.empty() && nodes_.empty()) {
    return absl::OkStatus();
  }
  auto nets = std::move(networks_);
  auto svcs = std::move(services_);
  auto tasks = std::move(tasks_);
  auto nodes = std::move(nodes_);
  networks_.clear();
  services_.clear();
  tasks_.clear();
  nodes_.clear();
  auto ts = google::protobuf::util::TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(now));
  auto r = store.BatchUpdate([&](store::Batch& batch) -> absl::Status {
    for (const auto& id : nets) {
      RETURN_IF_ERROR(batch.Update([&](store::Tx& tx) -> absl::Status {
        auto n = tx.Get<api::Network>(id);
        if (n == nullptr || !n->ipam().configs().empty()) return absl::OkStatus();
        auto allocated = alloc_->AllocateNetwork(*n);
        if (!allocated.ok()) {
          base::Logger("allocator")->error("{}", allocated.status().ToString());
          return absl::OkStatus();
        }
        return tx.Update(*allocated);
      }));
    }
    for (const auto& id : nodes) {
      RETURN_IF_ERROR(batch.Update([&](store::Tx& tx) -> absl::Status {
        auto n = tx.Get<api::Node>(id);
        if (n == nullptr || !alloc_->NodeNeedsAllocation(*n)) return absl::OkStatus();
        auto allocated = alloc_->AllocateNode(*n);
        if (!allocated.ok()) {
          base::Logger("allocator")->error("node {}: {}", id, allocated.status().ToString());
          return absl::OkStatus();
        }
        return tx.Update(*allocated);  // a failed batch rebuilds the allocator (Init)
      }));
    }
    for (const auto& id : svcs) {
      RETURN_IF_ERROR(batch.Update([&](store::Tx& tx) -> absl::Status {
        auto s = tx.Get<api::Service>(id);
        if (s == nullptr || !NeedsEndpoint(*s)) return absl::OkStatus();
        auto allocated = alloc_->AllocateService(*s, Networks(tx));
        if (!allocated.ok()) {
          std::string why(allocated.status().message());
          if (s->allocation_error() == why) return absl::OkStatus();
          api::Service copy = *s;
          copy.set_allocation_error(why);
          return tx.Update(copy);
        }
        return tx.Update(*allocated);
      }));
    }
    for (const auto& id : tasks) {
      RETURN_IF_ERROR(batch.Update([&](store::Tx& tx) -> absl::Status {
        auto t = tx.Get<api::Task>(id);
        if (t == nullptr || t->status().state() != api::TASK_STATE_NEW) return absl::OkStatus();
        std::shared_ptr<const api::Service> svc;
        if (!t->service_id().empty()) {
          svc = tx.Get<api::Service>(t->service_id());
          if (svc != nullptr && NeedsEndpoint(*svc)) {
            waiting_.insert(id);  // its service's endpoint comes first
            return absl::OkStatus();
          }
        }
        auto allocated = alloc_->AllocateTask(*t, svc.get(), Networks(tx));
        api::Task copy = allocated.ok() ? *allocated : *t;
        if (!allocated.ok()) {
          waiting_.insert(id);
          std::string why = absl::StrCat("allocating addresses: ", allocated.status().message());
          if (t->status().err() == why) return absl::OkStatus();
          copy.mutable_status()->set_err(why);
        } else {
          held_[id] = copy;
          copy.mutable_status()->set_state(api::TASK_STATE_PENDING);
          copy.mutable_status()->set_message("pending task scheduling");
          copy.mutable_status()->clear_err();
        }
        *copy.mutable_status()->mutable_timestamp() = ts;
        absl::Status s = tx.Update(copy);
        if (!s.ok() && allocated.ok()) {
          alloc_->ReleaseTask(*allocated);
          held_.erase(id);
        }
        return s;
      }));
    }
    return absl::OkStatus();
  });
  if (!r.ok()) {
    // A failed batch may have left allocations without records: rebuild from the store.
    Init(store.View());
    return r.status();
  }
  // A service whose endpoint just got allocated unblocks its waiting tasks.
  if (!svcs.empty()) {
    tasks_.insert(waiting_.begin(), waiting_.end());
    waiting_.clear();
  }
  return absl::OkStatus();
}

}  // namespace shoal::manager::leader
