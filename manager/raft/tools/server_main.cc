// shoal-raft-server: one member of a replicated key-value map over manager/raft, for e2e
// tests and benchmarks on loopback.
//
//   shoal-raft-server --id 1 --listen 127.0.0.1:7001 --dir /tmp/r1
//     (continued) --cluster 1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003
//   shoal-raft-server --id 4 --listen 127.0.0.1:7004 --dir /tmp/r4 --join 127.0.0.1:7001
#include <signal.h>
#include <sys/stat.h>

#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <thread>

#include "CLI/CLI.hpp"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "base/log.h"
#include "grpcpp/grpcpp.h"
#include "manager/raft/node.h"
#include "manager/raft/tools/kv_state_machine.h"
#include "manager/raft/tools/raftkv.grpc.pb.h"

namespace shoal::manager::raft::tools {
namespace {

namespace rt = ::shoal::rafttest;

grpc::Status ToGrpc(const absl::Status& s) {
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), std::string(s.message()));
}

// "not the leader; leader=<addr>" lets clients go straight to the leader.
grpc::Status NotLeader(RaftNode& node) {
  NodeStatus s = node.Status();
  std::string addr;
  for (const api::RaftMember& m : s.members) {
    if (m.raft_id() == s.leader) addr = m.addr();
  }
  return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "not the leader; leader=" + addr);
}

// Put is served with the callback API by default (Base = WithCallbackMethod_Put: no thread
// parked per in-flight write, but requests and replies pass between gRPC's polling and
// callback threads), or on completion queues (Base = WithAsyncMethod_Put, CqPutServer,
// --put-api cq), or with the sync API (Base = Kv::Service, --put-api sync: one parked thread
// per in-flight write). The alternatives are for measurements (docs/benchmarks.md: sync and
// cq answer a lone client faster, but lose at 16 or 256 clients). The rest are plain sync
// handlers.
template <class Base>
class KvService final : public Base {
 public:
  KvService(RaftNode* node, KvStateMachine* sm) : node_(node), sm_(sm) {}

  // Sync API (when Base is Kv::Service; never called otherwise).
  grpc::Status Put(grpc::ServerContext*, const rt::PutRequest* req, rt::PutResponse* resp) {
    if (!node_->IsLeader()) return NotLeader(*node_);
    const auto start = std::chrono::steady_clock::now();
    absl::StatusOr<uint64_t> r = node_->ProposeAndWait(req->SerializeAsString(), absl::Seconds(10));
    {
      std::lock_guard<std::mutex> l(put_mu_);
      put_.Add(std::chrono::steady_clock::now() - start);
    }
    if (r.ok()) {
      resp->set_index(*r);
      return grpc::Status::OK;
    }
    if (r.status().code() == absl::StatusCode::kFailedPrecondition) return NotLeader(*node_);
    return ToGrpc(r.status());
  }

