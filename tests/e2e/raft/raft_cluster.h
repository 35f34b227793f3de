// Real shoal-raft-server processes on loopback for e2e tests: start, kill -9, restart,
// and a KV client that follows leader hints. Every process is killed and every directory
// removed in the destructor (also when the test fails).
#pragma once

#include <sys/types.h>

#include <atomic>
#include <map>
#include <mutex>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "manager/raft/tools/raftkv.grpc.pb.h"

namespace shoal::manager::raft::e2e {

namespace rt = ::shoal::rafttest;

class ProcCluster {
 public:
  explicit ProcCluster(std::vector<std::string> extra_args = {});
  ~ProcCluster();

  std::string Addr(int id) const;
  std::string Endpoints() const;  // all started members
  std::vector<int> Known() const;
  void StartBootstrap(std::vector<int> ids);
  void StartJoin(int id, int via);
  void Restart(int id);
  void Kill9(int id);
  bool Running(int id) const;

  std::optional<rt::StatusResponse> Status(int id);
  // The member that says it is leader (0 if none) — polls until `secs`.
  int WaitLeader(double secs);

  // Put via any member (following "leader=" hints); true when acknowledged.
  bool Put(const std::string& key, const std::string& value, int timeout_ms = 2000);
  // Linearizable Get on member `id`.
  std::optional<std::optional<std::string>> Get(int id, const std::string& key);
  bool AddMember(int id);
  bool RemoveMember(int id);

 private:
  void Spawn(int id, const std::vector<std::string>& args);
  rt::Kv::Stub* Stub(int id);

  std::string dir_;
  int base_port_;
  std::vector<std::string> extra_;
  std::map<int, pid_t> pids_;
  std::map<int, std::vector<std::string>> args_;
  std::map<int, std::unique_ptr<rt::Kv::Stub>> stubs_;
  std::vector<int> known_;
  std::atomic<int> hint_{0};
  mutable std::mutex mu_;  // pids_, args_, stubs_, known_ (the writer thread shares them)
};

}  // namespace shoal::manager::raft::e2e
