#include "manager/raft/transport.h"

#include <optional>

#include "base/log.h"

namespace shoal::manager::raft {

// One open StreamRaftMessage call. A hold keeps OnDone from running until the connection
// thread has stopped every new write (RemoveHold), so the object outlives every reaction.
class Transport::Stream final : public grpc::ClientWriteReactor<api::RaftMessage> {
 public:
  Stream(Transport* t, Peer* p) : t_(t), p_(p) {}
  void OnWriteDone(bool ok) override { t_->WriteDone(p_, this, ok); }
  void OnDone(const grpc::Status&) override;

  grpc::ClientContext ctx;
  api::ProcessRaftMessageResponse resp;
  api::RaftMessage current;  // the message being written (one write outstanding)
  std::chrono::steady_clock::time_point write_start;
  bool done = false;  // OnDone ran (under the peer's mutex)

 private:
  Transport* t_;
  Peer* p_;
};

struct Transport::Peer {
  uint64_t id = 0;
  std::string addr;
  std::mutex mu;
  std::condition_variable cv;
  std::deque<api::RaftMessage> queue;
  std::deque<std::chrono::steady_clock::time_point> queued_at;  // parallel to `queue`
  bool stop = false;
  bool readdressed = false;
  Stream* stream = nullptr;  // open stream accepting writes; null while (re)connecting
  bool writing = false;      // a write is outstanding (or being started) on `stream`
  bool broken = false;       // the current stream failed a write
  std::thread thread;        // ConnectionLoop
};

void Transport::Stream::OnDone(const grpc::Status&) {
  std::lock_guard<std::mutex> l(p_->mu);
  done = true;
  p_->cv.notify_all();
}

Transport::Transport(TransportOptions opts) : opts_(std::move(opts)) {
  if (!opts_.channel_credentials) opts_.channel_credentials = grpc::InsecureChannelCredentials();
}

Transport::~Transport() { Stop(); }

void Transport::Stop() {
  std::map<uint64_t, std::unique_ptr<Peer>> peers;
  {
    std::lock_guard<std::mutex> l(mu_);
    stopped_ = true;
    peers.swap(peers_);
  }
  for (auto& [id, p] : peers) {
    {
      std::lock_guard<std::mutex> l(p->mu);
      p->stop = true;
    }
    p->cv.notify_all();
  }
  for (auto& [id, p] : peers) p->thread.join();
}

void Transport::SetPeer(uint64_t id, const std::string& addr) {
  std::lock_guard<std::mutex> l(mu_);
  if (stopped_) return;
  auto it = peers_.find(id);
  if (it != peers_.end()) {
    Peer* p = it->second.get();
    {
      std::lock_guard<std::mutex> pl(p->mu);
      if (p->addr == addr) return;
      p->addr = addr;
      p->readdressed = true;
    }
    p->cv.notify_all();
    return;
  }
  auto p = std::make_unique<Peer>();
  p->id = id;
  p->addr = addr;
  Peer* raw = p.get();
  p->thread = std::thread([this, raw] { ConnectionLoop(raw); });
  peers_[id] = std::move(p);
}

void Transport::RemovePeer(uint64_t id) {
  std::unique_ptr<Peer> p;
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = peers_.find(id);
    if (it == peers_.end()) return;
    p = std::move(it->second);
    peers_.erase(it);
  }
  {
    std::lock_guard<std::mutex> l(p->mu);
    p->stop = true;
  }
  p->cv.notify_all();
  p->thread.join();
}

bool Transport::HasPeer(uint64_t id) const {
  std::lock_guard<std::mutex> l(mu_);
  return peers_.count(id) > 0;
}

bool Transport::Send(api::RaftMessage m) {
  Peer* p;
  Stream* s = nullptr;
  const auto now = std::chrono::steady_clock::now();
  // mu_ stays held: RemovePeer/Stop cannot free the peer meanwhile (the write's completion
  // may run inline here and never takes mu_).
  std::lock_guard<std::mutex> l(mu_);
  auto it = peers_.find(m.to());
  if (it == peers_.end()) return false;
  p = it->second.get();
  {
    std::lock_guard<std::mutex> pl(p->mu);
    if (p->stream != nullptr && !p->writing && !p->broken) {
      p->writing = true;  // the fast path: an idle, open stream
      s = p->stream;
    } else {
      if (p->queue.size() >= opts_.queue_limit) return false;
      p->queue.push_back(std::move(m));
      p->queued_at.push_back(now);
      return true;
    }
  }
  StartWrite(p, s, std::move(m), false, now);
  return true;
}

void Transport::StartWrite(Peer* p, Stream* s, api::RaftMessage m, bool more,
                           std::chrono::steady_clock::time_point queued_at) {
  s->current = std::move(m);
  s->write_start = std::chrono::steady_clock::now();
  {
    std::lock_guard<std::mutex> l(stats_mu_);
    queue_wait_.Add(s->write_start - queued_at);
  }
  grpc::WriteOptions wo;
  if (more) wo.set_buffer_hint();  // coalesce a burst into few socket writes
  s->StartWrite(&s->current, wo);  // OnWriteDone may run inline, on this thread
}

