// The real IPVS adapter: one libnl generic netlink socket per namespace, messages from
// messages.cc. Errors map to canonical codes here and only here.
#include <linux/ip_vs.h>
#include <netlink/errno.h>
#include <netlink/genl/ctrl.h>
#include <netlink/genl/genl.h>
#include <netlink/msg.h>
#include <sched.h>

#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "base/status.h"
#include "kernel/ipvs/ipvs.h"
#include "kernel/ipvs/messages.h"

namespace shoal::kernel::ipvs {
namespace {

struct SockFree {
  void operator()(nl_sock* s) const { nl_socket_free(s); }
};
struct MsgFree {
  void operator()(nl_msg* m) const { nlmsg_free(m); }
};

absl::Status MapNlError(int err, absl::string_view what) {
  int e = err < 0 ? -err : err;
  std::string msg = absl::StrCat("ipvs ", what, ": ", nl_geterror(e));
  switch (e) {
    case NLE_EXIST:
      return absl::AlreadyExistsError(msg);
    case NLE_OBJ_NOTFOUND:
    case NLE_NOADDR:
      return absl::NotFoundError(msg);
    case NLE_PERM:
    case NLE_NOACCESS:
      return absl::PermissionDeniedError(msg);
    case NLE_INVAL:
    case NLE_RANGE:
      return absl::InvalidArgumentError(msg);
    case NLE_BUSY:
      return absl::FailedPreconditionError(msg);
    default:
      return absl::UnknownError(msg);
  }
}

class NetlinkIpvs final : public Ipvs {
 public:
  NetlinkIpvs(std::unique_ptr<nl_sock, SockFree> sock, uint16_t family)
      : sock_(std::move(sock)), family_(family) {}

  absl::Status AddService(const ServiceSpec& s) override {
    return SendAck(EncodeServiceMsg(family_, IPVS_CMD_NEW_SERVICE, s, true, kAckFlags),
                   "add service");
  }
  absl::Status UpdateService(const ServiceSpec& s) override {
    return SendAck(EncodeServiceMsg(family_, IPVS_CMD_SET_SERVICE, s, true, kAckFlags),
                   "update service");
  }
  absl::Status DeleteService(const ServiceKey& k) override {
    ServiceSpec s;
    s.key = k;
    return SendAck(EncodeServiceMsg(family_, IPVS_CMD_DEL_SERVICE, s, false, kAckFlags),
                   "delete service");
  }
  absl::Status AddDest(const ServiceKey& k, const DestSpec& d) override {
    return SendAck(EncodeDestMsg(family_, IPVS_CMD_NEW_DEST, k, d, true, kAckFlags), "add dest");
  }
  absl::Status UpdateDest(const ServiceKey& k, const DestSpec& d) override {
    return SendAck(EncodeDestMsg(family_, IPVS_CMD_SET_DEST, k, d, true, kAckFlags), "update dest");
  }
  absl::Status DeleteDest(const ServiceKey& k, const DestSpec& d) override {
    return SendAck(EncodeDestMsg(family_, IPVS_CMD_DEL_DEST, k, d, false, kAckFlags),
                   "delete dest");
  }
  absl::Status Flush() override { return SendAck(EncodeFlush(family_), "flush"); }

  absl::StatusOr<std::vector<ServiceState>> List() override {
    std::vector<ServiceState> out;
    ASSIGN_OR_RETURN(auto svcs, Dump(EncodeGetServices(family_), "list services"));
    for (const std::string& m : svcs) {
      auto s = DecodeServiceMsg(m);
      if (!s.ok()) return s.status();
      ServiceState st;
      st.spec = *s;
      ASSIGN_OR_RETURN(auto dests, Dump(EncodeGetDests(family_, s->key), "list dests"));
      for (const std::string& dm : dests) {
        auto d = DecodeDestMsg(dm);
        if (!d.ok()) return d.status();
        st.dests.push_back(*d);
      }
      out.push_back(std::move(st));
    }
    return out;
  }

 private:
  static constexpr uint16_t kAckFlags = NLM_F_REQUEST | NLM_F_ACK;

  absl::StatusOr<std::unique_ptr<nl_msg, MsgFree>> ToMsg(const std::string& bytes) {
    std::unique_ptr<nl_msg, MsgFree> msg(
        nlmsg_convert(reinterpret_cast<nlmsghdr*>(const_cast<char*>(bytes.data()))));
    if (!msg) return absl::ResourceExhaustedError("ipvs: nlmsg_convert");
    return msg;
  }

  absl::Status SendAck(const absl::StatusOr<std::string>& bytes, absl::string_view what) {
    if (!bytes.ok()) return bytes.status();
    std::lock_guard lock(mu_);
    ASSIGN_OR_RETURN(auto msg, ToMsg(*bytes));
    int err = nl_send_auto(sock_.get(), msg.get());
    if (err < 0) return MapNlError(err, what);
    err = nl_wait_for_ack(sock_.get());
    if (err < 0) return MapNlError(err, what);
    return absl::OkStatus();
  }

  static int Collect(nl_msg* msg, void* arg) {
    auto* out = static_cast<std::vector<std::string>*>(arg);
    nlmsghdr* h = nlmsg_hdr(msg);
    out->emplace_back(reinterpret_cast<const char*>(h), h->nlmsg_len);
    return NL_OK;
  }

  absl::StatusOr<std::vector<std::string>> Dump(const absl::StatusOr<std::string>& bytes,
                                                absl::string_view what) {
    if (!bytes.ok()) return bytes.status();
    std::lock_guard lock(mu_);
    ASSIGN_OR_RETURN(auto msg, ToMsg(*bytes));
    std::vector<std::string> out;
    int err = nl_send_auto(sock_.get(), msg.get());
    if (err < 0) return MapNlError(err, what);
    nl_socket_modify_cb(sock_.get(), NL_CB_VALID, NL_CB_CUSTOM, &NetlinkIpvs::Collect, &out);
    err = nl_recvmsgs_default(sock_.get());
    nl_socket_modify_cb(sock_.get(), NL_CB_VALID, NL_CB_DEFAULT, nullptr, nullptr);
    if (err < 0) return MapNlError(err, what);
    return out;
  }

  std::mutex mu_;
  std::unique_ptr<nl_sock, SockFree> sock_;
  uint16_t family_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Ipvs>> OpenIpvs(int netns_fd) {
  std::unique_ptr<nl_sock, SockFree> sock;
  int family = -1;
  absl::Status status;
  auto open = [&] {
    if (netns_fd >= 0 && ::setns(netns_fd, CLONE_NEWNET) != 0) {
      status = base::ErrnoStatus(errno, "setns(CLONE_NEWNET) for ipvs");
      return;
    }
    sock.reset(nl_socket_alloc());
    if (!sock) {
      status = absl::ResourceExhaustedError("ipvs: nl_socket_alloc");
      return;
    }
    if (int err = genl_connect(sock.get()); err < 0) {
      status = MapNlError(err, "connect");
      return;
    }
    family = genl_ctrl_resolve(sock.get(), IPVS_GENL_NAME);
    if (family < 0) {
      status = absl::UnavailableError(
          "IPVS is not available in this kernel (generic netlink family \"IPVS\" not found; "
          "CONFIG_IP_VS missing or module ip_vs not loaded)");
    }
  };
  if (netns_fd >= 0) {
    std::thread(open).join();  // the socket keeps the namespace; this thread dies with it
  } else {
    open();
  }
  if (!status.ok()) return status;
  return std::unique_ptr<Ipvs>(new NetlinkIpvs(std::move(sock), static_cast<uint16_t>(family)));
}

}  // namespace shoal::kernel::ipvs