  // Callback API (when Base is WithCallbackMethod_Put).
  grpc::ServerUnaryReactor* Put(grpc::CallbackServerContext* ctx, const rt::PutRequest* req,
                                rt::PutResponse* resp) {
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    if (!node_->IsLeader()) {
      reactor->Finish(NotLeader(*node_));
      return reactor;
    }
    const auto start = std::chrono::steady_clock::now();
    node_->ProposeAsync(req->SerializeAsString(),
                        [this, reactor, resp, start](absl::StatusOr<uint64_t> r) {
                          {
                            std::lock_guard<std::mutex> l(put_mu_);
                            put_.Add(std::chrono::steady_clock::now() - start);
                          }
                          if (r.ok()) {
                            resp->set_index(*r);
                            reactor->Finish(grpc::Status::OK);
                          } else if (r.status().code() == absl::StatusCode::kFailedPrecondition) {
                            reactor->Finish(NotLeader(*node_));
                          } else {
                            reactor->Finish(ToGrpc(r.status()));
                          }
                        });
    return reactor;
  }
  grpc::Status Get(grpc::ServerContext*, const rt::GetRequest* req,
                   rt::GetResponse* resp) override {
    absl::Status s = node_->ReadBarrier(absl::Seconds(5));
    if (!s.ok()) return ToGrpc(s);
    auto v = sm_->Get(req->key());
    resp->set_found(v.has_value());
    if (v) resp->set_value(*v);
    return grpc::Status::OK;
  }
  grpc::Status Status(grpc::ServerContext*, const rt::StatusRequest*,
                      rt::StatusResponse* resp) override {
    NodeStatus s = node_->Status();
    resp->set_id(s.id);
    resp->set_term(s.term);
    resp->set_leader(s.leader);
    resp->set_is_leader(s.role == Role::kLeader);
    resp->set_commit(s.commit);
    resp->set_applied(s.applied);
    resp->set_keys(sm_->size());
    for (const api::RaftMember& m : s.members) {
      rt::Member* out = resp->add_members();
      out->set_raft_id(m.raft_id());
      out->set_addr(m.addr());
      out->set_learner(std::find(s.learners.begin(), s.learners.end(), m.raft_id()) !=
                       s.learners.end());
    }
    return grpc::Status::OK;
  }
  grpc::Status AddMember(grpc::ServerContext*, const rt::AddMemberRequest* req,
                         rt::AddMemberResponse* resp) override {
    if (!node_->IsLeader()) return NotLeader(*node_);
    api::RaftMember m;
    m.set_raft_id(req->member().raft_id());
    m.set_addr(req->member().addr());
    absl::Status s = node_->AddMember(m, absl::Seconds(10));
    if (!s.ok()) return ToGrpc(s);
    for (const api::RaftMember& x : node_->Status().members) {
      rt::Member* out = resp->add_members();
      out->set_raft_id(x.raft_id());
      out->set_addr(x.addr());
    }
    return grpc::Status::OK;
  }
  grpc::Status RemoveMember(grpc::ServerContext*, const rt::RemoveMemberRequest* req,
                            rt::RemoveMemberResponse*) override {
    if (!node_->IsLeader()) return NotLeader(*node_);
    return ToGrpc(node_->RemoveMember(req->raft_id(), absl::Seconds(10)));
  }

 private:
  RaftNode* node_;
  KvStateMachine* sm_;

 public:
  // Put handler entered -> outcome known (the reply is being sent), since the last call.
  std::string PutStats() {
    std::lock_guard<std::mutex> l(put_mu_);
    std::string out = "put_handler: " + put_.Summary() + "\n";
    put_ = LatencyHistogram();
    return out;
  }

 private:
  std::mutex put_mu_;
  LatencyHistogram put_;
};

// Put on gRPC's completion-queue API (--put-api cq): `threads` threads each poll
// their own completion queue; the thread that receives a request proposes it (with the raft
// node's combining it runs the leader's disk write itself when the loop is free) and goes
// back to polling, the reply is sent by whichever thread applies the entry. No thread is
// parked per in-flight write (as with the callback API) and no hand-off between a polling
// thread and a callback executor (as with the sync API).
class CqPutServer {
 public:
  using AsyncKv = rt::Kv::WithAsyncMethod_Put<rt::Kv::Service>;
  CqPutServer(RaftNode* node, AsyncKv* service) : node_(node), service_(service) {}
  void AddQueues(grpc::ServerBuilder& builder, int threads) {
    for (int i = 0; i < threads; ++i) cqs_.push_back(builder.AddCompletionQueue());
  }
  void Start() {
    for (auto& cq : cqs_) {
      grpc::ServerCompletionQueue* q = cq.get();
      threads_.emplace_back([this, q] { Poll(q); });
    }
  }
  // After the server's Shutdown (no new calls) and the node's Stop (every proposal answered).
  void Stop() {
    for (auto& cq : cqs_) cq->Shutdown();
    for (auto& t : threads_) t.join();
  }
  std::string PutStats() {
    std::lock_guard<std::mutex> l(mu_);
    std::string out = "put_handler: " + put_.Summary() + "\n";
    put_ = LatencyHistogram();
    return out;
  }

