#include "manager/raft/transport.h"

#include "base/log.h"

namespace shoal::manager::raft {

struct Transport::Peer {
  uint64_t id = 0;
  std::string addr;
  std::mutex mu;
  std::condition_variable cv;
  std::deque<api::RaftMessage> queue;
  std::deque<std::chrono::steady_clock::time_point> queued_at;  // parallel to `queue`
  bool stop = false;
  bool readdressed = false;
  std::thread thread;
  grpc::ClientContext* active = nullptr;  // to cancel a blocked stream
};

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
      if (p->active) p->active->TryCancel();
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
    std::lock_guard<std::mutex> pl(p->mu);
    if (p->addr != addr) {
      p->addr = addr;
      p->readdressed = true;
      if (p->active) p->active->TryCancel();
    }
    return;
  }
  auto p = std::make_unique<Peer>();
  p->id = id;
  p->addr = addr;
  Peer* raw = p.get();
  p->thread = std::thread([this, raw] { SenderLoop(raw); });
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
    if (p->active) p->active->TryCancel();
  }
  p->cv.notify_all();
  p->thread.join();
}

bool Transport::HasPeer(uint64_t id) const {
  std::lock_guard<std::mutex> l(mu_);
  return peers_.count(id) > 0;
}

bool Transport::Send(api::RaftMessage m) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = peers_.find(m.to());
  if (it == peers_.end()) return false;
  Peer* p = it->second.get();
  {
    std::lock_guard<std::mutex> pl(p->mu);
    if (p->queue.size() >= opts_.queue_limit) return false;
    p->queue.push_back(std::move(m));
    p->queued_at.push_back(std::chrono::steady_clock::now());
  }
  p->cv.notify_one();
  return true;
}

void Transport::SenderLoop(Peer* p) {
  auto log = base::Logger("raft-transport");
  absl::Duration backoff = absl::Milliseconds(20);
  while (true) {
    std::string addr;
    {
      std::lock_guard<std::mutex> l(p->mu);
      if (p->stop) return;
      addr = p->addr;
      p->readdressed = false;
    }
    grpc::ChannelArguments args;
    args.SetMaxSendMessageSize(-1);
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 50);
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 500);
    if (!opts_.ssl_target_name.empty()) args.SetSslTargetNameOverride(opts_.ssl_target_name);
    auto channel = grpc::CreateCustomChannel(addr, opts_.channel_credentials, args);
    auto stub = api::Raft::NewStub(channel);
    grpc::ClientContext ctx;
    api::ProcessRaftMessageResponse resp;
    {
      std::lock_guard<std::mutex> l(p->mu);
      if (p->stop) return;
      p->active = &ctx;
    }
    auto writer = stub->StreamRaftMessage(&ctx, &resp);
    bool broken = false;
    while (!broken) {
      std::deque<api::RaftMessage> batch;
      std::deque<std::chrono::steady_clock::time_point> at;
      {
        std::unique_lock<std::mutex> l(p->mu);
        p->cv.wait(l, [&] { return p->stop || p->readdressed || !p->queue.empty(); });
        if (p->stop || p->readdressed) break;
        batch.swap(p->queue);
        at.swap(p->queued_at);
      }
      const auto start = std::chrono::steady_clock::now();
      for (size_t i = 0; i < batch.size(); ++i) {
        grpc::WriteOptions wo;
        if (i + 1 < batch.size()) wo.set_buffer_hint();  // coalesce a burst into few writes
        if (!writer->Write(batch[i], wo)) {
          broken = true;  // the rest of the batch is dropped: raft retransmits
          break;
        }
      }
      if (!broken) backoff = absl::Milliseconds(20);
      const auto end = std::chrono::steady_clock::now();
      {
        std::lock_guard<std::mutex> l(stats_mu_);
        for (const auto& t : at) queue_wait_.Add(start - t);
        write_.Add(end - start);
      }
    }
    {
      std::lock_guard<std::mutex> l(p->mu);
      p->active = nullptr;
    }
    ctx.TryCancel();
    writer->Finish().IgnoreError();
    std::unique_lock<std::mutex> l(p->mu);
    if (p->stop) return;
    if (broken) {
      log->debug("raft peer {} at {} unreachable; retrying", p->id, addr);
      p->queue.clear();
      p->queued_at.clear();
      p->cv.wait_for(l, absl::ToChronoMilliseconds(backoff), [&] { return p->stop; });
      backoff = std::min(backoff * 2, absl::Milliseconds(500));
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
