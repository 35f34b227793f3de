// Forwarding names the table does not know to the endpoint's upstreams: over UDP from the
// socket made in the container's namespace, one upstream after another with a timeout each,
// under one concurrency cap; a TCP client's truncated answer is fetched again over TCP. Only
// a reply from the upstream asked, with our id and the question asked, is relayed.
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/status.h"
#include "dns/netns_socket.h"
#include "dns/resolver_loop.h"

namespace shoal::dns::internal {

void LoopResolver::StartForward(Pending p, absl::string_view packet) {
  if (pending_.size() + up_tcp_.size() >= options_.max_concurrent_forwards ||
      p.ep->forwards >= options_.max_concurrent_forwards_per_endpoint) {
    ReplyToClient(p, ServFailFor(packet));
    return;
  }
  ++p.ep->forwards;  // until Complete()
  p.query = std::string(packet);
  p.client_id = GetId(p.query);
  SendNext(std::move(p));
}

// Sends to the next upstream, or answers SERVFAIL when none is left.
void LoopResolver::SendNext(Pending p) {
  Endpoint& e = *p.ep;
  while (p.next_upstream < e.upstreams.size()) {
    const Upstream& u = e.upstreams[p.next_upstream++];
    const std::vector<base::UniqueFd>& pool = e.fwd[ForwardSlot(u)];
    int fd = pool[rng_() % pool.size()].get();
    uint16_t id = 0;
    for (int tries = 0; tries < 16; ++tries) {
      id = static_cast<uint16_t>(rng_());
      if (!pending_.contains(Key(fd, id))) break;
    }
    if (pending_.contains(Key(fd, id))) break;
    SetId(p.query, id);
    if (::sendto(fd, p.query.data(), p.query.size(), MSG_DONTWAIT,
                 reinterpret_cast<const sockaddr*>(&u.addr), u.len) < 0) {
      continue;
    }
    p.fwd_fd = fd;
    p.upstream = &u;
    p.deadline = Clock::now() + options_.upstream_timeout;
    p.seq = ++seq_;
    timeouts_.push_back({p.deadline, Key(fd, id), p.seq});
    pending_[Key(fd, id)] = std::move(p);
    return;
  }
  SetId(p.query, p.client_id);
  Complete(p, ServFailFor(p.query));
}

void LoopResolver::StartTcpUpstream(Pending p) {
  const Upstream& u = *p.upstream;
  SetId(p.query, p.client_id);
  int ns = u.loopback ? -1 : p.ep->netns.get();
  base::UniqueFd fd;
  absl::Status st = RunInNetns(ns, [&]() -> absl::Status {
    fd = base::UniqueFd(::socket(u.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd) return base::ErrnoStatus(errno, "upstream tcp socket");
    return absl::OkStatus();
  });
  if (st.ok() && ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&u.addr), u.len) != 0 &&
      errno != EINPROGRESS) {
    st = base::ErrnoStatus(errno, "connect upstream ", u.text);
  }
  if (!st.ok()) {
    Complete(p, ServFailFor(p.query));
    return;
  }
  auto up = std::make_unique<UpTcp>();
  up->id = ++next_conn_id_;
  up->fd = std::move(fd);
  up->out.push_back(static_cast<char>(p.query.size() >> 8));
  up->out.push_back(static_cast<char>(p.query.size() & 0xff));
  up->out += p.query;
  up->source = Source{Source::kUpstreamTcp, p.ep, up->id, up->fd.get()};
  up->p = std::move(p);
  if (!Watch(up->fd.get(), &up->source, EPOLLOUT | EPOLLIN).ok()) {
    Complete(up->p, ServFailFor(up->p.query));
    return;
  }
  timeouts_.push_back({Clock::now() + options_.upstream_timeout, up->id | kTcpTimeoutFlag, 0});
  uint64_t id = up->id;
  up_tcp_[id] = std::move(up);
}