 private:
  struct Call {
    explicit Call(grpc::ServerCompletionQueue* q) : cq(q), responder(&ctx) {}
    grpc::ServerCompletionQueue* cq;
    grpc::ServerContext ctx;
    rt::PutRequest req;
    rt::PutResponse resp;
    grpc::ServerAsyncResponseWriter<rt::PutResponse> responder;
    bool finishing = false;  // the tag's next completion is Finish's
  };
  void Request(grpc::ServerCompletionQueue* q) {
    Call* c = new Call(q);
    service_->RequestPut(&c->ctx, &c->req, &c->responder, q, q, c);
  }
  void Poll(grpc::ServerCompletionQueue* q) {
    Request(q);
    void* tag;
    bool ok;
    while (q->Next(&tag, &ok)) {
      Call* c = static_cast<Call*>(tag);
      if (c->finishing || !ok) {
        delete c;  // finished, or a request that never came (shutdown)
        continue;
      }
      Request(q);  // keep one request outstanding per queue
      Handle(c);
    }
  }
  void Handle(Call* c) {
    c->finishing = true;
    if (!node_->IsLeader()) {
      c->responder.FinishWithError(NotLeader(*node_), c);
      return;
    }
    const auto start = std::chrono::steady_clock::now();
    node_->ProposeAsync(c->req.SerializeAsString(), [this, c, start](absl::StatusOr<uint64_t> r) {
      {
        std::lock_guard<std::mutex> l(mu_);
        put_.Add(std::chrono::steady_clock::now() - start);
      }
      if (r.ok()) {
        c->resp.set_index(*r);
        c->responder.Finish(c->resp, grpc::Status::OK, c);
      } else if (r.status().code() == absl::StatusCode::kFailedPrecondition) {
        c->responder.FinishWithError(NotLeader(*node_), c);
      } else {
        c->responder.FinishWithError(ToGrpc(r.status()), c);
      }
    });
  }

  RaftNode* node_;
  AsyncKv* service_;
  std::vector<std::unique_ptr<grpc::ServerCompletionQueue>> cqs_;
  std::vector<std::thread> threads_;
  std::mutex mu_;
  LatencyHistogram put_;
};

absl::StatusOr<std::vector<api::RaftMember>> ParseCluster(const std::string& spec) {
  std::vector<api::RaftMember> out;
  for (absl::string_view part : absl::StrSplit(spec, ',', absl::SkipEmpty())) {
    std::pair<std::string, std::string> kv = absl::StrSplit(part, absl::MaxSplits('=', 1));
    uint64_t id;
    if (!absl::SimpleAtoi(kv.first, &id) || id == 0 || kv.second.empty()) {
      return absl::InvalidArgumentError("--cluster: expected id=host:port, got '" +
                                        std::string(part) + "'");
    }
    api::RaftMember m;
    m.set_raft_id(id);
    m.set_addr(kv.second);
    out.push_back(m);
  }
  return out;
}

// Asks the cluster (following leader hints) to add this member; returns the member list.
absl::StatusOr<std::vector<api::RaftMember>> Join(std::string target, uint64_t id,
                                                  const std::string& addr) {
  for (int attempt = 0; attempt < 100; ++attempt) {
    auto stub = rt::Kv::NewStub(grpc::CreateChannel(target, grpc::InsecureChannelCredentials()));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(15));
    rt::AddMemberRequest req;
    req.mutable_member()->set_raft_id(id);
    req.mutable_member()->set_addr(addr);
    rt::AddMemberResponse resp;
    grpc::Status s = stub->AddMember(&ctx, req, &resp);
    if (s.ok()) {
      std::vector<api::RaftMember> out;
      for (const rt::Member& m : resp.members()) {
        api::RaftMember x;
        x.set_raft_id(m.raft_id());
        x.set_addr(m.addr());
        out.push_back(x);
      }
      return out;
    }
    auto pos = s.error_message().find("leader=");
    if (pos != std::string::npos && pos + 7 < s.error_message().size()) {
      target = s.error_message().substr(pos + 7);
    }
    absl::SleepFor(absl::Milliseconds(200));
  }
  return absl::UnavailableError("join: could not reach the leader");
}

