#include "kernel/netlink/nl_util.h"

#include <linux/netlink.h>
#include <netlink/attr.h>
#include <sched.h>
#include <sys/socket.h>

#include <cstring>
#include <thread>
#include <utility>

#include "base/status.h"
#include "kernel/netlink/errors.h"

namespace shoal::kernel::nl {

AddrPtr ToNl(const IpAddr& a, int prefix_len) {
  AddrPtr r(nl_addr_build(a.family, a.bytes.data(), a.byte_len()));
  if (r && prefix_len >= 0) nl_addr_set_prefixlen(r.get(), prefix_len);
  return r;
}

AddrPtr ToNl(const MacAddr& m) { return AddrPtr(nl_addr_build(AF_LLC, m.bytes.data(), 6)); }

IpAddr FromNlIp(const nl_addr* a) {
  IpAddr r;
  if (a == nullptr) return r;
  int fam = nl_addr_get_family(a);
  unsigned len = nl_addr_get_len(a);
  if ((fam == AF_INET && len == 4) || (fam == AF_INET6 && len == 16)) {
    r.family = fam;
    std::memcpy(r.bytes.data(), nl_addr_get_binary_addr(a), len);
  }
  return r;
}

MacAddr FromNlMac(const nl_addr* a) {
  MacAddr m;
  if (a != nullptr && nl_addr_get_len(a) == 6) {
    std::memcpy(m.bytes.data(), nl_addr_get_binary_addr(a), 6);
  }
  return m;
}

namespace {

// NL_CB_ERR hook: remember the kernel's errno and extended-ack text, then let libnl report
// its NLE_* code as usual (NL_STOP).
int OnError(sockaddr_nl*, nlmsgerr* e, void* arg) {
  auto* cap = static_cast<ErrCapture*>(arg);
  cap->sys_errno = -e->error;
  cap->extack.clear();
  auto* nlh = reinterpret_cast<nlmsghdr*>(reinterpret_cast<char*>(e) - NLMSG_HDRLEN);
  if (nlh->nlmsg_flags & NLM_F_ACK_TLVS) {
    size_t off = (nlh->nlmsg_flags & NLM_F_CAPPED)
                     ? sizeof(*e)
                     : sizeof(*e) - sizeof(e->msg) + NLMSG_ALIGN(e->msg.nlmsg_len);
    char* start = reinterpret_cast<char*>(e) + off;
    int len = static_cast<int>(nlh->nlmsg_len) - NLMSG_HDRLEN - static_cast<int>(off);
    for (auto* a = reinterpret_cast<nlattr*>(start); len > 0 && nla_ok(a, len);
         a = nla_next(a, &len)) {
      if (nla_type(a) == NLMSGERR_ATTR_MSG) {
        cap->extack = nla_get_string(a);
        while (!cap->extack.empty() && (cap->extack.back() == '\0' || cap->extack.back() == '\n')) {
          cap->extack.pop_back();
        }
      }
    }
  }
  return NL_STOP;
}

}  // namespace

absl::Status Socket::Check(int nl_ret, absl::string_view context) {
  if (nl_ret >= 0) return absl::OkStatus();
  int sys = std::exchange(err->sys_errno, 0);
  std::string extack = std::move(err->extack);
  err->extack.clear();
  if (sys > 0) return KernelErrnoStatus(sys, extack, context);
  return NlStatus(nl_ret, context);
}

absl::StatusOr<Socket> OpenRouteSocket(int netns_fd) {
  absl::StatusOr<Socket> result = absl::InternalError("not run");
  auto body = [&] {
    // setns on a thread of a multi-threaded process is allowed for CLONE_NEWNET; the socket is
    // bound to the thread's namespace at creation and keeps it after the thread exits.
    if (netns_fd >= 0 && ::setns(netns_fd, CLONE_NEWNET) != 0) {
      result = base::ErrnoStatus(errno, "setns(netns fd ", netns_fd, ")");
      return;
    }
    SockPtr sk(nl_socket_alloc());
    if (!sk) {
      result = absl::ResourceExhaustedError("nl_socket_alloc failed");
      return;
    }
    int err = nl_connect(sk.get(), NETLINK_ROUTE);
    if (err < 0) {
      result = NlStatus(err, "connect NETLINK_ROUTE");
      return;
    }
    // Large buffers: dumps of 10k+ FDB rows (dataplane.md §9.2).
    nl_socket_set_buffer_size(sk.get(), 4 << 20, 1 << 20);
    int one = 1;
    setsockopt(nl_socket_get_fd(sk.get()), SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
    Socket out;
    out.sk = std::move(sk);
    nl_cb* cb = nl_socket_get_cb(out.get());
    nl_cb_err(cb, NL_CB_CUSTOM, &OnError, out.err.get());
    nl_cb_put(cb);
    result = std::move(out);
  };
  if (netns_fd < 0) {
    body();
  } else {
    std::thread(body).join();
  }
  return result;
}

namespace {
struct DumpCtx {
  const std::function<void(nl_object*)>* fn;
};
void OnObject(nl_object* obj, void* arg) { (*static_cast<DumpCtx*>(arg)->fn)(obj); }
int OnValid(nl_msg* msg, void* arg) {
  nl_msg_parse(msg, &OnObject, arg);
  return NL_OK;
}
}  // namespace

absl::Status Dump(nl_sock* sk, int type, const void* hdr, size_t len,
                  const std::function<void(nl_object*)>& on_object) {
  int err = nl_send_simple(sk, type, NLM_F_DUMP, const_cast<void*>(hdr), len);
  if (err < 0) return NlStatus(err, "send dump request");
  DumpCtx ctx{&on_object};
  nl_cb* cb = nl_cb_clone(nl_socket_get_cb(sk));
  if (cb == nullptr) return absl::ResourceExhaustedError("nl_cb_clone failed");
  nl_cb_set(cb, NL_CB_VALID, NL_CB_CUSTOM, &OnValid, &ctx);
  err = nl_recvmsgs(sk, cb);
  nl_cb_put(cb);
  return NlStatus(err, "receive dump");
}

}  // namespace shoal::kernel::nl
