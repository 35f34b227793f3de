// The resolver's event loop: the thread, the command queue other threads post to, timers, and
// UDP serving. See resolver_loop.h for where the rest lives.
#include "dns/resolver.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "base/status.h"
#include "dns/resolver_loop.h"

namespace shoal::dns {
namespace internal {

LoopResolver::~LoopResolver() {
  Post([this] { stop_ = true; });
  if (thread_.joinable()) thread_.join();
}

absl::Status LoopResolver::Init() {
  epoll_ = base::UniqueFd(::epoll_create1(EPOLL_CLOEXEC));
  if (!epoll_) return base::ErrnoStatus(errno, "epoll_create1");
  wake_ = base::UniqueFd(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!wake_) return base::ErrnoStatus(errno, "eventfd");
  wake_src_ = Source{Source::kWake, nullptr, 0, wake_.get()};
  RETURN_IF_ERROR(Watch(wake_.get(), &wake_src_, EPOLLIN));
  thread_ = std::thread([this] { Run(); });
  return absl::OkStatus();
}

absl::Status LoopResolver::Watch(int fd, Source* src, uint32_t events, int op) {
  epoll_event ev{};
  ev.events = events;
  ev.data.ptr = src;
  if (::epoll_ctl(epoll_.get(), op, fd, &ev) != 0) return base::ErrnoStatus(errno, "epoll_ctl");
  return absl::OkStatus();
}

void LoopResolver::Post(std::function<void()> fn) {
  {
    std::lock_guard lock(mu_);
    commands_.push_back(std::move(fn));
  }
  uint64_t one = 1;
  (void)!::write(wake_.get(), &one, sizeof(one));
}

void LoopResolver::Run() {
  epoll_event events[64];
  while (!stop_) {
    int timeout_ms = NextTimeoutMs();
    int n = ::epoll_wait(epoll_.get(), events, 64, timeout_ms);
    if (n < 0 && errno != EINTR) {
      log_->error("epoll_wait: {}", std::strerror(errno));
      return;
    }
    bool woke = false;
    for (int i = 0; i < n; ++i) {
      auto* src = static_cast<Source*>(events[i].data.ptr);
      switch (src->kind) {
        case Source::kWake:
          woke = true;
          break;
        case Source::kUdp:
          OnUdp(*src->ep);
          break;
        case Source::kTcpListen:
          OnAccept(*src->ep);
          break;
        case Source::kConn:
          OnConn(src->conn_id, events[i].events);
          break;
        case Source::kForward:
          OnForwardReply(*src->ep, src->fd);
          break;
        case Source::kUpstreamTcp:
          OnUpTcp(src->conn_id, events[i].events);
          break;
      }
    }
    ExpireForwards();
    SweepConns();
    if (woke) RunCommands();
  }
}

void LoopResolver::RunCommands() {
  uint64_t v;
  (void)!::read(wake_.get(), &v, sizeof(v));
  std::deque<std::function<void()>> cmds;
  {
    std::lock_guard lock(mu_);
    cmds.swap(commands_);
  }
  for (auto& c : cmds) c();
}

int LoopResolver::NextTimeoutMs() {
  int ms = -1;
  if (!timeouts_.empty()) {
    auto d = std::chrono::duration_cast<std::chrono::milliseconds>(timeouts_.front().deadline -
                                                                   Clock::now());
    ms = static_cast<int>(std::max<int64_t>(0, d.count() + 1));
  }
  if (!conns_.empty()) {
    int idle = static_cast<int>(options_.tcp_idle_timeout.count());
    ms = ms < 0 ? idle : std::min(ms, idle);
  }
  return ms;
}

QueryContext LoopResolver::Context(const Endpoint& e, bool tcp) {
  QueryContext ctx;
  ctx.table = table_;
  ctx.networks = &e.networks;
  ctx.can_forward = !e.upstreams.empty();
  ctx.over_tcp = tcp;
  ctx.rotation = rotation_++;
  return ctx;
}

// Datagrams are read and answered in batches (recvmmsg/sendmmsg: two system calls for up to
// kUdpBatch queries instead of two per query). A query larger than kUdpQueryMax (cut short by
// the kernel, MSG_TRUNC) is dropped: no real query comes near 4 KiB.
void LoopResolver::OnUdp(Endpoint& e) {
  if (udp_buf_.empty()) udp_buf_.resize(kUdpBatch * kUdpQueryMax);
  mmsghdr in[kUdpBatch], out[kUdpBatch];
  iovec in_iov[kUdpBatch], out_iov[kUdpBatch];
  sockaddr_storage from[kUdpBatch];
  std::string replies[kUdpBatch];
  for (int round = 0; round < 4; ++round) {  // then let other sources have a turn
    for (int i = 0; i < kUdpBatch; ++i) {
      in_iov[i] = iovec{udp_buf_.data() + i * kUdpQueryMax, kUdpQueryMax};
      in[i] = mmsghdr{};
      in[i].msg_hdr.msg_name = &from[i];
      in[i].msg_hdr.msg_namelen = sizeof(from[i]);
      in[i].msg_hdr.msg_iov = &in_iov[i];
      in[i].msg_hdr.msg_iovlen = 1;
    }
    int n = ::recvmmsg(e.udp.get(), in, kUdpBatch, MSG_DONTWAIT, nullptr);
    if (n <= 0) return;  // EAGAIN or a transient error; the next event retries
    int m = 0;
    for (int i = 0; i < n; ++i) {
      if (in[i].msg_hdr.msg_flags & MSG_TRUNC) continue;
      absl::string_view packet(static_cast<const char*>(in_iov[i].iov_base), in[i].msg_len);
      Outcome o = AnswerQuery(Context(e, false), packet);
      if (o.action == Outcome::kReply) {
        replies[m] = std::move(o.reply);
        out_iov[m] = iovec{replies[m].data(), replies[m].size()};
        out[m] = mmsghdr{};
        out[m].msg_hdr.msg_name = &from[i];
        out[m].msg_hdr.msg_namelen = in[i].msg_hdr.msg_namelen;
        out[m].msg_hdr.msg_iov = &out_iov[m];
        out[m].msg_hdr.msg_iovlen = 1;
        ++m;
      } else if (o.action == Outcome::kForward) {
        Pending p;
        p.ep = &e;
        p.client = from[i];
        p.client_len = in[i].msg_hdr.msg_namelen;
        StartForward(std::move(p), packet);
      }
    }
    // A reply the socket buffer cannot take is dropped, as a lost datagram (the client
    // retries).
    for (int sent = 0; sent < m;) {
      int k = ::sendmmsg(e.udp.get(), out + sent, static_cast<unsigned>(m - sent), MSG_DONTWAIT);
      if (k <= 0) break;
      sent += k;
    }
    if (n < kUdpBatch) return;
  }
}

}  // namespace internal

absl::StatusOr<std::unique_ptr<Resolver>> Resolver::Start(const RecordTable* table,
                                                          ResolverOptions options) {
  auto r = std::make_unique<internal::LoopResolver>(table, options);
  RETURN_IF_ERROR(r->Init());
  return std::unique_ptr<Resolver>(std::move(r));
}

}  // namespace shoal::dns
