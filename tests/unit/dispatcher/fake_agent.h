// Test fixture for the dispatcher: a store on a FakeProposer with a FakeClock, a Dispatcher
// served by a real gRPC server on a unix socket, and fake agents that talk to it as the agent
// would (identity in request metadata: MetadataIdentity).
#pragma once

#include <stdlib.h>

#include <condition_variable>
#include <deque>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "api/dispatcher.grpc.pb.h"
#include "base/clock.h"
#include "base/random.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "manager/dispatcher/dispatcher.h"
#include "manager/dispatcher/service.h"
#include "manager/store/fake_proposer.h"
#include "manager/store/store.h"

namespace shoal::manager::dispatcher::testing {

namespace api = ::shoal::api::v1;

// Polls `cond` until it holds or 10 s (real time) pass.
template <typename F>
bool Eventually(F cond) {
  absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (absl::Now() < deadline) {
    if (cond()) return true;
    absl::SleepFor(absl::Milliseconds(2));
  }
  return cond();
}

// Reads a server stream on a thread; messages and the final status are collected.
template <typename T>
class StreamReader {
 public:
  template <typename Open>
  explicit StreamReader(Open open) {
    reader_ = open(&ctx_);
    thread_ = std::thread([this] {
      T msg;
      while (reader_->Read(&msg)) {
        std::lock_guard<std::mutex> lock(mu_);
        messages_.push_back(msg);
        cv_.notify_all();
      }
      grpc::Status s = reader_->Finish();
      std::lock_guard<std::mutex> lock(mu_);
      status_ = s;
      done_ = true;
      cv_.notify_all();
    });
  }
  ~StreamReader() {
    ctx_.TryCancel();
    thread_.join();
  }
  // The n-th message (0-based), waiting up to 10 s; nullptr if it did not come.
  const T* Wait(size_t n) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, std::chrono::seconds(10), [&] { return messages_.size() > n || done_; });
    return messages_.size() > n ? &messages_[n] : nullptr;
  }
  size_t count() {
    std::lock_guard<std::mutex> lock(mu_);
    return messages_.size();
  }
  // The final status, waiting up to 10 s for the stream to end.
  std::optional<grpc::Status> Finished() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, std::chrono::seconds(10), [&] { return done_; });
    if (!done_) return std::nullopt;
    return status_;
  }
  void Cancel() { ctx_.TryCancel(); }

 private:
  grpc::ClientContext ctx_;
  std::unique_ptr<grpc::ClientReader<T>> reader_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<T> messages_;  // stable references while more arrive
  grpc::Status status_;
  bool done_ = false;
  std::thread thread_;
};

class FakeAgent {
 public:
  FakeAgent(std::shared_ptr<grpc::Channel> channel, std::string node_id)
      : stub_(api::Dispatcher::NewStub(channel)), node_id_(std::move(node_id)) {}

  void Identify(grpc::ClientContext* ctx) const {
    if (!node_id_.empty()) ctx->AddMetadata("x-shoal-node-id", node_id_);
  }

  // Opens a session and waits for its first message (the session id).
  std::unique_ptr<StreamReader<api::SessionMessage>> OpenSession(std::string vtep = "") {
    api::SessionRequest req;
    req.mutable_description()->set_hostname(absl::StrCat("host-", node_id_));
    req.set_vtep_addr(vtep);
    auto s = std::make_unique<StreamReader<api::SessionMessage>>([&](grpc::ClientContext* ctx) {
      Identify(ctx);
      return stub_->Session(ctx, req);
    });
    if (const auto* first = s->Wait(0)) session_id = first->session_id();
    return s;
  }
  grpc::Status Heartbeat(absl::Duration* period = nullptr, std::string session = "-") {
    grpc::ClientContext ctx;
    Identify(&ctx);
    api::HeartbeatRequest req;
    req.set_session_id(session == "-" ? session_id : session);
    api::HeartbeatResponse resp;
    grpc::Status s = stub_->Heartbeat(&ctx, req, &resp);
    if (period != nullptr) {
      *period = absl::Seconds(resp.period().seconds()) + absl::Nanoseconds(resp.period().nanos());
    }
    return s;
  }
  std::unique_ptr<StreamReader<api::AssignmentsMessage>> Assignments(std::string session = "-") {
    api::AssignmentsRequest req;
    req.set_session_id(session == "-" ? session_id : session);
    return std::make_unique<StreamReader<api::AssignmentsMessage>>([&](grpc::ClientContext* ctx) {
      Identify(ctx);
      return stub_->Assignments(ctx, req);
    });
  }
  grpc::Status Report(const std::string& task_id, api::TaskState state,
                      const std::string& message = "") {
    api::UpdateTaskStatusRequest req;
    req.set_session_id(session_id);
    auto* u = req.add_updates();
    u->set_task_id(task_id);
    u->mutable_status()->set_state(state);
    u->mutable_status()->set_message(message);
    return Report(req);
  }
  grpc::Status Report(const api::UpdateTaskStatusRequest& req) {
    grpc::ClientContext ctx;
    Identify(&ctx);
    api::UpdateTaskStatusResponse resp;
    return stub_->UpdateTaskStatus(&ctx, req, &resp);
  }

