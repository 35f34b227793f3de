// Transport: raft messages between members over gRPC (service api::Raft).
//
// Each peer gets one long-lived client stream (StreamRaftMessage, gRPC callback API) with at
// most one write outstanding: Send() starts the write itself when the stream is idle (no
// thread hand-off on the commit path: the write usually happens inline), otherwise queues the
// message in a bounded queue that the write completions drain in order. Nothing blocks the
// raft loop: a slow peer only fills its queue, and then messages are dropped (raft
// retransmits). Snapshot chunks travel as ordinary messages on that stream, so a snapshot's
// size is not limited by the gRPC message size. A per-peer connection thread (off the
// message path) opens the stream and, after a stream error, reopens it with backoff; messages
// queued for a broken stream are dropped.
//
// Security: `channel_credentials`/`server_credentials` are the mTLS hook (the control-plane
// issue plugs the cluster CA in); they default to insecure for loopback tests.
//
// Thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "api/raft.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "manager/raft/latency.h"

namespace shoal::manager::raft {

namespace api = ::shoal::api::v1;

struct TransportOptions {
  std::shared_ptr<grpc::ChannelCredentials> channel_credentials;  // null: insecure
  // With TLS credentials: the name the peers' certificates are checked against (managers are
  // dialled by role name, "shoal-manager", whatever their address). Empty: the address host.
  std::string ssl_target_name;
  size_t queue_limit = 4096;                                       // messages per peer
};

class Transport {
 public:
  using Handler = std::function<void(api::RaftMessage)>;
  explicit Transport(TransportOptions opts = {});
  ~Transport();
  Transport(const Transport&) = delete;
  Transport& operator=(const Transport&) = delete;

  void SetPeer(uint64_t id, const std::string& addr);  // adds or re-addresses
  void RemovePeer(uint64_t id);
  bool HasPeer(uint64_t id) const;
  // Queues `m` for m.to(); false when the peer is unknown or its queue is full.
  bool Send(api::RaftMessage m);
  void Stop();
  // Send() -> the stream write starting (queue_wait) and the write itself (write), over all
  // peers since the last reset.
  std::string Stats(bool reset);

  // The gRPC service receiving messages; register it on the member's server.
  static std::unique_ptr<api::Raft::Service> NewService(Handler handler);

 private:
  struct Peer;
  class Stream;
  void ConnectionLoop(Peer* p);
  // Starts writing `m` on p's stream (p->writing must have been set by the caller).
  void StartWrite(Peer* p, Stream* s, api::RaftMessage m, bool more,
                  std::chrono::steady_clock::time_point queued_at);
  void WriteDone(Peer* p, Stream* s, bool ok);

  TransportOptions opts_;
  mutable std::mutex mu_;
  std::map<uint64_t, std::unique_ptr<Peer>> peers_;
  std::atomic<bool> stopped_{false};
  std::mutex stats_mu_;
  LatencyHistogram queue_wait_;  // Send() -> StartWrite
  LatencyHistogram write_;       // StartWrite -> write completion
};

}  // namespace shoal::manager::raft