void Transport::WriteDone(Peer* p, Stream* s, bool ok) {
  {
    std::lock_guard<std::mutex> l(stats_mu_);
    write_.Add(std::chrono::steady_clock::now() - s->write_start);
  }
  api::RaftMessage next;
  std::chrono::steady_clock::time_point at;
  bool more = false;
  {
    std::lock_guard<std::mutex> l(p->mu);
    if (!ok) p->broken = true;
    if (!ok || p->stream != s || p->queue.empty()) {
      p->writing = false;
      p->cv.notify_all();
      return;
    }
    next = std::move(p->queue.front());
    at = p->queued_at.front();
    p->queue.pop_front();
    p->queued_at.pop_front();
    more = !p->queue.empty();
  }
  StartWrite(p, s, std::move(next), more, at);
}

void Transport::ConnectionLoop(Peer* p) {
  auto log = base::Logger("raft-transport");
  absl::Duration backoff = absl::Milliseconds(20);
  while (true) {
    std::string addr;
    {
      std::lock_guard<std::mutex> l(p->mu);
      if (p->stop) return;
      addr = p->addr;
      p->readdressed = false;
      p->broken = false;
    }
    grpc::ChannelArguments args;
    args.SetMaxSendMessageSize(-1);
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 50);
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 500);
    if (!opts_.ssl_target_name.empty()) args.SetSslTargetNameOverride(opts_.ssl_target_name);
    auto channel = grpc::CreateCustomChannel(addr, opts_.channel_credentials, args);
    auto stub = api::Raft::NewStub(channel);
    Stream stream(this, p);
    stub->async()->StreamRaftMessage(&stream.ctx, &stream.resp, &stream);
    stream.AddHold();
    stream.StartCall();
    // Open for writes; start on whatever queued up while disconnected.
    std::optional<api::RaftMessage> first;
    std::chrono::steady_clock::time_point first_at;
    bool more = false;
    {
      std::lock_guard<std::mutex> l(p->mu);
      p->stream = &stream;
      if (!p->queue.empty()) {
        p->writing = true;
        first = std::move(p->queue.front());
        first_at = p->queued_at.front();
        p->queue.pop_front();
        p->queued_at.pop_front();
        more = !p->queue.empty();
      }
    }
    if (first) StartWrite(p, &stream, std::move(*first), more, first_at);
    bool broken;
    {
      std::unique_lock<std::mutex> l(p->mu);
      p->cv.wait(l, [&] { return p->stop || p->readdressed || p->broken || stream.done; });
      broken = !p->stop && !p->readdressed;
      p->stream = nullptr;  // no new writes start on this stream
      if (broken) {
        p->queue.clear();  // raft retransmits
        p->queued_at.clear();
      }
    }
    stream.ctx.TryCancel();  // completes an outstanding write (not ok)
    {
      std::unique_lock<std::mutex> l(p->mu);
      p->cv.wait(l, [&] { return !p->writing; });
    }
    stream.RemoveHold();
    {
      std::unique_lock<std::mutex> l(p->mu);
      p->cv.wait(l, [&] { return stream.done; });
      if (p->stop) return;
      if (broken) {
        log->debug("raft peer {} at {} unreachable; retrying", p->id, addr);
        p->cv.wait_for(l, absl::ToChronoMilliseconds(backoff), [&] { return p->stop; });
        backoff = std::min(backoff * 2, absl::Milliseconds(500));
      } else {
        backoff = absl::Milliseconds(20);
      }
    }
  }
}

std::string Transport::Stats(bool reset) {
  std::lock_guard<std::mutex> l(stats_mu_);
  std::string out = "send_queue_wait: " + queue_wait_.Summary() + "\nsend_write_batch: " +
                    write_.Summary() + "\n";
  if (reset) {
    queue_wait_ = LatencyHistogram();
    write_ = LatencyHistogram();
  }
  return out;
}

namespace {

class RaftService final : public api::Raft::Service {
 public:
  explicit RaftService(Transport::Handler h) : handler_(std::move(h)) {}
  grpc::Status ProcessRaftMessage(grpc::ServerContext*, const api::RaftMessage* m,
                                  api::ProcessRaftMessageResponse*) override {
    handler_(*m);
    return grpc::Status::OK;
  }
  grpc::Status StreamRaftMessage(grpc::ServerContext*, grpc::ServerReader<api::RaftMessage>* r,
                                 api::ProcessRaftMessageResponse*) override {
    api::RaftMessage m;
    while (r->Read(&m)) handler_(std::move(m));
    return grpc::Status::OK;
  }

 private:
  Transport::Handler handler_;
};

}  // namespace

std::unique_ptr<api::Raft::Service> Transport::NewService(Handler handler) {
  return std::make_unique<RaftService>(std::move(handler));
}

}  // namespace shoal::manager::raft
