// TCP clients of the resolver (RFC 7766): two-byte length prefix, several queries per
// connection, a per-endpoint connection cap and an idle timeout.
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dns/resolver_loop.h"

namespace shoal::dns::internal {

void LoopResolver::OnAccept(Endpoint& e) {
  while (true) {
    int fd = ::accept4(e.tcp.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;
    if (e.conns >= options_.max_tcp_connections_per_endpoint) {
      ::close(fd);
      continue;
    }
    auto c = std::make_unique<Conn>();
    c->id = ++next_conn_id_;
    c->fd = base::UniqueFd(fd);
    c->ep = &e;
    c->last = Clock::now();
    c->source = Source{Source::kConn, &e, c->id, fd};
    if (!Watch(fd, &c->source, EPOLLIN).ok()) continue;
    ++e.conns;
    conns_[c->id] = std::move(c);
  }
}

void LoopResolver::OnConn(uint64_t id, uint32_t events) {
  auto it = conns_.find(id);
  if (it == conns_.end()) return;
  Conn& c = *it->second;
  if (c.dead) return;
  c.last = Clock::now();
  if (events & EPOLLOUT) Flush(c);
  if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR))) return;
  char buf[16384];
  while (true) {
    ssize_t n = ::read(c.fd.get(), buf, sizeof(buf));
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
      c.dead = true;
      return;
    }
    if (n < 0) break;
    c.in.append(buf, static_cast<size_t>(n));
    if (c.in.size() > 4 * kMaxMessageSize) {
      c.dead = true;
      return;
    }
  }
  while (c.in.size() >= 2) {
    size_t len = (static_cast<uint8_t>(c.in[0]) << 8) | static_cast<uint8_t>(c.in[1]);
    if (c.in.size() < 2 + len) break;
    std::string packet = c.in.substr(2, len);
    c.in.erase(0, 2 + len);
    Outcome o = AnswerQuery(Context(*c.ep, true), packet);
    if (o.action == Outcome::kReply) {
      Send(c, o.reply);
    } else if (o.action == Outcome::kForward) {
      Pending p;
      p.ep = c.ep;
      p.conn_id = c.id;
      StartForward(std::move(p), packet);
    }
  }
}

void LoopResolver::Send(Conn& c, const std::string& msg) {
  c.out.push_back(static_cast<char>(msg.size() >> 8));
  c.out.push_back(static_cast<char>(msg.size() & 0xff));
  c.out.append(msg);
  Flush(c);
}

void LoopResolver::Flush(Conn& c) {
  while (!c.out.empty()) {
    ssize_t n = ::send(c.fd.get(), c.out.data(), c.out.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EAGAIN) break;
      c.dead = true;
      return;
    }
    c.out.erase(0, static_cast<size_t>(n));
  }
  (void)Watch(c.fd.get(), &c.source, c.out.empty() ? EPOLLIN : EPOLLIN | EPOLLOUT, EPOLL_CTL_MOD);
}

void LoopResolver::SweepConns() {
  auto now = Clock::now();
  for (auto it = conns_.begin(); it != conns_.end();) {
    Conn& c = *it->second;
    if (c.dead || now - c.last > options_.tcp_idle_timeout) {
      --c.ep->conns;
      conns_.erase(it++);
    } else {
      ++it;
    }
  }
}

}  // namespace shoal::dns::internal
