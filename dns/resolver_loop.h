// Internal to dns/: the event-loop implementation behind Resolver (dns/resolver.h). Its member
// functions live in four files by concern:
//   resolver.cc    the loop thread, command queue, timers and UDP serving;
//   endpoints.cc   the per-netns socket registry (bind in the container's namespace,
//                  register/unregister with epoll, drop an endpoint's in-flight state);
//   tcp_server.cc  TCP clients (RFC 7766 framing, several queries per connection, idle sweep);
//   forward.cc     forwarding to upstreams (UDP, TCP retry of truncated answers, timeouts,
//                  concurrency cap, reply validation).
// Everything below except Post() and the public overrides runs on the loop thread only.
#pragma once

#include <sys/epoll.h>
#include <sys/socket.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "base/log.h"
#include "base/unique_fd.h"
#include "dns/answer.h"
#include "dns/resolver.h"

namespace shoal::dns::internal {

using Clock = std::chrono::steady_clock;

struct Endpoint;

// What an epoll event refers to (epoll_event.data.ptr points at one of these).
struct Source {
  enum Kind { kWake, kUdp, kTcpListen, kConn, kForward, kUpstreamTcp } kind;
  Endpoint* ep = nullptr;
  uint64_t conn_id = 0;
  int fd = -1;
};

// A TCP client connection.
struct Conn {
  uint64_t id = 0;
  base::UniqueFd fd;
  Endpoint* ep = nullptr;
  std::string in, out;
  Clock::time_point last;
  Source source;
  bool dead = false;
};

struct Endpoint {
  std::string id;
  std::vector<std::string> networks;
  std::vector<Upstream> upstreams;
  base::UniqueFd udp, tcp;
  // Upstream sockets: [0] IPv4 and [1] IPv6 in the container's namespace, [2]/[3] in ours;
  // each a pool of `upstream_sockets` (one picked at random per query, so a spoofer must also
  // guess the source port). fwd_src[i][k] is fwd[i][k]'s epoll source (sized once).
  std::vector<base::UniqueFd> fwd[4];
  std::vector<Source> fwd_src[4];
  Source udp_src, tcp_src;
  size_t conns = 0;
  size_t forwards = 0;   // queries of this endpoint being forwarded (UDP or TCP upstream)
  base::UniqueFd netns;  // dup of the endpoint's namespace (for TCP upstream sockets)
};

// The fwd[] slot for an upstream.
inline int ForwardSlot(const Upstream& u) {
  return (u.addr.ss_family == AF_INET ? 0 : 1) + (u.loopback ? 2 : 0);
}

// A query forwarded over UDP, waiting for the upstream's answer.
struct Pending {
  Endpoint* ep = nullptr;
  uint16_t client_id = 0;
  sockaddr_storage client{};
  socklen_t client_len = 0;
  uint64_t conn_id = 0;  // 0 = UDP client
  std::string query;     // with our id
  size_t next_upstream = 0;
  int fwd_fd = -1;
  const Upstream* upstream = nullptr;
  Clock::time_point deadline;
  uint64_t seq = 0;
};

// A TCP query to an upstream, made when a TCP client's forwarded answer came back truncated
// over UDP (RFC 7766: the resolver retries over TCP for the client).
struct UpTcp {
  uint64_t id = 0;
  base::UniqueFd fd;
  Pending p;
  std::string out, in;
  Source source;
};

// Packet id helpers (the first two bytes, big-endian).
void SetId(std::string& packet, uint16_t id);
uint16_t GetId(absl::string_view packet);
// Same family, address and port.
bool SameAddr(const sockaddr_storage& a, const sockaddr_storage& b);

class LoopResolver final : public Resolver {
 public:
  LoopResolver(const RecordTable* table, ResolverOptions options)
      : table_(table), options_(options) {}
  ~LoopResolver() override;

  absl::Status Init();

  // endpoints.cc
  absl::StatusOr<BoundEndpoint> AddEndpoint(const EndpointSpec& spec) override;
  absl::Status RemoveEndpoint(const std::string& id) override;

 private:
  using UpTcpMap = absl::flat_hash_map<uint64_t, std::unique_ptr<UpTcp>>;

  struct Timeout {
    Clock::time_point deadline;
    uint64_t key;  // Key(fd, id) of a Pending, or an UpTcp id | kTcpTimeoutFlag
    uint64_t seq;
  };
  static constexpr uint64_t kTcpTimeoutFlag = 1ULL << 63;
  static uint64_t Key(int fd, uint16_t id) { return (static_cast<uint64_t>(fd) << 16) | id; }

  // resolver.cc: loop plumbing and UDP serving.
  absl::Status Watch(int fd, Source* src, uint32_t events, int op = EPOLL_CTL_ADD);
  void Post(std::function<void()> fn);  // any thread
  void Run();
  void RunCommands();
  int NextTimeoutMs();
  QueryContext Context(const Endpoint& e, bool tcp);
  void OnUdp(Endpoint& e);

  // endpoints.cc: the registry.
  absl::Status Register(std::unique_ptr<Endpoint> ep);
  void Unwatch(Endpoint& e);
  absl::Status Unregister(const std::string& id);

  // tcp_server.cc
  void OnAccept(Endpoint& e);
  void OnConn(uint64_t id, uint32_t events);
  void Send(Conn& c, const std::string& msg);
  void Flush(Conn& c);
  void SweepConns();

  // forward.cc
  void StartForward(Pending p, absl::string_view packet);
  void SendNext(Pending p);
  void StartTcpUpstream(Pending p);
  void OnUpTcp(uint64_t id, uint32_t events);
  void FinishUpTcp(UpTcpMap::iterator it, const std::string& reply);
  void OnForwardReply(Endpoint& e, int fd);
  // Ends a forward started by StartForward (every such forward ends here exactly once, or is
  // dropped with its endpoint).
  void Complete(const Pending& p, const std::string& reply);
  void ReplyToClient(const Pending& p, const std::string& reply);
  void ExpireForwards();

  const RecordTable* table_;
  ResolverOptions options_;
  std::shared_ptr<spdlog::logger> log_ = base::Logger("dns");
  base::UniqueFd epoll_, wake_;
  Source wake_src_{};
  std::thread thread_;
  std::mutex mu_;
  std::deque<std::function<void()>> commands_;  // guarded by mu_
  // Loop thread only:
  bool stop_ = false;
  absl::flat_hash_map<std::string, std::unique_ptr<Endpoint>> endpoints_;
  absl::flat_hash_map<uint64_t, std::unique_ptr<Conn>> conns_;
  absl::flat_hash_map<uint64_t, Pending> pending_;
  UpTcpMap up_tcp_;
  std::deque<Timeout> timeouts_;
  uint64_t next_conn_id_ = 0, seq_ = 0;
  uint32_t rotation_ = 0;
  std::minstd_rand rng_{std::random_device{}()};
  static constexpr int kUdpBatch = 32;
  static constexpr size_t kUdpQueryMax = 4096;
  std::vector<char> udp_buf_;  // kUdpBatch receive buffers for OnUdp
};

}  // namespace shoal::dns::internal
