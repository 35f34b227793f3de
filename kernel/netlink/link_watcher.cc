#include "kernel/netlink/link_watcher.h"

#include <linux/rtnetlink.h>
#include <poll.h>

#include "base/status.h"
#include "kernel/netlink/errors.h"
#include "kernel/netlink/libnl_netlink_impl.h"
#include "kernel/netlink/nl_util.h"

namespace shoal::kernel {
namespace {

class LibnlLinkWatcher : public LinkWatcher {
 public:
  explicit LibnlLinkWatcher(nl::Socket sk) : sk_(std::move(sk)) {}

  int fd() const override { return nl_socket_get_fd(sk_.get()); }

  absl::StatusOr<std::vector<LinkEvent>> Poll(std::chrono::milliseconds timeout) override {
    std::vector<LinkEvent> out;
    struct pollfd p {
      fd(), POLLIN, 0
    };
    int n = ::poll(&p, 1, static_cast<int>(timeout.count()));
    if (n < 0) return base::ErrnoStatus(errno, "poll link events");
    if (n == 0) return out;
    Ctx ctx{&out};
    nl_cb* cb = nl_cb_clone(nl_socket_get_cb(sk_.get()));
    nl_cb_set(cb, NL_CB_VALID, NL_CB_CUSTOM, &OnValid, &ctx);
    // Non-blocking: drain every queued datagram (nl_recvmsgs_report returns 0 on EAGAIN).
    int err = 0;
    while ((err = nl_recvmsgs_report(sk_.get(), cb)) > 0) {
    }
    nl_cb_put(cb);
    if (err < 0 && err != -NLE_AGAIN) {
      if (err == -NLE_NOMEM || err == -NLE_MSG_OVERFLOW) {
        return absl::UnavailableError("link event queue overrun: resync needed");
      }
      return NlStatus(err, "receive link events");
    }
    return out;
  }

 private:
  struct Ctx {
    std::vector<LinkEvent>* out;
    int type = 0;
  };
  static void OnObject(nl_object* obj, void* arg) {
    auto* ctx = static_cast<Ctx*>(arg);
    LinkEvent ev;
    ev.type = ctx->type == RTM_DELLINK ? LinkEvent::Type::kDel : LinkEvent::Type::kNew;
    ev.link = LibnlNetlink::ToLink(reinterpret_cast<rtnl_link*>(obj));
    ctx->out->push_back(std::move(ev));
  }
  static int OnValid(nl_msg* msg, void* arg) {
    auto* ctx = static_cast<Ctx*>(arg);
    ctx->type = nlmsg_hdr(msg)->nlmsg_type;
    if (ctx->type == RTM_NEWLINK || ctx->type == RTM_DELLINK) nl_msg_parse(msg, &OnObject, arg);
    return NL_OK;
  }

  nl::Socket sk_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<LinkWatcher>> LinkWatcher::Open(int netns_fd) {
  ASSIGN_OR_RETURN(nl::Socket sk, nl::OpenRouteSocket(netns_fd));
  nl_socket_disable_seq_check(sk.get());
  int err = nl_socket_add_membership(sk.get(), RTNLGRP_LINK);
  if (err < 0) return NlStatus(err, "subscribe RTNLGRP_LINK");
  err = nl_socket_set_nonblocking(sk.get());
  if (err < 0) return NlStatus(err, "set link event socket non-blocking");
  return std::unique_ptr<LinkWatcher>(new LibnlLinkWatcher(std::move(sk)));
}

}  // namespace shoal::kernel