  std::string session_id;

 private:
  std::unique_ptr<api::Dispatcher::Stub> stub_;
  std::string node_id_;
};

class DispatcherFixture : public ::testing::Test {
 protected:
  virtual DispatcherOptions Options() {
    DispatcherOptions o;
    o.timer_interval = absl::ZeroDuration();  // the test drives Tick()
    o.assignment_batch_wait = absl::Milliseconds(5);
    o.manager_id = "manager1";
    return o;
  }
  void SetUp() override {
    proposer_.Attach(&store_);
    dispatcher_ = std::make_unique<Dispatcher>(store_, clock_, random_, Options());
    service_ = std::make_unique<DispatcherService>(*dispatcher_, MetadataIdentity(),
                                                   absl::Milliseconds(20));
    char tmpl[] = "/tmp/shds-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    std::string addr = "unix:" + dir_ + "/dispatcher.sock";
    grpc::ServerBuilder builder;
    builder.AddListeningPort(addr, grpc::InsecureServerCredentials());
    builder.RegisterService(service_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    channel_ = grpc::CreateChannel(addr, grpc::InsecureChannelCredentials());
    ASSERT_TRUE(dispatcher_->Start().ok());
  }
  void TearDown() override {
    dispatcher_->Stop();
    server_->Shutdown();
    std::filesystem::remove_all(dir_);
  }

  FakeAgent Agent(const std::string& node_id) { return FakeAgent(channel_, node_id); }

  template <typename T>
  void Create(const T& object) {
    ASSERT_TRUE(store_.Update([&](store::Tx& tx) { return tx.Create(object); }).ok());
  }
  template <typename T, typename F>
  void Modify(const std::string& id, F fn) {
    auto s = store_.Update([&](store::Tx& tx) {
      auto cur = tx.Get<T>(id);
      if (cur == nullptr) return absl::NotFoundError(id);
      T copy = *cur;
      fn(copy);
      return tx.Update(copy);
    });
    ASSERT_TRUE(s.ok()) << s.status();
  }
  template <typename T>
  void Delete(const std::string& id) {
    ASSERT_TRUE(store_.Update([&](store::Tx& tx) { return tx.Delete<T>(id); }).ok());
  }
  std::shared_ptr<const api::Node> GetNode(const std::string& id) {
    return store_.View().Get<api::Node>(id);
  }
  std::shared_ptr<const api::Task> GetTask(const std::string& id) {
    return store_.View().Get<api::Task>(id);
  }

  void AddNode(const std::string& id, const std::string& vtep = "") {
    api::Node n;
    n.set_id(id);
    n.mutable_description()->set_hostname("host-" + id);
    n.set_vtep_addr(vtep);
    Create(n);
  }
  static api::Task MakeTask(const std::string& id, const std::string& node,
                            api::TaskState state = api::TASK_STATE_ASSIGNED) {
    api::Task t;
    t.set_id(id);
    t.set_service_id("svc1");
    t.set_node_id(node);
    t.set_slot(1);
    t.set_desired_state(api::TASK_STATE_RUNNING);
    t.mutable_status()->set_state(state);
    t.mutable_annotations()->set_name("web.1." + id);
    t.mutable_service_annotations()->set_name("web");
    t.mutable_spec()->mutable_container()->set_image("busybox");
    return t;
  }

  store::FakeProposer proposer_;
  base::FakeClock clock_;
  base::SystemRandom random_;
  store::MemoryStore store_{&proposer_, &clock_, &random_};
  std::unique_ptr<Dispatcher> dispatcher_;
  std::unique_ptr<DispatcherService> service_;
  std::string dir_;
  std::unique_ptr<grpc::Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
};

// Keys of the items an assignment message carries, as "UPDATE t/<id>" / "REMOVE s/<id>".
inline std::vector<std::string> Changes(const api::AssignmentsMessage& m) {
  std::vector<std::string> out;
  for (const auto& c : m.changes()) {
    std::string action = c.action() == api::AssignmentChange::ACTION_UPDATE ? "UPDATE " : "REMOVE ";
    const auto& a = c.assignment();
    std::string key;
    if (a.has_task()) key = "t/" + a.task().id();
    if (a.has_secret()) key = "s/" + a.secret().id();
    if (a.has_config()) key = "c/" + a.config().id();
    if (a.has_network()) key = "n/" + a.network().network().id();
    if (a.has_endpoint()) key = "e/" + a.endpoint().task_id() + "/" + a.endpoint().network_id();
    if (a.has_service()) key = "v/" + a.service().id();
    out.push_back(action + key);
  }
  return out;
}

}  // namespace shoal::manager::dispatcher::testing
