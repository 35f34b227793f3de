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

// Put is served with the callback API (no thread parked per in-flight write: 256 concurrent
// clients would otherwise mean 256 blocked gRPC threads); the rest are plain sync handlers.
class KvService final : public rt::Kv::WithCallbackMethod_Put<rt::Kv::Service> {
 public:
  KvService(RaftNode* node, KvStateMachine* sm) : node_(node), sm_(sm) {}

  grpc::ServerUnaryReactor* Put(grpc::CallbackServerContext* ctx, const rt::PutRequest* req,
                                rt::PutResponse* resp) override {
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    if (!node_->IsLeader()) {
      reactor->Finish(NotLeader());
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
                            reactor->Finish(NotLeader());
                          } else {
                            reactor->Finish(ToGrpc(r.status()));
                          }
                        });
    return reactor;
  }
  grpc::Status Get(grpc::ServerContext*, const rt::GetRequest* req, rt::GetResponse* resp) override {
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
    if (!node_->IsLeader()) return NotLeader();
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
    if (!node_->IsLeader()) return NotLeader();
    return ToGrpc(node_->RemoveMember(req->raft_id(), absl::Seconds(10)));
  }

 private:
  // "not the leader; leader=<addr>" lets clients go straight to the leader.
  grpc::Status NotLeader() {
    NodeStatus s = node_->Status();
    std::string addr;
    for (const api::RaftMember& m : s.members) {
      if (m.raft_id() == s.leader) addr = m.addr();
    }
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "not the leader; leader=" + addr);
  }

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
  KvService kv(node->get(), &sm);
  grpc::ServerBuilder builder;
  builder.AddListeningPort(listen, grpc::InsecureServerCredentials());
  builder.SetMaxReceiveMessageSize(-1);
  builder.RegisterService((*node)->service());
  builder.RegisterService(&kv);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server) {
    log->error("cannot listen on {}", listen);
    return 1;
  }
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
        std::string s = (*node)->StageStats(/*reset=*/true) + kv.PutStats();
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
