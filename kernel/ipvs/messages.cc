#include "kernel/ipvs/messages.h"

#include <arpa/inet.h>
#include <linux/ip_vs.h>
#include <netlink/genl/genl.h>
#include <netlink/msg.h>

#include <cstring>
#include <memory>

#include "absl/strings/str_cat.h"

namespace shoal::kernel::ipvs {
namespace {

struct MsgFree {
  void operator()(nl_msg* m) const { nlmsg_free(m); }
};
using MsgPtr = std::unique_ptr<nl_msg, MsgFree>;

absl::Status PutFailed(absl::string_view what) {
  return absl::InternalError(absl::StrCat("ipvs: cannot encode ", what, " (message too big)"));
}

absl::StatusOr<MsgPtr> Start(uint16_t family_id, uint8_t cmd, uint16_t flags) {
  MsgPtr msg(nlmsg_alloc());
  if (!msg) return absl::ResourceExhaustedError("ipvs: nlmsg_alloc");
  if (genlmsg_put(msg.get(), NL_AUTO_PORT, NL_AUTO_SEQ, family_id, 0, flags, cmd,
                  IPVS_GENL_VERSION) == nullptr) {
    return PutFailed("genl header");
  }
  return msg;
}

std::string Bytes(nl_msg* msg) {
  nlmsghdr* h = nlmsg_hdr(msg);
  return std::string(reinterpret_cast<const char*>(h), h->nlmsg_len);
}

// union nf_inet_addr: 16 bytes, IPv4 in the first 4.
std::string InetAddr(const std::string& addr) {
  std::string a(16, '\0');
  std::memcpy(a.data(), addr.data(), std::min<size_t>(addr.size(), 16));
  return a;
}

absl::Status CheckAddr(uint16_t af, const std::string& addr, absl::string_view what) {
  size_t want = af == AF_INET6 ? 16 : 4;
  if (af != AF_INET && af != AF_INET6) {
    return absl::InvalidArgumentError(absl::StrCat("ipvs ", what, ": af must be AF_INET(6)"));
  }
  if (addr.size() != want) {
    return absl::InvalidArgumentError(
        absl::StrCat("ipvs ", what, ": address must be ", want, " bytes, got ", addr.size()));
  }
  return absl::OkStatus();
}

absl::Status PutServiceKey(nl_msg* msg, const ServiceKey& k) {
  if (nla_put_u16(msg, IPVS_SVC_ATTR_AF, k.af) < 0) return PutFailed("service af");
  if (k.fwmark != 0) {
    if (nla_put_u32(msg, IPVS_SVC_ATTR_FWMARK, k.fwmark) < 0) return PutFailed("fwmark");
    return absl::OkStatus();
  }
  if (absl::Status s = CheckAddr(k.af, k.addr, "service"); !s.ok()) return s;
  if (k.protocol == 0 || k.port == 0) {
    return absl::InvalidArgumentError("ipvs service: needs a fwmark or protocol/address/port");
  }
  std::string a = InetAddr(k.addr);
  if (nla_put_u16(msg, IPVS_SVC_ATTR_PROTOCOL, k.protocol) < 0 ||
      nla_put(msg, IPVS_SVC_ATTR_ADDR, static_cast<int>(a.size()), a.data()) < 0 ||
      nla_put_u16(msg, IPVS_SVC_ATTR_PORT, htons(k.port)) < 0) {
    return PutFailed("service address");
  }
  return absl::OkStatus();
}

absl::Status PutService(nl_msg* msg, const ServiceSpec& s, bool full) {
  nlattr* nest = nla_nest_start(msg, IPVS_CMD_ATTR_SERVICE);
  if (nest == nullptr) return PutFailed("service nest");
  if (absl::Status st = PutServiceKey(msg, s.key); !st.ok()) return st;
  if (full) {
    if (s.scheduler.empty() || s.scheduler.size() >= IP_VS_SCHEDNAME_MAXLEN) {
      return absl::InvalidArgumentError(
          absl::StrCat("ipvs service: scheduler \"", s.scheduler, "\" empty or too long"));
    }
    ip_vs_flags flags{s.flags, ~0u};
    if (nla_put_string(msg, IPVS_SVC_ATTR_SCHED_NAME, s.scheduler.c_str()) < 0 ||
        nla_put(msg, IPVS_SVC_ATTR_FLAGS, sizeof(flags), &flags) < 0 ||
        nla_put_u32(msg, IPVS_SVC_ATTR_TIMEOUT, s.timeout) < 0 ||
        nla_put_u32(msg, IPVS_SVC_ATTR_NETMASK, htonl(s.netmask)) < 0) {
      return PutFailed("service attributes");
    }
  }
  nla_nest_end(msg, nest);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::string> EncodeServiceMsg(uint16_t family_id, uint8_t cmd, const ServiceSpec& s,
                                             bool full, uint16_t flags) {
  auto msg = Start(family_id, cmd, flags);
  if (!msg.ok()) return msg.status();
  if (absl::Status st = PutService(msg->get(), s, full); !st.ok()) return st;
  return Bytes(msg->get());
}

absl::StatusOr<std::string> EncodeDestMsg(uint16_t family_id, uint8_t cmd, const ServiceKey& k,
                                          const DestSpec& d, bool full, uint16_t flags) {
  if (absl::Status s = CheckAddr(d.af, d.addr, "destination"); !s.ok()) return s;
  if (d.port == 0 && k.fwmark == 0) {
    return absl::InvalidArgumentError("ipvs destination: port 0 needs a fwmark service");
  }
  auto msg = Start(family_id, cmd, flags);
  if (!msg.ok()) return msg.status();
  nl_msg* m = msg->get();
  ServiceSpec key_only;
  key_only.key = k;
  if (absl::Status st = PutService(m, key_only, /*full=*/false); !st.ok()) return st;
  nlattr* nest = nla_nest_start(m, IPVS_CMD_ATTR_DEST);
  if (nest == nullptr) return PutFailed("dest nest");
  std::string a = InetAddr(d.addr);
  if (nla_put(m, IPVS_DEST_ATTR_ADDR, static_cast<int>(a.size()), a.data()) < 0 ||
      nla_put_u16(m, IPVS_DEST_ATTR_PORT, htons(d.port)) < 0 ||
      nla_put_u16(m, IPVS_DEST_ATTR_ADDR_FAMILY, d.af) < 0) {
    return PutFailed("dest address");
  }
  if (full) {
    if (nla_put_u32(m, IPVS_DEST_ATTR_FWD_METHOD, d.fwd_method & IP_VS_CONN_F_FWD_MASK) < 0 ||
        nla_put_u32(m, IPVS_DEST_ATTR_WEIGHT, d.weight) < 0 ||
        nla_put_u32(m, IPVS_DEST_ATTR_U_THRESH, d.upper_threshold) < 0 ||
        nla_put_u32(m, IPVS_DEST_ATTR_L_THRESH, d.lower_threshold) < 0) {
      return PutFailed("dest attributes");
    }
  }
  nla_nest_end(m, nest);
  return Bytes(m);
}

absl::StatusOr<std::string> EncodeGetServices(uint16_t family_id) {
  auto msg = Start(family_id, IPVS_CMD_GET_SERVICE, NLM_F_REQUEST | NLM_F_DUMP);
  if (!msg.ok()) return msg.status();
  return Bytes(msg->get());
}

absl::StatusOr<std::string> EncodeGetDests(uint16_t family_id, const ServiceKey& k) {
  auto msg = Start(family_id, IPVS_CMD_GET_DEST, NLM_F_REQUEST | NLM_F_DUMP);
  if (!msg.ok()) return msg.status();
  ServiceSpec key_only;
  key_only.key = k;
  if (absl::Status st = PutService(msg->get(), key_only, false); !st.ok()) return st;
  return Bytes(msg->get());
}

absl::StatusOr<std::string> EncodeFlush(uint16_t family_id) {
  auto msg = Start(family_id, IPVS_CMD_FLUSH, NLM_F_REQUEST | NLM_F_ACK);
  if (!msg.ok()) return msg.status();
  return Bytes(msg->get());
}

namespace {

absl::Status ParseTop(absl::string_view bytes, nlattr** top) {
  if (bytes.size() < NLMSG_HDRLEN + GENL_HDRLEN) {
    return absl::InvalidArgumentError("ipvs reply: shorter than the headers");
  }
  auto* nlh = reinterpret_cast<nlmsghdr*>(const_cast<char*>(bytes.data()));
  if (nlh->nlmsg_len > bytes.size()) return absl::InvalidArgumentError("ipvs reply: truncated");
  if (genlmsg_parse(nlh, 0, top, IPVS_CMD_ATTR_MAX, nullptr) < 0) {
    return absl::InvalidArgumentError("ipvs reply: bad attributes");
  }
  return absl::OkStatus();
}

std::string Addr(nlattr* a, uint16_t af) {
  std::string out(static_cast<const char*>(nla_data(a)),
                  std::min<size_t>(nla_len(a), af == AF_INET6 ? 16 : 4));
  return out;
}

}  // namespace

absl::StatusOr<ServiceSpec> DecodeServiceMsg(absl::string_view msg) {
  nlattr* top[IPVS_CMD_ATTR_MAX + 1] = {};
  if (absl::Status s = ParseTop(msg, top); !s.ok()) return s;
  if (top[IPVS_CMD_ATTR_SERVICE] == nullptr) {
    return absl::InvalidArgumentError("ipvs reply: no service attribute");
  }
  nlattr* a[IPVS_SVC_ATTR_MAX + 1] = {};
  if (nla_parse_nested(a, IPVS_SVC_ATTR_MAX, top[IPVS_CMD_ATTR_SERVICE], nullptr) < 0 ||
      a[IPVS_SVC_ATTR_AF] == nullptr) {
    return absl::InvalidArgumentError("ipvs reply: bad service attribute");
  }
  ServiceSpec s;
  s.key.af = nla_get_u16(a[IPVS_SVC_ATTR_AF]);
  if (a[IPVS_SVC_ATTR_FWMARK]) s.key.fwmark = nla_get_u32(a[IPVS_SVC_ATTR_FWMARK]);
  if (s.key.fwmark == 0) {
    if (a[IPVS_SVC_ATTR_PROTOCOL]) s.key.protocol = nla_get_u16(a[IPVS_SVC_ATTR_PROTOCOL]);
    if (a[IPVS_SVC_ATTR_ADDR]) s.key.addr = Addr(a[IPVS_SVC_ATTR_ADDR], s.key.af);
    if (a[IPVS_SVC_ATTR_PORT]) s.key.port = ntohs(nla_get_u16(a[IPVS_SVC_ATTR_PORT]));
  }
  if (a[IPVS_SVC_ATTR_SCHED_NAME]) s.scheduler = nla_get_string(a[IPVS_SVC_ATTR_SCHED_NAME]);
  if (a[IPVS_SVC_ATTR_FLAGS] && nla_len(a[IPVS_SVC_ATTR_FLAGS]) >= (int)sizeof(ip_vs_flags)) {
    ip_vs_flags f;
    std::memcpy(&f, nla_data(a[IPVS_SVC_ATTR_FLAGS]), sizeof(f));
    s.flags = f.flags;
  }
  if (a[IPVS_SVC_ATTR_TIMEOUT]) s.timeout = nla_get_u32(a[IPVS_SVC_ATTR_TIMEOUT]);
  if (a[IPVS_SVC_ATTR_NETMASK]) s.netmask = ntohl(nla_get_u32(a[IPVS_SVC_ATTR_NETMASK]));
  return s;
}

absl::StatusOr<DestSpec> DecodeDestMsg(absl::string_view msg) {
  nlattr* top[IPVS_CMD_ATTR_MAX + 1] = {};
  if (absl::Status s = ParseTop(msg, top); !s.ok()) return s;
  if (top[IPVS_CMD_ATTR_DEST] == nullptr) {
    return absl::InvalidArgumentError("ipvs reply: no destination attribute");
  }
  nlattr* a[IPVS_DEST_ATTR_MAX + 1] = {};
  if (nla_parse_nested(a, IPVS_DEST_ATTR_MAX, top[IPVS_CMD_ATTR_DEST], nullptr) < 0 ||
      a[IPVS_DEST_ATTR_ADDR] == nullptr) {
    return absl::InvalidArgumentError("ipvs reply: bad destination attribute");
  }
  DestSpec d;
  if (a[IPVS_DEST_ATTR_ADDR_FAMILY]) d.af = nla_get_u16(a[IPVS_DEST_ATTR_ADDR_FAMILY]);
  d.addr = Addr(a[IPVS_DEST_ATTR_ADDR], d.af);
  if (a[IPVS_DEST_ATTR_PORT]) d.port = ntohs(nla_get_u16(a[IPVS_DEST_ATTR_PORT]));
  if (a[IPVS_DEST_ATTR_FWD_METHOD]) d.fwd_method = nla_get_u32(a[IPVS_DEST_ATTR_FWD_METHOD]);
  if (a[IPVS_DEST_ATTR_WEIGHT]) d.weight = nla_get_u32(a[IPVS_DEST_ATTR_WEIGHT]);
  if (a[IPVS_DEST_ATTR_U_THRESH]) d.upper_threshold = nla_get_u32(a[IPVS_DEST_ATTR_U_THRESH]);
  if (a[IPVS_DEST_ATTR_L_THRESH]) d.lower_threshold = nla_get_u32(a[IPVS_DEST_ATTR_L_THRESH]);
  return d;
}

}  // namespace shoal::kernel::ipvs