void LoopResolver::OnUpTcp(uint64_t id, uint32_t events) {
  auto it = up_tcp_.find(id);
  if (it == up_tcp_.end()) return;
  UpTcp& u = *it->second;
  if ((events & EPOLLOUT) && !u.out.empty()) {
    ssize_t n = ::send(u.fd.get(), u.out.data(), u.out.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0 && errno != EAGAIN) return FinishUpTcp(it, "");
    if (n > 0) u.out.erase(0, static_cast<size_t>(n));
    if (u.out.empty()) (void)Watch(u.fd.get(), &u.source, EPOLLIN, EPOLL_CTL_MOD);
  }
  if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR))) return;
  char buf[16384];
  while (true) {
    ssize_t n = ::read(u.fd.get(), buf, sizeof(buf));
    if (n > 0) {
      u.in.append(buf, static_cast<size_t>(n));
      continue;
    }
    break;  // EAGAIN, EOF or error: whatever arrived is all there is for now
  }
  if (u.in.size() >= 2) {
    size_t len = (static_cast<uint8_t>(u.in[0]) << 8) | static_cast<uint8_t>(u.in[1]);
    if (u.in.size() >= 2 + len) return FinishUpTcp(it, u.in.substr(2, len));
  }
  if (events & (EPOLLHUP | EPOLLERR)) FinishUpTcp(it, "");
}

// Relays `reply` (or SERVFAIL when empty or not an answer to the query) and drops the upstream
// socket.
void LoopResolver::FinishUpTcp(UpTcpMap::iterator it, const std::string& reply) {
  UpTcp& u = *it->second;
  bool ok = AnswersQuestion(u.p.query, reply);
  if (ok) {
    std::string r = reply;
    SetId(r, u.p.client_id);
    Complete(u.p, r);
  } else {
    Complete(u.p, ServFailFor(u.p.query));
  }
  up_tcp_.erase(it);
}

void LoopResolver::OnForwardReply(Endpoint& e, int fd) {
  (void)e;
  char buf[kMaxMessageSize];
  for (int i = 0; i < 64; ++i) {
    sockaddr_storage from{};
    socklen_t flen = sizeof(from);
    ssize_t n = ::recvfrom(fd, buf, sizeof(buf), 0, reinterpret_cast<sockaddr*>(&from), &flen);
    if (n < 0) return;
    if (n < static_cast<ssize_t>(kHeaderSize)) continue;
    std::string reply(buf, static_cast<size_t>(n));
    auto it = pending_.find(Key(fd, GetId(reply)));
    // Only the upstream we asked may answer (off-path spoofing must also guess the id).
    if (it == pending_.end() || !SameAddr(it->second.upstream->addr, from)) continue;
    if (!AnswersQuestion(it->second.query, reply)) continue;  // not a response to it
    Pending p = std::move(it->second);
    pending_.erase(it);
    bool truncated = (static_cast<uint8_t>(reply[2]) & 0x02) != 0;
    if (truncated && p.conn_id != 0) {
      StartTcpUpstream(std::move(p));
      continue;
    }
    SetId(reply, p.client_id);
    Complete(p, reply);
  }
}

void LoopResolver::Complete(const Pending& p, const std::string& reply) {
  --p.ep->forwards;
  ReplyToClient(p, reply);
}

void LoopResolver::ReplyToClient(const Pending& p, const std::string& reply) {
  if (reply.empty()) return;
  if (p.conn_id == 0) {
    ::sendto(p.ep->udp.get(), reply.data(), reply.size(), MSG_DONTWAIT,
             reinterpret_cast<const sockaddr*>(&p.client), p.client_len);
    return;
  }
  auto c = conns_.find(p.conn_id);
  if (c == conns_.end() || c->second->dead) return;
  Send(*c->second, reply);
}

void LoopResolver::ExpireForwards() {
  auto now = Clock::now();
  while (!timeouts_.empty() && timeouts_.front().deadline <= now) {
    Timeout t = timeouts_.front();
    timeouts_.pop_front();
    if (t.key & kTcpTimeoutFlag) {
      auto u = up_tcp_.find(t.key & ~kTcpTimeoutFlag);
      if (u != up_tcp_.end()) FinishUpTcp(u, "");
      continue;
    }
    auto it = pending_.find(t.key);
    if (it == pending_.end() || it->second.seq != t.seq) continue;
    Pending p = std::move(it->second);
    pending_.erase(it);
    SendNext(std::move(p));
  }
}

}  // namespace shoal::dns::internal