int Main(int argc, char** argv) {
  CLI::App app{"shoal-raft-server: replicated KV member over manager/raft (tests, benchmarks)"};
  NodeOptions opts;
  std::string listen, cluster, join, level = "info";
  int tick_ms = 100;
  bool no_sync = false;
  std::string put_api = "callback";
  int put_threads = 2;
  int stats_secs = 0;
  app.add_option("--id", opts.id, "raft id (non-zero)")->required();
  app.add_option("--listen", listen, "host:port to serve raft and the KV API")->required();
  app.add_option("--dir", opts.dir, "storage directory")->required();
  app.add_option("--cluster", cluster, "initial members id=host:port,... (new cluster)");
  app.add_option("--join", join, "address of a member of an existing cluster");
  app.add_option("--tick-ms", tick_ms, "raft tick in milliseconds (default 100)");
  app.add_option("--election-tick", opts.raft.election_tick, "election timeout in ticks (10)");
  app.add_option("--heartbeat-tick", opts.raft.heartbeat_tick, "heartbeat interval in ticks (1)");
  app.add_option("--election-jitter", opts.raft.election_jitter_ticks,
                 "extra random election ticks, [0, n) (0: election-tick / 2)");
  app.add_option("--snapshot-interval", opts.snapshot_interval, "entries between snapshots");
  app.add_option("--snapshot-keep", opts.snapshot_keep, "entries kept after a snapshot");
  app.add_flag("--unsafe-no-fsync", no_sync, "skip fdatasync (never for real data)");
  app.add_option("--put-api", put_api,
                 "gRPC API serving Put: callback (default), cq (completion queues) or sync")
      ->check(CLI::IsMember({"cq", "callback", "sync"}));
  app.add_option("--put-threads", put_threads, "threads polling Put's completion queues (cq)");
  app.add_flag("--overlap-leader-sync", opts.overlap_leader_sync,
               "leader fdatasyncs on a sync thread, overlapping replication");
  app.add_option("--log-level", level, "log level");
  app.add_option("--stage-stats", stats_secs,
                 "print per-stage latencies to stderr every N seconds (0: never)");
  CLI11_PARSE(app, argc, argv);
  if (!base::InitLogging(level).ok()) return 2;
  auto log = base::Logger("raft-server");
  opts.addr = listen;
  opts.tick = absl::Milliseconds(tick_ms);
  opts.storage.sync = !no_sync;
  struct stat st;
  const bool fresh = ::stat((opts.dir + "/wal").c_str(), &st) != 0;
  if (!cluster.empty()) {
    auto members = ParseCluster(cluster);
    if (!members.ok()) {
      std::fprintf(stderr, "%s\n", std::string(members.status().message()).c_str());
      return 2;
    }
    opts.bootstrap = *members;
  } else if (!join.empty() && fresh) {
    auto members = Join(join, opts.id, listen);
    if (!members.ok()) {
      log->error("{}", std::string(members.status().message()));
      return 1;
    }
    opts.peers = *members;
  }
  KvStateMachine sm;
  auto node = RaftNode::Create(opts, &sm);
  if (!node.ok()) {
    log->error("{}", std::string(node.status().message()));
    return 1;
  }
  KvService<rt::Kv::WithCallbackMethod_Put<rt::Kv::Service>> kv_callback(node->get(), &sm);
  KvService<rt::Kv::Service> kv_sync(node->get(), &sm);
  KvService<CqPutServer::AsyncKv> kv_cq(node->get(), &sm);
  CqPutServer cq_put(node->get(), &kv_cq);
  auto put_stats = [&] {
    if (put_api == "sync") return kv_sync.PutStats();
    if (put_api == "callback") return kv_callback.PutStats();
    return cq_put.PutStats();
  };
  grpc::ServerBuilder builder;
  builder.AddListeningPort(listen, grpc::InsecureServerCredentials());
  builder.SetMaxReceiveMessageSize(-1);
  builder.RegisterService((*node)->service());
  if (put_api == "sync") {
    builder.RegisterService(&kv_sync);
  } else if (put_api == "callback") {
    builder.RegisterService(&kv_callback);
  } else {
    builder.RegisterService(&kv_cq);
    cq_put.AddQueues(builder, put_threads);
  }
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server) {
    log->error("cannot listen on {}", listen);
    return 1;
  }
  if (put_api == "cq") cq_put.Start();
  (*node)->Start();
  log->info("raft member {} serving on {}", opts.id, listen);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  std::thread stats;
  std::mutex stats_mu;
  std::condition_variable stats_cv;
  bool stopping = false;
  if (stats_secs > 0) {
    stats = std::thread([&] {
      std::unique_lock<std::mutex> l(stats_mu);
      bool last = false;
      while (!last) {  // every interval, and once more at exit
        last = stats_cv.wait_for(l, std::chrono::seconds(stats_secs), [&] { return stopping; });
        std::string s = (*node)->StageStats(/*reset=*/true) + put_stats();
        std::fprintf(stderr, "member %lu stages (microseconds):\n%s",
                     static_cast<unsigned long>(opts.id), s.c_str());
        std::fflush(stderr);
      }
    });
  }
  int sig = 0;
  sigwait(&set, &sig);
  {
    std::lock_guard<std::mutex> l(stats_mu);
    stopping = true;
  }
  stats_cv.notify_all();
  if (stats.joinable()) stats.join();
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  (*node)->Stop();
  if (put_api == "cq") cq_put.Stop();
  return 0;
}

}  // namespace
}  // namespace shoal::manager::raft::tools

int main(int argc, char** argv) {
  // Block the stop signals before any thread starts so sigwait() receives them.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  return shoal::manager::raft::tools::Main(argc, argv);
}
