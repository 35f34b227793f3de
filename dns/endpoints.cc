// The resolver's per-netns socket registry: an endpoint's UDP/TCP listeners and upstream
// sockets are created inside the container's network namespace (netns_socket.h), then handed
// to the loop thread, which watches them; removal drops the endpoint's connections and
// in-flight forwards with it.
#include <fcntl.h>
#include <sys/epoll.h>

#include <algorithm>
#include <future>

#include "absl/strings/str_cat.h"
#include "base/status.h"
#include "dns/netns_socket.h"
#include "dns/resolver_loop.h"

namespace shoal::dns::internal {

absl::StatusOr<BoundEndpoint> LoopResolver::AddEndpoint(const EndpointSpec& spec) {
  if (spec.id.empty()) return absl::InvalidArgumentError("endpoint id: empty");
  auto ep = std::make_unique<Endpoint>();
  ep->id = spec.id;
  ep->networks = spec.networks;
  if (spec.netns_fd >= 0) {
    ep->netns = base::UniqueFd(::fcntl(spec.netns_fd, F_DUPFD_CLOEXEC, 0));
    if (!ep->netns) return base::ErrnoStatus(errno, "dup netns fd");
  }
  if (spec.upstreams.size() > kMaxUpstreams) {
    return absl::InvalidArgumentError(
        absl::StrCat("dns endpoint ", spec.id, ": upstreams: ", spec.upstreams.size(),
                     " given, at most ", kMaxUpstreams, " (like glibc's MAXNS)"));
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
    int slot = ForwardSlot(u);
    if (!ep->fwd[slot].empty()) continue;
    int ns = u.loopback ? -1 : spec.netns_fd;
    for (size_t k = 0; k < std::max<size_t>(1, options_.upstream_sockets); ++k) {
      ASSIGN_OR_RETURN(base::UniqueFd fd, UdpSocketInNetns(ns, u.addr.ss_family));
      ep->fwd[slot].push_back(std::move(fd));
    }
  }
  std::promise<absl::Status> done;
  Post([&] { done.set_value(Register(std::move(ep))); });
  RETURN_IF_ERROR(done.get_future().get());
  return BoundEndpoint{port};
}

absl::Status LoopResolver::RemoveEndpoint(const std::string& id) {
  std::promise<absl::Status> done;
  Post([&] { done.set_value(Unregister(id)); });
  return done.get_future().get();
}

absl::Status LoopResolver::Register(std::unique_ptr<Endpoint> ep) {
  if (endpoints_.contains(ep->id)) {
    return absl::AlreadyExistsError(absl::StrCat("dns endpoint ", ep->id, " already exists"));
  }
  Endpoint* e = ep.get();
  e->udp_src = Source{Source::kUdp, e, 0, e->udp.get()};
  e->tcp_src = Source{Source::kTcpListen, e, 0, e->tcp.get()};
  RETURN_IF_ERROR(Watch(e->udp.get(), &e->udp_src, EPOLLIN));
  absl::Status s = Watch(e->tcp.get(), &e->tcp_src, EPOLLIN);
  for (int i = 0; i < 4 && s.ok(); ++i) {
    e->fwd_src[i].resize(e->fwd[i].size());
    for (size_t k = 0; k < e->fwd[i].size() && s.ok(); ++k) {
      e->fwd_src[i][k] = Source{Source::kForward, e, 0, e->fwd[i][k].get()};
      s = Watch(e->fwd[i][k].get(), &e->fwd_src[i][k], EPOLLIN);
    }
  }
  if (!s.ok()) {
    Unwatch(*e);
    return s;
  }
  endpoints_[e->id] = std::move(ep);
  return absl::OkStatus();
}

void LoopResolver::Unwatch(Endpoint& e) {
  auto del = [&](int fd) {
    if (fd >= 0) ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
  };
  del(e.udp.get());
  del(e.tcp.get());
  for (const auto& pool : e.fwd) {
    for (const base::UniqueFd& fd : pool) del(fd.get());
  }
}

absl::Status LoopResolver::Unregister(const std::string& id) {
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

}  // namespace shoal::dns::internal
