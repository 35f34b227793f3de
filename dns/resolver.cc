#include "dns/resolver.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <random>
#include <thread>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "base/log.h"
#include "base/status.h"
#include "base/unique_fd.h"
#include "dns/answer.h"
#include "dns/netns_socket.h"

namespace shoal::dns {

absl::StatusOr<Upstream> ParseUpstream(const std::string& text) {
  Upstream u;
  u.text = text;
  std::string host = text;
  uint16_t port = 53;
  auto bad = [&] {
    return absl::InvalidArgumentError(absl::StrCat("upstream \"", text, "\": not ip[:port]"));
  };
  if (!text.empty() && text[0] == '[') {
    size_t close = text.find(']');
    if (close == std::string::npos) return bad();
    host = text.substr(1, close - 1);
    if (close + 1 < text.size()) {
      uint32_t p;
      if (text[close + 1] != ':' || !absl::SimpleAtoi(text.substr(close + 2), &p) || p == 0 ||
          p > 65535) {
        return bad();
      }
      port = static_cast<uint16_t>(p);
    }
  } else if (std::count(text.begin(), text.end(), ':') == 1) {
    size_t colon = text.find(':');
    host = text.substr(0, colon);
    uint32_t p;
    if (!absl::SimpleAtoi(text.substr(colon + 1), &p) || p == 0 || p > 65535) return bad();
    port = static_cast<uint16_t>(p);
  }
  auto* a4 = reinterpret_cast<sockaddr_in*>(&u.addr);
  auto* a6 = reinterpret_cast<sockaddr_in6*>(&u.addr);
  if (inet_pton(AF_INET, host.c_str(), &a4->sin_addr) == 1) {
    a4->sin_family = AF_INET;
    a4->sin_port = htons(port);
    u.len = sizeof(sockaddr_in);
    u.loopback = (ntohl(a4->sin_addr.s_addr) >> 24) == 127;
  } else if (inet_pton(AF_INET6, host.c_str(), &a6->sin6_addr) == 1) {
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons(port);
    u.len = sizeof(sockaddr_in6);
    u.loopback = IN6_IS_ADDR_LOOPBACK(&a6->sin6_addr);
  } else {
    return bad();
  }
  return u;
}

namespace {

using Clock = std::chrono::steady_clock;

bool SameAddr(const sockaddr_storage& a, socklen_t alen, const sockaddr_storage& b) {
  if (a.ss_family != b.ss_family) return false;
  if (a.ss_family == AF_INET) {
    auto* x = reinterpret_cast<const sockaddr_in*>(&a);
    auto* y = reinterpret_cast<const sockaddr_in*>(&b);
    return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
  }
  auto* x = reinterpret_cast<const sockaddr_in6*>(&a);
  auto* y = reinterpret_cast<const sockaddr_in6*>(&b);
  return x->sin6_port == y->sin6_port &&
         std::memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(in6_addr)) == 0;
}

void SetId(std::string& packet, uint16_t id) {
  packet[0] = static_cast<char>(id >> 8);
  packet[1] = static_cast<char>(id & 0xff);
}
uint16_t GetId(const std::string& packet) {
  return static_cast<uint16_t>((static_cast<uint8_t>(packet[0]) << 8) |
                               static_cast<uint8_t>(packet[1]));
}

struct Endpoint;
struct Source {
  enum Kind { kWake, kUdp, kTcpListen, kConn, kForward, kUpstreamTcp } kind;
  Endpoint* ep = nullptr;
  uint64_t conn_id = 0;
  int fd = -1;
};

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
  // Upstream sockets: [0] IPv4 and [1] IPv6 in the container's namespace, [2]/[3] in ours.
  base::UniqueFd fwd[4];
  Source udp_src, tcp_src, fwd_src[4];
  size_t conns = 0;
  base::UniqueFd netns;  // dup of the endpoint's namespace (for TCP upstream sockets)
};

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

constexpr uint64_t kTcpTimeoutFlag = 1ULL << 63;

class LoopResolver final : public Resolver {
 public:
  LoopResolver(const RecordTable* table, ResolverOptions options)
      : table_(table), options_(options) {}

  ~LoopResolver() override {
    Post([this] { stop_ = true; });
    if (thread_.joinable()) thread_.join();
  }

