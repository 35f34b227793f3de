// nfnetlink_conntrack by hand (linux/netfilter/nfnetlink_conntrack.h): dump IPv4 flows, delete
// the ones whose reply tuple comes from the backend. No C library needed, so no kernel/ adapter.
#include "lb/conntrack.h"

#include <arpa/inet.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <linux/netlink.h>
#include <sched.h>
#include <sys/socket.h>

#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/status.h"
#include "base/unique_fd.h"

namespace shoal::lb {
namespace {

// Attribute walker over [data, data+len).
template <typename F>
void ForEachAttr(const char* data, size_t len, F f) {
  while (len >= sizeof(nlattr)) {
    const auto* a = reinterpret_cast<const nlattr*>(data);
    if (a->nla_len < sizeof(nlattr) || a->nla_len > len) return;
    f(a->nla_type & NLA_TYPE_MASK, data + NLA_HDRLEN, a->nla_len - NLA_HDRLEN,
      absl::string_view(data, a->nla_len));
    size_t step = NLA_ALIGN(a->nla_len);
    if (step >= len) return;
    data += step;
    len -= step;
  }
}

struct Tuple {
  std::string src;  // 4 bytes
  uint16_t sport = 0;
  uint8_t proto = 0;
};

Tuple ParseTuple(const char* data, size_t len) {
  Tuple t;
  ForEachAttr(data, len, [&](int type, const char* p, size_t n, absl::string_view) {
    if (type == CTA_TUPLE_IP) {
      ForEachAttr(p, n, [&](int t2, const char* q, size_t m, absl::string_view) {
        if (t2 == CTA_IP_V4_SRC && m == 4) t.src.assign(q, 4);
      });
    } else if (type == CTA_TUPLE_PROTO) {
      ForEachAttr(p, n, [&](int t2, const char* q, size_t m, absl::string_view) {
        if (t2 == CTA_PROTO_NUM && m >= 1) t.proto = static_cast<uint8_t>(q[0]);
        if (t2 == CTA_PROTO_SRC_PORT && m >= 2) {
          uint16_t v;
          std::memcpy(&v, q, 2);
          t.sport = ntohs(v);
        }
      });
    }
  });
  return t;
}

std::string Request(uint16_t msg_type, uint16_t flags, uint32_t seq, absl::string_view attrs) {
  std::string out(NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(nfgenmsg)), '\0');
  auto* h = reinterpret_cast<nlmsghdr*>(out.data());
  h->nlmsg_type = static_cast<uint16_t>((NFNL_SUBSYS_CTNETLINK << 8) | msg_type);
  h->nlmsg_flags = flags;
  h->nlmsg_seq = seq;
  auto* g = reinterpret_cast<nfgenmsg*>(out.data() + NLMSG_HDRLEN);
  g->nfgen_family = AF_INET;
  g->version = NFNETLINK_V0;
  out.append(attrs.data(), attrs.size());
  reinterpret_cast<nlmsghdr*>(out.data())->nlmsg_len = static_cast<uint32_t>(out.size());
  return out;
}

class NetlinkConntrack final : public ConntrackCleaner {
 public:
  explicit NetlinkConntrack(base::UniqueFd fd) : fd_(std::move(fd)) {}

