// shoal-raft-load: drives shoal-raft-server (service shoal.rafttest.Kv) or a real etcd
// (etcdserverpb.KV over its public gRPC API) with the same workload, for bench/raft.sh and
// the e2e tests.
//
//   run          N clients, each a loop of Put(unique key, value-size bytes) for --duration;
//                prints ops, errors, throughput and p50/p99 latency; --ack-log records every
//                acknowledged key/value.
//   verify       reads every key of an --ack-log back (linearizable Get) and counts missing
//                or wrong values.
//   leader       prints the leader's endpoint.
//   first-write  retries Put until one succeeds; prints milliseconds since --since-ns
//                (CLOCK_REALTIME ns, e.g. `date +%s%N` taken at a kill -9).
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "grpcpp/grpcpp.h"
#include "manager/raft/tools/etcd_kv.grpc.pb.h"
#include "manager/raft/tools/raftkv.grpc.pb.h"

namespace {

namespace rt = ::shoal::rafttest;
namespace ep = ::etcdserverpb;

struct Options {
  std::string mode = "shoal";
  std::vector<std::string> endpoints;
  int clients = 1;
  double duration = 10;
  int value_size = 256;
  int timeout_ms = 5000;
  std::string ack_log;
  std::string prefix = "k";
  int64_t since_ns = 0;
};

std::shared_ptr<grpc::Channel> Chan(const std::string& addr, int salt) {
  grpc::ChannelArguments args;
  args.SetInt("shoal.channel", salt);  // distinct arguments: a separate connection per salt
  return grpc::CreateCustomChannel(addr, grpc::InsecureChannelCredentials(), args);
}

void Deadline(grpc::ClientContext& ctx, int ms) {
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(ms));
}

// A client bound to one connection per endpoint, following leader hints (shoal) or sticking
// to the etcd leader found at start.
class Client {
 public:
  Client(const Options& o, int salt) : o_(o) {
    for (const auto& e : o.endpoints) {
      auto ch = Chan(e, salt);
      shoal_.push_back(rt::Kv::NewStub(ch));
      etcd_.push_back(ep::KV::NewStub(ch));
      maint_.push_back(ep::Maintenance::NewStub(ch));
    }
  }

  // Returns true when acknowledged.
  bool Put(const std::string& key, const std::string& value) {
    for (int attempt = 0; attempt < 2 * static_cast<int>(o_.endpoints.size()) + 2; ++attempt) {
      grpc::ClientContext ctx;
      Deadline(ctx, o_.timeout_ms);
      grpc::Status s;
      if (o_.mode == "etcd") {
        ep::PutRequest req;
        req.set_key(key);
        req.set_value(value);
        ep::PutResponse resp;
        s = etcd_[cur_]->Put(&ctx, req, &resp);
      } else {
        rt::PutRequest req;
        req.set_key(key);
        req.set_value(value);
        rt::PutResponse resp;
        s = shoal_[cur_]->Put(&ctx, req, &resp);
      }
      if (s.ok()) return true;
      auto pos = s.error_message().find("leader=");
      if (pos != std::string::npos && pos + 7 < s.error_message().size()) {
        std::string addr = s.error_message().substr(pos + 7);
        auto it = std::find(o_.endpoints.begin(), o_.endpoints.end(), addr);
        if (it != o_.endpoints.end() && static_cast<size_t>(it - o_.endpoints.begin()) != cur_) {
          cur_ = it - o_.endpoints.begin();
          continue;
        }
      }
      if (s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED ||
          s.error_code() == grpc::StatusCode::UNAVAILABLE) {
        // Outcome unknown for this attempt; a retry writes the same value again (idempotent).
      }
      cur_ = (cur_ + 1) % o_.endpoints.size();
      if (attempt > static_cast<int>(o_.endpoints.size())) absl::SleepFor(absl::Milliseconds(20));
    }
    return false;
  }

  // Linearizable read; nullopt on error; found=false as "".
  std::optional<std::pair<bool, std::string>> Get(const std::string& key) {
    for (size_t attempt = 0; attempt < 3 * o_.endpoints.size(); ++attempt) {
      grpc::ClientContext ctx;
      Deadline(ctx, o_.timeout_ms);
      if (o_.mode == "etcd") {
        ep::RangeRequest req;
        req.set_key(key);
        ep::RangeResponse resp;
        if (etcd_[cur_]->Range(&ctx, req, &resp).ok()) {
          if (resp.kvs_size() == 0) return std::make_pair(false, std::string());
          return std::make_pair(true, resp.kvs(0).value());
        }
      } else {
        rt::GetRequest req;
        req.set_key(key);
        rt::GetResponse resp;
        if (shoal_[cur_]->Get(&ctx, req, &resp).ok()) {
          return std::make_pair(resp.found(), resp.value());
        }
      }
      cur_ = (cur_ + 1) % o_.endpoints.size();
      absl::SleepFor(absl::Milliseconds(50));
    }
    return std::nullopt;
  }

  // Index of the leader endpoint, or -1.
  int Leader() {
    for (size_t i = 0; i < o_.endpoints.size(); ++i) {
      grpc::ClientContext ctx;
      Deadline(ctx, 1000);
      if (o_.mode == "etcd") {
        ep::StatusRequest req;
        ep::StatusResponse resp;
        if (maint_[i]->Status(&ctx, req, &resp).ok() && resp.leader() != 0 &&
            resp.leader() == resp.header().member_id()) {
          return i;
        }
      } else {
        rt::StatusRequest req;
        rt::StatusResponse resp;
        if (shoal_[i]->Status(&ctx, req, &resp).ok() && resp.is_leader()) return i;
      }
    }
    return -1;
  }
  void Prefer(int i) { cur_ = i < 0 ? 0 : i; }