  absl::Status Init() {
    epoll_ = base::UniqueFd(::epoll_create1(EPOLL_CLOEXEC));
    if (!epoll_) return base::ErrnoStatus(errno, "epoll_create1");
    wake_ = base::UniqueFd(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
    if (!wake_) return base::ErrnoStatus(errno, "eventfd");
    wake_src_ = Source{Source::kWake, nullptr, 0, wake_.get()};
    RETURN_IF_ERROR(Watch(wake_.get(), &wake_src_, EPOLLIN));
    thread_ = std::thread([this] { Run(); });
    return absl::OkStatus();
  }

  absl::StatusOr<BoundEndpoint> AddEndpoint(const EndpointSpec& spec) override {
    if (spec.id.empty()) return absl::InvalidArgumentError("endpoint id: empty");
    auto ep = std::make_unique<Endpoint>();
    ep->id = spec.id;
    ep->networks = spec.networks;
    if (spec.netns_fd >= 0) {
      ep->netns = base::UniqueFd(::fcntl(spec.netns_fd, F_DUPFD_CLOEXEC, 0));
      if (!ep->netns) return base::ErrnoStatus(errno, "dup netns fd");
    }
    for (const std::string& u : spec.upstreams) {
      ASSIGN_OR_RETURN(Upstream up, ParseUpstream(u));
      ep->upstreams.push_back(up);
    }
    ASSIGN_OR_RETURN(ep->udp,
                     BoundSocketInNetns(spec.netns_fd, SOCK_DGRAM, spec.listen_ip, spec.port));
    ASSIGN_OR_RETURN(uint16_t port, LocalPort(ep->udp.get()));
    ASSIGN_OR_RETURN(ep->tcp, BoundSocketInNetns(spec.netns_fd, SOCK_STREAM, spec.listen_ip, port));
    for (const Upstream& u : ep->upstreams) {
      int slot = (u.addr.ss_family == AF_INET ? 0 : 1) + (u.loopback ? 2 : 0);
      if (ep->fwd[slot]) continue;
      int ns = u.loopback ? -1 : spec.netns_fd;
      ASSIGN_OR_RETURN(ep->fwd[slot], UdpSocketInNetns(ns, u.addr.ss_family));
    }
    std::promise<absl::Status> done;
    Post([&] { done.set_value(Register(std::move(ep))); });
    RETURN_IF_ERROR(done.get_future().get());
    return BoundEndpoint{port};
  }

  absl::Status RemoveEndpoint(const std::string& id) override {
    std::promise<absl::Status> done;
    Post([&] { done.set_value(Unregister(id)); });
    return done.get_future().get();
  }

 private:
  absl::Status Watch(int fd, Source* src, uint32_t events, int op = EPOLL_CTL_ADD) {
    epoll_event ev{};
    ev.events = events;
    ev.data.ptr = src;
    if (::epoll_ctl(epoll_.get(), op, fd, &ev) != 0) return base::ErrnoStatus(errno, "epoll_ctl");
    return absl::OkStatus();
  }

  void Post(std::function<void()> fn) {
    {
      std::lock_guard lock(mu_);
      commands_.push_back(std::move(fn));
    }
    uint64_t one = 1;
    (void)!::write(wake_.get(), &one, sizeof(one));
  }

  // Loop thread only.
  absl::Status Register(std::unique_ptr<Endpoint> ep) {
    if (endpoints_.contains(ep->id)) {
      return absl::AlreadyExistsError(absl::StrCat("dns endpoint ", ep->id, " already exists"));
    }
    Endpoint* e = ep.get();
    e->udp_src = Source{Source::kUdp, e, 0, e->udp.get()};
    e->tcp_src = Source{Source::kTcpListen, e, 0, e->tcp.get()};
    RETURN_IF_ERROR(Watch(e->udp.get(), &e->udp_src, EPOLLIN));
    absl::Status s = Watch(e->tcp.get(), &e->tcp_src, EPOLLIN);
    for (int i = 0; i < 4 && s.ok(); ++i) {
      if (!e->fwd[i]) continue;
      e->fwd_src[i] = Source{Source::kForward, e, 0, e->fwd[i].get()};
      s = Watch(e->fwd[i].get(), &e->fwd_src[i], EPOLLIN);
    }
    if (!s.ok()) {
      Unwatch(*e);
      return s;
    }
    endpoints_[e->id] = std::move(ep);
    return absl::OkStatus();
  }

  void Unwatch(Endpoint& e) {
    for (int fd : {e.udp.get(), e.tcp.get(), e.fwd[0].get(), e.fwd[1].get(), e.fwd[2].get(),
                   e.fwd[3].get()}) {
      if (fd >= 0) ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
    }
  }

  absl::Status Unregister(const std::string& id) {
    auto it = endpoints_.find(id);
    if (it == endpoints_.end()) return absl::NotFoundError(absl::StrCat("dns endpoint ", id));
    Endpoint* e = it->second.get();
    Unwatch(*e);
    for (auto c = conns_.begin(); c != conns_.end();) {
      if (c->second->ep == e) {
        conns_.erase(c++);
      } else {
        ++c;
      }
    }
    for (auto u = up_tcp_.begin(); u != up_tcp_.end();) {
      if (u->second->p.ep == e) {
        up_tcp_.erase(u++);
      } else {
        ++u;
      }
    }
    for (auto p = pending_.begin(); p != pending_.end();) {
      if (p->second.ep == e) {
        pending_.erase(p++);
      } else {
        ++p;
      }
    }
    endpoints_.erase(it);
    return absl::OkStatus();
  }

  void Run() {
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

  void RunCommands() {
    uint64_t v;
    (void)!::read(wake_.get(), &v, sizeof(v));
    std::deque<std::function<void()>> cmds;
    {
      std::lock_guard lock(mu_);
      cmds.swap(commands_);
    }
    for (auto& c : cmds) c();
  }

  QueryContext Context(const Endpoint& e, bool tcp) {
    QueryContext ctx;
    ctx.table = table_;
    ctx.networks = &e.networks;
    ctx.can_forward = !e.upstreams.empty();
    ctx.over_tcp = tcp;
    ctx.rotation = rotation_++;
    return ctx;
  }

  void OnUdp(Endpoint& e) {
    char buf[kMaxMessageSize];
    for (int i = 0; i < 64; ++i) {
      sockaddr_storage from{};
      socklen_t flen = sizeof(from);
      ssize_t n =
          ::recvfrom(e.udp.get(), buf, sizeof(buf), 0, reinterpret_cast<sockaddr*>(&from), &flen);
      if (n < 0) return;  // EAGAIN or a transient error; the next event retries
      absl::string_view packet(buf, static_cast<size_t>(n));
      Outcome o = AnswerQuery(Context(e, false), packet);
      if (o.action == Outcome::kReply) {
        ::sendto(e.udp.get(), o.reply.data(), o.reply.size(), MSG_DONTWAIT,
                 reinterpret_cast<sockaddr*>(&from), flen);
      } else if (o.action == Outcome::kForward) {
        Pending p;
        p.ep = &e;
        p.client = from;
        p.client_len = flen;
        StartForward(std::move(p), packet);
      }
    }
  }

  void StartForward(Pending p, absl::string_view packet) {
    if (pending_.size() + up_tcp_.size() >= options_.max_concurrent_forwards) {
      ReplyToClient(p, ServFailFor(packet));
      return;
    }
    p.query = std::string(packet);
    p.client_id = GetId(p.query);
    SendNext(std::move(p));
  }

  // Sends to the next upstream, or answers SERVFAIL when none is left.
  void SendNext(Pending p) {
    Endpoint& e = *p.ep;
    while (p.next_upstream < e.upstreams.size()) {
      const Upstream& u = e.upstreams[p.next_upstream++];
      int slot = (u.addr.ss_family == AF_INET ? 0 : 1) + (u.loopback ? 2 : 0);
      int fd = e.fwd[slot].get();
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
    ReplyToClient(p, ServFailFor(p.query));
  }

  void StartTcpUpstream(Pending p) {
    const Upstream& u = *p.upstream;
    SetId(p.query, p.client_id);
    int ns = u.loopback ? -1 : p.ep->netns.get();
    base::UniqueFd fd;
    absl::Status st = RunInNetns(ns, [&]() -> absl::Status {
      fd =
          base::UniqueFd(::socket(u.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
      if (!fd) return base::ErrnoStatus(errno, "upstream tcp socket");
      return absl::OkStatus();
    });
    if (st.ok() && ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&u.addr), u.len) != 0 &&
        errno != EINPROGRESS) {
      st = base::ErrnoStatus(errno, "connect upstream ", u.text);
    }
    if (!st.ok()) {
      ReplyToClient(p, ServFailFor(p.query));
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
      ReplyToClient(up->p, ServFailFor(up->p.query));
      return;
    }
    timeouts_.push_back({Clock::now() + options_.upstream_timeout, up->id | kTcpTimeoutFlag, 0});
    uint64_t id = up->id;
    up_tcp_[id] = std::move(up);
  }

  void OnUpTcp(uint64_t id, uint32_t events) {
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
      if (n < 0 && errno == EAGAIN) break;
      break;  // EOF or error: whatever arrived is all there is
    }
    if (u.in.size() >= 2) {
      size_t len = (static_cast<uint8_t>(u.in[0]) << 8) | static_cast<uint8_t>(u.in[1]);
      if (u.in.size() >= 2 + len) return FinishUpTcp(it, u.in.substr(2, len));
    }
    if (events & (EPOLLHUP | EPOLLERR)) FinishUpTcp(it, "");
  }

  // Relays `reply` (or SERVFAIL when empty or not a response) and drops the upstream socket.
  void FinishUpTcp(absl::flat_hash_map<uint64_t, std::unique_ptr<UpTcp>>::iterator it,
                   const std::string& reply) {
    UpTcp& u = *it->second;
    bool ok = AnswersQuestion(u.p.query, reply);
    if (ok) {
      std::string r = reply;
      SetId(r, u.p.client_id);
      ReplyToClient(u.p, r);
    } else {
      ReplyToClient(u.p, ServFailFor(u.p.query));
    }
    up_tcp_.erase(it);
  }

  static uint64_t Key(int fd, uint16_t id) { return (static_cast<uint64_t>(fd) << 16) | id; }

  void OnForwardReply(Endpoint& e, int fd) {
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
      if (it == pending_.end() || !SameAddr(it->second.upstream->addr, 0, from)) continue;
      if (!AnswersQuestion(it->second.query, reply)) continue;  // not a response to it
      Pending p = std::move(it->second);
      pending_.erase(it);
      bool truncated = (static_cast<uint8_t>(reply[2]) & 0x02) != 0;
      if (truncated && p.conn_id != 0) {
        StartTcpUpstream(std::move(p));
        continue;
      }
      SetId(reply, p.client_id);
      ReplyToClient(p, reply);
    }
  }

  void ReplyToClient(const Pending& p, const std::string& reply) {
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

  void ExpireForwards() {
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

  int NextTimeoutMs() {
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

  // --- TCP (RFC 7766: two-byte length prefix, several queries per connection) ---
  void OnAccept(Endpoint& e) {
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

  void OnConn(uint64_t id, uint32_t events) {
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

  void Send(Conn& c, const std::string& msg) {
    c.out.push_back(static_cast<char>(msg.size() >> 8));
    c.out.push_back(static_cast<char>(msg.size() & 0xff));
    c.out.append(msg);
    Flush(c);
  }

  void Flush(Conn& c) {
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

  void SweepConns() {
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

  struct Timeout {
    Clock::time_point deadline;
    uint64_t key;
    uint64_t seq;
  };

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
  absl::flat_hash_map<uint64_t, std::unique_ptr<UpTcp>> up_tcp_;
  std::deque<Timeout> timeouts_;
  uint64_t next_conn_id_ = 0, seq_ = 0;
  uint32_t rotation_ = 0;
  std::minstd_rand rng_{std::random_device{}()};
};

}  // namespace

absl::StatusOr<std::unique_ptr<Resolver>> Resolver::Start(const RecordTable* table,
                                                          ResolverOptions options) {
  auto r = std::make_unique<LoopResolver>(table, options);
  RETURN_IF_ERROR(r->Init());
  return std::unique_ptr<Resolver>(std::move(r));
}

}  // namespace shoal::dns