  absl::StatusOr<int> DeleteFlowsTo(uint8_t proto, const std::string& ip, uint16_t port) override {
    std::string want(4, '\0');
    if (inet_pton(AF_INET, ip.c_str(), want.data()) != 1) {
      return absl::InvalidArgumentError(absl::StrCat("conntrack: \"", ip, "\" is not IPv4"));
    }
    std::lock_guard lock(mu_);
    // 1. Dump and collect the original tuples of matching flows.
    std::vector<std::string> victims;
    uint32_t seq = ++seq_;
    RETURN_IF_ERROR(Send(Request(IPCTNL_MSG_CT_GET, NLM_F_REQUEST | NLM_F_DUMP, seq, "")));
    bool done = false;
    while (!done) {
      ASSIGN_OR_RETURN(std::string buf, Recv());
      size_t off = 0;
      while (off + NLMSG_HDRLEN <= buf.size()) {
        const auto* h = reinterpret_cast<const nlmsghdr*>(buf.data() + off);
        if (h->nlmsg_len < NLMSG_HDRLEN || off + h->nlmsg_len > buf.size()) break;
        if (h->nlmsg_type == NLMSG_DONE) {
          done = true;
        } else if (h->nlmsg_type == NLMSG_ERROR) {
          const auto* e = reinterpret_cast<const nlmsgerr*>(NLMSG_DATA(h));
          if (e->error != 0) return base::ErrnoStatus(-e->error, "conntrack dump");
          done = true;
        } else {
          size_t hdr = NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(nfgenmsg));
          const char* p = buf.data() + off + hdr;
          size_t n = h->nlmsg_len > hdr ? h->nlmsg_len - hdr : 0;
          std::string orig_attr;
          Tuple reply;
          ForEachAttr(p, n, [&](int type, const char* q, size_t m, absl::string_view whole) {
            if (type == CTA_TUPLE_ORIG) orig_attr = std::string(whole);
            if (type == CTA_TUPLE_REPLY) reply = ParseTuple(q, m);
          });
          if (!orig_attr.empty() && reply.proto == proto && reply.src == want &&
              reply.sport == port) {
            victims.push_back(orig_attr);
          }
        }
        off += NLMSG_ALIGN(h->nlmsg_len);
      }
    }
    // 2. Delete each by its original tuple; a flow that vanished meanwhile is fine.
    int deleted = 0;
    for (const std::string& orig : victims) {
      std::string attr = orig;
      attr.resize(NLA_ALIGN(attr.size()), '\0');
      RETURN_IF_ERROR(Send(Request(IPCTNL_MSG_CT_DELETE, NLM_F_REQUEST | NLM_F_ACK, ++seq_, attr)));
      ASSIGN_OR_RETURN(std::string ack, Recv());
      const auto* h = reinterpret_cast<const nlmsghdr*>(ack.data());
      if (ack.size() >= NLMSG_HDRLEN + sizeof(nlmsgerr) && h->nlmsg_type == NLMSG_ERROR) {
        int err = -reinterpret_cast<const nlmsgerr*>(NLMSG_DATA(h))->error;
        if (err == 0) {
          ++deleted;
        } else if (err != ENOENT) {
          return base::ErrnoStatus(err, "conntrack delete");
        }
      }
    }
    return deleted;
  }

 private:
  absl::Status Send(const std::string& msg) {
    sockaddr_nl to{};
    to.nl_family = AF_NETLINK;
    if (::sendto(fd_.get(), msg.data(), msg.size(), 0, reinterpret_cast<sockaddr*>(&to),
                 sizeof(to)) < 0) {
      return base::ErrnoStatus(errno, "conntrack netlink send");
    }
    return absl::OkStatus();
  }
  absl::StatusOr<std::string> Recv() {
    std::string buf(1 << 16, '\0');
    ssize_t n = ::recv(fd_.get(), buf.data(), buf.size(), 0);
    if (n < 0) return base::ErrnoStatus(errno, "conntrack netlink recv");
    buf.resize(static_cast<size_t>(n));
    return buf;
  }

  std::mutex mu_;
  base::UniqueFd fd_;
  uint32_t seq_ = 0;
};

}  // namespace

absl::StatusOr<std::unique_ptr<ConntrackCleaner>> OpenConntrack(int netns_fd) {
  base::UniqueFd fd;
  absl::Status st;
  auto open = [&] {
    if (netns_fd >= 0 && ::setns(netns_fd, CLONE_NEWNET) != 0) {
      st = base::ErrnoStatus(errno, "setns(CLONE_NEWNET) for conntrack");
      return;
    }
    fd = base::UniqueFd(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER));
    if (!fd) st = base::ErrnoStatus(errno, "socket(NETLINK_NETFILTER)");
    timeval tv{5, 0};  // never hang the LB on a kernel that stops answering
    if (fd) ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  };
  if (netns_fd >= 0) {
    std::thread(open).join();
  } else {
    open();
  }
  if (!st.ok()) return st;
  return std::unique_ptr<ConntrackCleaner>(new NetlinkConntrack(std::move(fd)));
}

}  // namespace shoal::lb
