#include "tests/e2e/raft/raft_cluster.h"

#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include "absl/time/clock.h"
#include "grpcpp/grpcpp.h"

namespace shoal::manager::raft::e2e {

ProcCluster::ProcCluster(std::vector<std::string> extra_args) : extra_(std::move(extra_args)) {
  char tmpl[] = "/tmp/shoaltest-raft-e2e-XXXXXX";
  dir_ = ::mkdtemp(tmpl);
  base_port_ = 31000 + (::getpid() % 500) * 8;
}

ProcCluster::~ProcCluster() {
  for (auto& [id, pid] : pids_) {
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  }
  std::filesystem::remove_all(dir_);
}

std::string ProcCluster::Addr(int id) const {
  return "127.0.0.1:" + std::to_string(base_port_ + id);
}

std::vector<int> ProcCluster::Known() const {
  std::lock_guard<std::mutex> l(mu_);
  return known_;
}

std::string ProcCluster::Endpoints() const {
  std::lock_guard<std::mutex> l(mu_);
  std::string out;
  for (int id : known_) out += (out.empty() ? "" : ",") + Addr(id);
  return out;
}

void ProcCluster::Spawn(int id, const std::vector<std::string>& args) {
  std::vector<std::string> full = {SHOAL_RAFT_SERVER, "--id", std::to_string(id), "--listen",
                                   Addr(id), "--dir", dir_ + "/m" + std::to_string(id),
                                   "--log-level", "warn"};
  full.insert(full.end(), args.begin(), args.end());
  full.insert(full.end(), extra_.begin(), extra_.end());
  pid_t pid = ::fork();
  if (pid == 0) {
    std::string log = dir_ + "/m" + std::to_string(id) + ".log";
    FILE* f = std::freopen(log.c_str(), "a", stderr);
    (void)f;
    std::vector<char*> argv;
    for (auto& a : full) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  std::lock_guard<std::mutex> l(mu_);
  pids_[id] = pid;
  args_[id] = args;
  if (std::find(known_.begin(), known_.end(), id) == known_.end()) known_.push_back(id);
}

void ProcCluster::StartBootstrap(std::vector<int> ids) {
  std::string cluster;
  for (int id : ids) cluster += (cluster.empty() ? "" : ",") + std::to_string(id) + "=" + Addr(id);
  for (int id : ids) Spawn(id, {"--cluster", cluster});
}

void ProcCluster::StartJoin(int id, int via) { Spawn(id, {"--join", Addr(via)}); }

void ProcCluster::Restart(int id) {
  std::vector<std::string> args;
  {
    std::lock_guard<std::mutex> l(mu_);
    args = args_.at(id);
  }
  Spawn(id, args);
}

void ProcCluster::Kill9(int id) {
  pid_t pid;
  {
    std::lock_guard<std::mutex> l(mu_);
    pid = pids_.at(id);
    pids_[id] = 0;
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
}

bool ProcCluster::Running(int id) const {
  std::lock_guard<std::mutex> l(mu_);
  auto it = pids_.find(id);
  return it != pids_.end() && it->second > 0;
}

rt::Kv::Stub* ProcCluster::Stub(int id) {
  std::lock_guard<std::mutex> l(mu_);
  auto& s = stubs_[id];
  if (!s) s = rt::Kv::NewStub(grpc::CreateChannel(Addr(id), grpc::InsecureChannelCredentials()));
  return s.get();
}

std::optional<rt::StatusResponse> ProcCluster::Status(int id) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(500));
  rt::StatusRequest req;
  rt::StatusResponse resp;
  if (!Stub(id)->Status(&ctx, req, &resp).ok()) return std::nullopt;
  return resp;
}

int ProcCluster::WaitLeader(double secs) {
  absl::Time deadline = absl::Now() + absl::Seconds(secs);
  while (absl::Now() < deadline) {
    for (int id : Known()) {
      if (!Running(id)) continue;
      auto s = Status(id);
      if (s && s->is_leader()) return id;
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
  return 0;
}

bool ProcCluster::Put(const std::string& key, const std::string& value, int timeout_ms) {
  std::vector<int> known = Known();
  for (size_t attempt = 0; attempt < 2 * known.size() + 2; ++attempt) {
    int hint = hint_;
    int id = hint && Running(hint) ? hint : known[attempt % known.size()];
    if (!Running(id)) {
      hint_ = 0;
      continue;
    }
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(timeout_ms));
    rt::PutRequest req;
    req.set_key(key);
    req.set_value(value);
    rt::PutResponse resp;
    grpc::Status s = Stub(id)->Put(&ctx, req, &resp);
    if (s.ok()) {
      hint_ = id;
      return true;
    }
    hint_ = 0;
    auto pos = s.error_message().find("leader=");
    if (pos != std::string::npos) {
      std::string addr = s.error_message().substr(pos + 7);
      for (int k : known) {
        if (Addr(k) == addr) hint_ = k;
      }
    }
    if (hint_ == 0) absl::SleepFor(absl::Milliseconds(50));
  }
  return false;
}

std::optional<std::optional<std::string>> ProcCluster::Get(int id, const std::string& key) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  rt::GetRequest req;
  req.set_key(key);
  rt::GetResponse resp;
  if (!Stub(id)->Get(&ctx, req, &resp).ok()) return std::nullopt;
  if (!resp.found()) return std::optional<std::string>();
  return std::optional<std::string>(resp.value());
}

bool ProcCluster::AddMember(int id) {
  int l = WaitLeader(10);
  if (l == 0) return false;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(15));
  rt::AddMemberRequest req;
  req.mutable_member()->set_raft_id(id);
  req.mutable_member()->set_addr(Addr(id));
  rt::AddMemberResponse resp;
  return Stub(l)->AddMember(&ctx, req, &resp).ok();
}

bool ProcCluster::RemoveMember(int id) {
  for (int attempt = 0; attempt < 20; ++attempt) {
    int l = WaitLeader(10);
    if (l == 0) return false;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(15));
    rt::RemoveMemberRequest req;
    req.set_raft_id(id);
    rt::RemoveMemberResponse resp;
    if (Stub(l)->RemoveMember(&ctx, req, &resp).ok()) return true;
    absl::SleepFor(absl::Milliseconds(200));
  }
  return false;
}

}  // namespace shoal::manager::raft::e2e