 private:
  const Options& o_;
  size_t cur_ = 0;
  std::vector<std::unique_ptr<rt::Kv::Stub>> shoal_;
  std::vector<std::unique_ptr<ep::KV::Stub>> etcd_;
  std::vector<std::unique_ptr<ep::Maintenance::Stub>> maint_;
};

double Percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  size_t k = std::min(v.size() - 1, static_cast<size_t>(p * v.size()));
  std::nth_element(v.begin(), v.begin() + k, v.end());
  return v[k];
}

int Run(const Options& o) {
  int leader = Client(o, 0).Leader();
  std::atomic<bool> stop{false};
  std::mutex mu;
  std::vector<double> lat_ms;
  std::vector<std::pair<std::string, std::string>> acked;
  std::atomic<int64_t> errors{0};
  std::vector<std::thread> threads;
  const int conns = std::min(o.clients, 16);  // gRPC multiplexes; a few connections suffice
  std::string value(o.value_size, 'v');
  absl::Time start = absl::Now();
  for (int c = 0; c < o.clients; ++c) {
    threads.emplace_back([&, c] {
      Client cl(o, c % conns);
      cl.Prefer(leader);
      std::vector<double> mine;
      std::vector<std::pair<std::string, std::string>> my_acks;
      for (int64_t n = 0; !stop.load(); ++n) {
        std::string key = o.prefix + std::to_string(c) + "-" + std::to_string(n);
        std::string val = value;
        std::string tag = std::to_string(n);
        val.replace(0, std::min(val.size(), tag.size()), tag.substr(0, val.size()));
        absl::Time t0 = absl::Now();
        if (cl.Put(key, val)) {
          mine.push_back(absl::ToDoubleMilliseconds(absl::Now() - t0));
          if (!o.ack_log.empty()) my_acks.emplace_back(key, val);
        } else {
          ++errors;
        }
      }
      std::lock_guard<std::mutex> l(mu);
      lat_ms.insert(lat_ms.end(), mine.begin(), mine.end());
      acked.insert(acked.end(), my_acks.begin(), my_acks.end());
    });
  }
  absl::SleepFor(absl::Seconds(o.duration));
  stop = true;
  for (auto& t : threads) t.join();
  double secs = absl::ToDoubleSeconds(absl::Now() - start);
  if (!o.ack_log.empty()) {
    std::ofstream out(o.ack_log);
    for (auto& [k, v] : acked) out << k << ' ' << v << '\n';
  }
  double p50 = Percentile(lat_ms, 0.50), p90 = Percentile(lat_ms, 0.90);
  double p99 = Percentile(lat_ms, 0.99), p999 = Percentile(lat_ms, 0.999);
  double max = lat_ms.empty() ? 0 : *std::max_element(lat_ms.begin(), lat_ms.end());
  std::printf(
      "ops=%zu errors=%ld secs=%.2f ops_per_s=%.1f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f "
      "p999_ms=%.3f max_ms=%.3f\n",
      lat_ms.size(), static_cast<long>(errors.load()), secs, lat_ms.size() / secs, p50, p90, p99,
      p999, max);
  return 0;
}

int Verify(const Options& o) {
  std::ifstream in(o.ack_log);
  if (!in) {
    std::fprintf(stderr, "verify: cannot read %s\n", o.ack_log.c_str());
    return 2;
  }
  Client cl(o, 0);
  std::string key, val;
  size_t total = 0, missing = 0, errors = 0;
  while (in >> key >> val) {
    ++total;
    auto r = cl.Get(key);
    if (!r) {
      ++errors;
    } else if (!r->first || r->second != val) {
      ++missing;
      if (missing <= 5) std::fprintf(stderr, "verify: %s missing or wrong\n", key.c_str());
    }
  }
  std::printf("verified=%zu missing=%zu errors=%zu\n", total, missing, errors);
  return missing == 0 && errors == 0 ? 0 : 1;
}

int FirstWrite(const Options& o) {
  Client cl(o, 0);
  for (int64_t n = 0;; ++n) {
    if (cl.Put(o.prefix + "failover-" + std::to_string(n), "x")) break;
  }
  int64_t now = absl::ToUnixNanos(absl::Now());
  std::printf("failover_ms=%.1f\n", (now - o.since_ns) / 1e6);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"shoal-raft-load: the same write workload against shoal-raft-server or etcd"};
  Options o;
  std::string endpoints, cmd = "run";
  app.add_option("command", cmd, "run | verify | leader | first-write");
  app.add_option("--mode", o.mode, "shoal | etcd")->check(CLI::IsMember({"shoal", "etcd"}));
  app.add_option("--endpoints", endpoints, "host:port,...")->required();
  app.add_option("--clients", o.clients, "concurrent clients");
  app.add_option("--duration", o.duration, "seconds (run)");
  app.add_option("--value-size", o.value_size, "bytes per value");
  app.add_option("--timeout-ms", o.timeout_ms, "per-request deadline");
  app.add_option("--ack-log", o.ack_log, "file of acknowledged key value lines");
  app.add_option("--prefix", o.prefix, "key prefix");
  app.add_option("--since-ns", o.since_ns, "first-write: start time, unix ns");
  CLI11_PARSE(app, argc, argv);
  for (auto e : absl::StrSplit(endpoints, ',', absl::SkipEmpty())) o.endpoints.emplace_back(e);
  if (cmd == "run") return Run(o);
  if (cmd == "verify") return Verify(o);
  if (cmd == "first-write") return FirstWrite(o);
  if (cmd == "leader") {
    int l = Client(o, 0).Leader();
    if (l < 0) return 1;
    std::printf("%s\n", o.endpoints[l].c_str());
    return 0;
  }
  std::fprintf(stderr, "unknown command %s\n", cmd.c_str());
  return 2;
}
