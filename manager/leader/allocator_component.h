// AllocatorComponent: runs manager/allocator in the leader loop.
//
//   networks  allocated when created (subnet, gateway, VNI); released when deleted
//   services  endpoint (published ports, VIPs) allocated when created or when their endpoint
//             spec or networks change; failures land in service.allocation_error
//   tasks     NEW -> PENDING once their addresses are allocated (and their service's
//             endpoint is); failures land in task status.err and are retried whenever
//             something is released; addresses are released when the task finishes or is
//             deleted
//   nodes     an address on the ingress network per node (Node.attachments: its ingress
//             sandbox), allocated when the node or the ingress network appears, released when
//             the node is deleted
// Init rebuilds the allocator from the store (Restore), so allocations survive leader changes.
#pragma once

#include <map>
#include <memory>
#include <set>
#include <string>

#include "manager/allocator/allocator.h"
#include "manager/leader/loop.h"

namespace shoal::manager::leader {

class AllocatorComponent final : public Component {
 public:
  explicit AllocatorComponent(allocator::AllocatorConfig config = {})
      : config_(std::move(config)) {}
  const char* name() const override { return "allocator"; }
  void Init(const store::ReadView& view) override;
  void Observe(const store::Commit& commit) override;
  absl::Status Step(store::MemoryStore& store, absl::Time now) override;

 private:
  void ObserveTask(const api::v1::Task& t, bool deleted);
  std::map<std::string, api::v1::Network> Networks(const store::ReadTx& tx) const;

  allocator::AllocatorConfig config_;
  std::unique_ptr<allocator::Allocator> alloc_;
  std::set<std::string> networks_;             // to allocate
  std::set<std::string> services_;             // to (re)allocate
  std::set<std::string> tasks_;                // NEW tasks to allocate
  std::set<std::string> waiting_;              // NEW tasks that failed; retried after a release
  std::map<std::string, api::v1::Task> held_;  // tasks whose addresses are allocated
  std::set<std::string> known_nodes_;
  std::set<std::string> nodes_;  // to check for a missing ingress attachment
};

}  // namespace shoal::manager::leader
