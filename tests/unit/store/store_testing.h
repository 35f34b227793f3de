// Shared fixtures for the store tests: object builders and a single-node store on a
// FakeProposer.
#pragma once

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "base/clock.h"
#include "base/random.h"
#include "base/status.h"
#include "manager/store/fake_proposer.h"
#include "manager/store/store.h"

namespace shoal::manager::store::testing {

inline api::Task MakeTask(const std::string& id, const std::string& service,
                          const std::string& node, uint64_t slot,
                          api::TaskState state = api::TASK_STATE_NEW) {
  api::Task t;
  t.set_id(id);
  t.set_service_id(service);
  t.set_node_id(node);
  t.set_slot(slot);
  t.set_desired_state(api::TASK_STATE_RUNNING);
  t.mutable_status()->set_state(state);
  t.mutable_annotations()->set_name(absl::StrCat(service, ".", slot, ".", id));
  return t;
}

inline api::Service MakeService(const std::string& id, const std::string& name) {
  api::Service s;
  s.set_id(id);
  s.mutable_spec()->mutable_annotations()->set_name(name);
  s.mutable_spec()->mutable_replicated()->set_replicas(1);
  return s;
}

inline api::Network MakeNetwork(const std::string& id, const std::string& name) {
  api::Network n;
  n.set_id(id);
  n.mutable_spec()->mutable_annotations()->set_name(name);
  return n;
}

inline api::Secret MakeSecret(const std::string& id, const std::string& name,
                              const std::string& data = "s3cret") {
  api::Secret s;
  s.set_id(id);
  s.mutable_spec()->mutable_annotations()->set_name(name);
  s.mutable_spec()->set_data(data);
  return s;
}

inline api::Config MakeConfig(const std::string& id, const std::string& name) {
  api::Config c;
  c.set_id(id);
  c.mutable_spec()->mutable_annotations()->set_name(name);
  c.mutable_spec()->set_data("cfg");
  return c;
}

inline api::Node MakeNode(const std::string& id, const std::string& hostname) {
  api::Node n;
  n.set_id(id);
  n.mutable_description()->set_hostname(hostname);
  return n;
}

// A leader store on a FakeProposer with a fake clock.
struct StoreEnv {
  explicit StoreEnv(StoreOptions options = {})
      : random(42), store(&proposer, &clock, &random, options) {
    proposer.Attach(&store);
  }
  base::FakeClock clock;
  base::FakeRandom random;
  FakeProposer proposer;
  MemoryStore store;
};

}  // namespace shoal::manager::store::testing
