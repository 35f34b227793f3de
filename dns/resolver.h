// The node's embedded DNS resolver: one event-loop thread serving every container endpoint
// over UDP and TCP on sockets bound inside each container's network namespace
// (DESIGN.md §5, reference/dataplane.md §5).
//
// Each endpoint has a listen address (default 127.0.0.11) and port (default: kernel's choice,
// so a container keeps port 53 for itself; an nft rule in the container redirects :53 to it),
// the networks it is attached to (name scoping, in priority order) and its upstream resolvers.
// Names not in the RecordTable are forwarded over UDP to the upstreams, one after another,
// each with `upstream_timeout`, from a socket created inside the container's namespace
// (loopback upstreams, e.g. the host's 127.0.0.53, are dialled from the daemon's namespace,
// since the container cannot reach them). At most `max_concurrent_forwards` queries (UDP and
// TCP to upstreams together) are in flight, and at most `max_concurrent_forwards_per_endpoint`
// of one endpoint; beyond that, and when every upstream failed, the client gets SERVFAIL. When a
// TCP client's forwarded answer comes back truncated over UDP, the query is repeated to that
// upstream over TCP (socket also made in the container's namespace); UDP clients get the truncated
// answer and retry over TCP themselves (RFC 7766). An upstream reply is accepted only from the
// upstream asked, with the id we sent and the question asked (AnswersQuestion).
//
// Implementation: dns/resolver_loop.h (one event loop, split by concern into resolver.cc,
// endpoints.cc, tcp_server.cc and forward.cc).
//
// Thread safety: AddEndpoint/RemoveEndpoint may be called from any thread. The RecordTable is
// shared and updated independently. Destruction stops the loop and closes every socket.
#pragma once

#include <sys/socket.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "dns/records.h"

namespace shoal::dns {

struct Upstream {
  sockaddr_storage addr{};
  socklen_t len = 0;
  bool loopback = false;  // dialled from the daemon's namespace
  std::string text;
};

// "1.2.3.4", "1.2.3.4:5353", "::1", "[::1]:5353". InvalidArgument naming the bad value.
absl::StatusOr<Upstream> ParseUpstream(const std::string& text);

struct ResolverOptions {
  std::chrono::milliseconds upstream_timeout{2000};
  size_t max_concurrent_forwards = 1024;  // whole resolver
  // One container cannot use up the node's forwarding capacity (Docker's cap of 1024 is per
  // container, since each has its own resolver; here one resolver serves them all).
  size_t max_concurrent_forwards_per_endpoint = 256;
  // UDP sockets per endpoint and upstream address family, each on its own kernel-chosen port;
  // every forwarded query leaves from one picked at random (source-port entropy besides the
  // 16-bit id and the question, RFC 5452 §9.2).
  size_t upstream_sockets = 4;
  size_t max_tcp_connections_per_endpoint = 64;
  std::chrono::milliseconds tcp_idle_timeout{10000};
};

inline constexpr size_t kMaxUpstreams = 3;

struct EndpointSpec {
  std::string id;     // unique per resolver (e.g. the container id)
  int netns_fd = -1;  // borrowed; -1 = the daemon's own namespace
  std::string listen_ip = "127.0.0.11";
  uint16_t port = 0;                  // 0 = kernel's choice (same port for UDP and TCP)
  std::vector<std::string> networks;  // attached networks, priority order
  // See ParseUpstream; empty = internal network. At most kMaxUpstreams (glibc's MAXNS), tried
  // in order, each with upstream_timeout (worst case 3 x 2 s; a glibc client waits 5 s per
  // attempt and tries twice).
  std::vector<std::string> upstreams;
};

struct BoundEndpoint {
  uint16_t port = 0;  // UDP and TCP
};

class Resolver {
 public:
  // Starts the loop thread. `table` must outlive the resolver.
  static absl::StatusOr<std::unique_ptr<Resolver>> Start(const RecordTable* table,
                                                         ResolverOptions options = {});
  virtual ~Resolver() = default;

  // Binds the endpoint's sockets in its namespace and starts serving. AlreadyExists for a
  // duplicate id; InvalidArgument for a bad upstream or listen address; the bind error
  // otherwise. On error nothing is left behind.
  virtual absl::StatusOr<BoundEndpoint> AddEndpoint(const EndpointSpec& spec) = 0;
  // Stops serving and closes the endpoint's sockets; NotFound for an unknown id.
  virtual absl::Status RemoveEndpoint(const std::string& id) = 0;
};

}  // namespace shoal::dns
