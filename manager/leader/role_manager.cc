#include "manager/leader/role_manager.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "base/status.h"
#include "manager/controlapi/control_service.h"

namespace shoal::manager::leader {

namespace api = ::shoal::api::v1;

namespace {

bool Pending(const api::Node& n) { return n.spec().desired_role() != n.role(); }

}  // namespace

absl::Status RaftNodeMembership::TransferLeadership() {
  raft::NodeStatus st = node_.Status();
  for (const auto& m : st.members) {
    if (m.raft_id() == node_.id()) continue;
    if (std::find(st.learners.begin(), st.learners.end(), m.raft_id()) != st.learners.end()) {
      continue;  // a learner cannot lead
    }
    return node_.TransferLeadership(m.raft_id(), timeout_);
  }
  return absl::FailedPreconditionError("no other voting manager to hand leadership to");
}

void RoleManager::Init(const store::ReadView& view) {
  pending_.clear();
  for (const auto& n : view.Find<api::Node>(store::All())) {
    if (Pending(*n)) pending_.insert(n->id());
  }
}

void RoleManager::Observe(const store::Commit& commit) {
  for (const auto& e : commit.events) {
    const auto* n = e.Get<api::Node>();
    if (n == nullptr) continue;
    // A refused demotion stays pending and is re-checked every round (reachability changes).
    if (e.type != store::EventType::kDelete && Pending(*n)) {
      pending_.insert(n->id());
    } else {
      pending_.erase(n->id());
    }
  }
}

absl::Status RoleManager::Reconcile(store::MemoryStore& store, const api::Node& node) {
  auto set_role = [&](api::NodeRole role, const std::string& message) {
    return store
        .Update([&](store::Tx& tx) -> absl::Status {
          auto cur = tx.Get<api::Node>(node.id());
          if (cur == nullptr) return absl::OkStatus();
          api::Node copy = *cur;
          copy.set_role(role);
          copy.set_role_message(message);
          if (role == api::NODE_ROLE_WORKER && copy.role() != cur->role()) {
            copy.clear_manager_status();
          }
          return tx.Update(copy);
        })
        .status();
  };
  if (node.spec().desired_role() == api::NODE_ROLE_MANAGER) {
    return set_role(api::NODE_ROLE_MANAGER, "");
  }
  auto view = store.View();
  if (absl::Status ok =
          controlapi::CheckDemotion(view, node, controlapi::MembersFromStore(view));
      !ok.ok()) {
    if (node.role_message() == ok.message()) return absl::OkStatus();
    return set_role(node.role(), std::string(ok.message()));
  }
  const uint64_t raft_id = node.manager_status().raft_id();
  if (raft_id != 0) {
    if (raft_id == raft_.self()) {
      // Demoting the leader itself: another member takes over and finishes the demotion.
      return raft_.TransferLeadership();
    }
    RETURN_IF_ERROR(raft_.RemoveMember(raft_id));
  }
  return set_role(api::NODE_ROLE_WORKER, "");
}

absl::Status RoleManager::Step(store::MemoryStore& store, absl::Time) {
  if (pending_.empty()) return absl::OkStatus();
  absl::Status result;
  auto view = store.View();
  for (const auto& id : std::set<std::string>(pending_)) {
    auto node = view.Get<api::Node>(id);
    if (node == nullptr || !Pending(*node)) {
      pending_.erase(id);
      continue;
    }
    result.Update(Reconcile(store, *node));
  }
  return result;
}

}  // namespace shoal::manager::leader
