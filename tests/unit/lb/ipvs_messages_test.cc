// IPVS generic netlink messages, checked attribute by attribute against linux/ip_vs.h.
#include "kernel/ipvs/messages.h"

#include <arpa/inet.h>
#include <linux/ip_vs.h>
#include <netlink/genl/genl.h>
#include <netlink/msg.h>

#include "gtest/gtest.h"

namespace shoal::kernel::ipvs {
namespace {

constexpr uint16_t kFamily = 0x1d;

struct Parsed {
  nlmsghdr hdr;
  genlmsghdr genl;
  nlattr* top[IPVS_CMD_ATTR_MAX + 1] = {};
  nlattr* svc[IPVS_SVC_ATTR_MAX + 1] = {};
  nlattr* dest[IPVS_DEST_ATTR_MAX + 1] = {};
};

// Parses into `p`; `bytes` must outlive the attribute pointers.
void Parse(std::string& bytes, Parsed& p) {
  auto* nlh = reinterpret_cast<nlmsghdr*>(bytes.data());
  ASSERT_EQ(nlh->nlmsg_len, bytes.size());
  p.hdr = *nlh;
  p.genl = *static_cast<genlmsghdr*>(nlmsg_data(nlh));
  ASSERT_EQ(genlmsg_parse(nlh, 0, p.top, IPVS_CMD_ATTR_MAX, nullptr), 0);
  if (p.top[IPVS_CMD_ATTR_SERVICE]) {
    ASSERT_EQ(nla_parse_nested(p.svc, IPVS_SVC_ATTR_MAX, p.top[IPVS_CMD_ATTR_SERVICE], nullptr), 0);
  }
  if (p.top[IPVS_CMD_ATTR_DEST]) {
    ASSERT_EQ(nla_parse_nested(p.dest, IPVS_DEST_ATTR_MAX, p.top[IPVS_CMD_ATTR_DEST], nullptr), 0);
  }
}

ServiceSpec Fwmark(uint32_t mark) {
  ServiceSpec s;
  s.key.af = AF_INET;
  s.key.fwmark = mark;
  s.scheduler = "rr";
  return s;
}

DestSpec Dest(const char* ip, uint16_t port, uint32_t weight) {
  DestSpec d;
  d.af = AF_INET;
  d.addr.resize(4);
  inet_pton(AF_INET, ip, d.addr.data());
  d.port = port;
  d.weight = weight;
  return d;
}

TEST(IpvsMessagesTest, NewFwmarkService) {
  auto b =
      EncodeServiceMsg(kFamily, IPVS_CMD_NEW_SERVICE, Fwmark(256), true, NLM_F_REQUEST | NLM_F_ACK);
  ASSERT_TRUE(b.ok()) << b.status();
  Parsed p;
  Parse(*b, p);
  EXPECT_EQ(p.hdr.nlmsg_type, kFamily);
  EXPECT_EQ(p.hdr.nlmsg_flags, NLM_F_REQUEST | NLM_F_ACK);
  EXPECT_EQ(p.genl.cmd, IPVS_CMD_NEW_SERVICE);
  EXPECT_EQ(p.genl.version, IPVS_GENL_VERSION);
  ASSERT_NE(p.svc[IPVS_SVC_ATTR_AF], nullptr);
  EXPECT_EQ(nla_get_u16(p.svc[IPVS_SVC_ATTR_AF]), AF_INET);
  EXPECT_EQ(nla_len(p.svc[IPVS_SVC_ATTR_AF]), 2);
  ASSERT_NE(p.svc[IPVS_SVC_ATTR_FWMARK], nullptr);
  EXPECT_EQ(nla_get_u32(p.svc[IPVS_SVC_ATTR_FWMARK]), 256u);
  // A fwmark service carries no protocol/address/port.
  EXPECT_EQ(p.svc[IPVS_SVC_ATTR_PROTOCOL], nullptr);
  EXPECT_EQ(p.svc[IPVS_SVC_ATTR_ADDR], nullptr);
  EXPECT_EQ(p.svc[IPVS_SVC_ATTR_PORT], nullptr);
  ASSERT_NE(p.svc[IPVS_SVC_ATTR_SCHED_NAME], nullptr);
  EXPECT_STREQ(nla_get_string(p.svc[IPVS_SVC_ATTR_SCHED_NAME]), "rr");
  ASSERT_NE(p.svc[IPVS_SVC_ATTR_FLAGS], nullptr);
  ASSERT_EQ(nla_len(p.svc[IPVS_SVC_ATTR_FLAGS]), static_cast<int>(sizeof(ip_vs_flags)));
  auto* f = static_cast<ip_vs_flags*>(nla_data(p.svc[IPVS_SVC_ATTR_FLAGS]));
  EXPECT_EQ(f->flags, 0u);
  EXPECT_EQ(f->mask, ~0u);
  EXPECT_EQ(nla_get_u32(p.svc[IPVS_SVC_ATTR_TIMEOUT]), 0u);
  EXPECT_EQ(nla_get_u32(p.svc[IPVS_SVC_ATTR_NETMASK]), 0xffffffffu);
  EXPECT_EQ(p.top[IPVS_CMD_ATTR_DEST], nullptr);
}

TEST(IpvsMessagesTest, AddressServiceUsesNetworkOrderPortAnd16ByteAddr) {
  ServiceSpec s;
  s.key.af = AF_INET;
  s.key.protocol = IPPROTO_TCP;
  s.key.addr = std::string("\x0a\x00\x00\x02", 4);
  s.key.port = 80;
  s.scheduler = "mh";
  s.netmask = 0xffffff00;
  auto b = EncodeServiceMsg(kFamily, IPVS_CMD_SET_SERVICE, s, true, NLM_F_REQUEST | NLM_F_ACK);
  ASSERT_TRUE(b.ok());
  Parsed p;
  Parse(*b, p);
  EXPECT_EQ(p.genl.cmd, IPVS_CMD_SET_SERVICE);
  EXPECT_EQ(nla_get_u16(p.svc[IPVS_SVC_ATTR_PROTOCOL]), IPPROTO_TCP);
  ASSERT_EQ(nla_len(p.svc[IPVS_SVC_ATTR_ADDR]), 16);
  EXPECT_EQ(std::string(static_cast<char*>(nla_data(p.svc[IPVS_SVC_ATTR_ADDR])), 16),
            std::string("\x0a\x00\x00\x02", 4) + std::string(12, '\0'));
  EXPECT_EQ(nla_get_u16(p.svc[IPVS_SVC_ATTR_PORT]), htons(80));
  EXPECT_EQ(nla_get_u32(p.svc[IPVS_SVC_ATTR_NETMASK]), htonl(0xffffff00));
  EXPECT_EQ(p.svc[IPVS_SVC_ATTR_FWMARK], nullptr);
  auto back = DecodeServiceMsg(*b);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, s);
}

TEST(IpvsMessagesTest, DeleteServiceCarriesOnlyTheKey) {
  auto b = EncodeServiceMsg(kFamily, IPVS_CMD_DEL_SERVICE, Fwmark(300), false,
                            NLM_F_REQUEST | NLM_F_ACK);
  ASSERT_TRUE(b.ok());
  Parsed p;
  Parse(*b, p);
  EXPECT_EQ(p.genl.cmd, IPVS_CMD_DEL_SERVICE);
  EXPECT_EQ(nla_get_u32(p.svc[IPVS_SVC_ATTR_FWMARK]), 300u);
  EXPECT_EQ(p.svc[IPVS_SVC_ATTR_SCHED_NAME], nullptr);
  EXPECT_EQ(p.svc[IPVS_SVC_ATTR_FLAGS], nullptr);
}

TEST(IpvsMessagesTest, NewDestMasqWeight) {
  auto b = EncodeDestMsg(kFamily, IPVS_CMD_NEW_DEST, Fwmark(256).key, Dest("10.0.1.5", 8080, 1),
                         true, NLM_F_REQUEST | NLM_F_ACK);
  ASSERT_TRUE(b.ok()) << b.status();
  Parsed p;
  Parse(*b, p);
  EXPECT_EQ(p.genl.cmd, IPVS_CMD_NEW_DEST);
  EXPECT_EQ(nla_get_u32(p.svc[IPVS_SVC_ATTR_FWMARK]), 256u);  // which service
  EXPECT_EQ(p.svc[IPVS_SVC_ATTR_SCHED_NAME], nullptr);
  ASSERT_EQ(nla_len(p.dest[IPVS_DEST_ATTR_ADDR]), 16);
  EXPECT_EQ(std::string(static_cast<char*>(nla_data(p.dest[IPVS_DEST_ATTR_ADDR])), 4),
            std::string("\x0a\x00\x01\x05", 4));
  EXPECT_EQ(nla_get_u16(p.dest[IPVS_DEST_ATTR_PORT]), htons(8080));
  EXPECT_EQ(nla_get_u16(p.dest[IPVS_DEST_ATTR_ADDR_FAMILY]), AF_INET);
  EXPECT_EQ(nla_get_u32(p.dest[IPVS_DEST_ATTR_FWD_METHOD]),
            static_cast<uint32_t>(IP_VS_CONN_F_MASQ));
  EXPECT_EQ(nla_get_u32(p.dest[IPVS_DEST_ATTR_WEIGHT]), 1u);
  EXPECT_EQ(nla_get_u32(p.dest[IPVS_DEST_ATTR_U_THRESH]), 0u);
  EXPECT_EQ(nla_get_u32(p.dest[IPVS_DEST_ATTR_L_THRESH]), 0u);
}

TEST(IpvsMessagesTest, DrainIsSetDestWithWeightZero) {
  DestSpec d = Dest("10.0.1.5", 8080, 0);
  d.fwd_method = kFwdDirectRoute;
  auto b = EncodeDestMsg(kFamily, IPVS_CMD_SET_DEST, Fwmark(256).key, d, true,
                         NLM_F_REQUEST | NLM_F_ACK);
  ASSERT_TRUE(b.ok());
  Parsed p;
  Parse(*b, p);
  EXPECT_EQ(p.genl.cmd, IPVS_CMD_SET_DEST);
  EXPECT_EQ(nla_get_u32(p.dest[IPVS_DEST_ATTR_WEIGHT]), 0u);
  EXPECT_EQ(nla_get_u32(p.dest[IPVS_DEST_ATTR_FWD_METHOD]),
            static_cast<uint32_t>(IP_VS_CONN_F_DROUTE));
  auto back = DecodeDestMsg(*b);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, d);
}

TEST(IpvsMessagesTest, DeleteDestCarriesOnlyTheAddress) {
  auto b = EncodeDestMsg(kFamily, IPVS_CMD_DEL_DEST, Fwmark(256).key, Dest("10.0.1.5", 8080, 1),
                         false, NLM_F_REQUEST | NLM_F_ACK);
  ASSERT_TRUE(b.ok());
  Parsed p;
  Parse(*b, p);
  EXPECT_NE(p.dest[IPVS_DEST_ATTR_ADDR], nullptr);
  EXPECT_EQ(p.dest[IPVS_DEST_ATTR_WEIGHT], nullptr);
  EXPECT_EQ(p.dest[IPVS_DEST_ATTR_FWD_METHOD], nullptr);
}

TEST(IpvsMessagesTest, DumpsAndFlush) {
  auto b = EncodeGetServices(kFamily);
  ASSERT_TRUE(b.ok());
  Parsed p;
  Parse(*b, p);
  EXPECT_EQ(p.genl.cmd, IPVS_CMD_GET_SERVICE);
  EXPECT_TRUE(p.hdr.nlmsg_flags & NLM_F_DUMP);
  b = EncodeGetDests(kFamily, Fwmark(257).key);
  ASSERT_TRUE(b.ok());
  Parsed q;
  Parse(*b, q);
  EXPECT_EQ(q.genl.cmd, IPVS_CMD_GET_DEST);
  EXPECT_EQ(nla_get_u32(q.svc[IPVS_SVC_ATTR_FWMARK]), 257u);
  b = EncodeFlush(kFamily);
  Parsed r;
  Parse(*b, r);
  EXPECT_EQ(r.genl.cmd, IPVS_CMD_FLUSH);
}

TEST(IpvsMessagesTest, BadInputIsRejected) {
  ServiceSpec s;  // neither fwmark nor address
  EXPECT_EQ(EncodeServiceMsg(kFamily, IPVS_CMD_NEW_SERVICE, s, true, 0).status().code(),
            absl::StatusCode::kInvalidArgument);
  s = Fwmark(1);
  s.scheduler = "";
  EXPECT_EQ(EncodeServiceMsg(kFamily, IPVS_CMD_NEW_SERVICE, s, true, 0).status().code(),
            absl::StatusCode::kInvalidArgument);
  DestSpec d = Dest("10.0.0.1", 80, 1);
  d.addr = "abc";
  EXPECT_EQ(EncodeDestMsg(kFamily, IPVS_CMD_NEW_DEST, Fwmark(1).key, d, true, 0).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(FakeIpvsTest, KernelSemantics) {
  auto ipvs = NewFakeIpvs();
  ServiceSpec s = Fwmark(256);
  ASSERT_TRUE(ipvs->AddService(s).ok());
  EXPECT_EQ(ipvs->AddService(s).code(), absl::StatusCode::kAlreadyExists);
  ASSERT_TRUE(ipvs->AddDest(s.key, Dest("10.0.0.1", 80, 1)).ok());
  EXPECT_EQ(ipvs->AddDest(s.key, Dest("10.0.0.1", 80, 1)).code(), absl::StatusCode::kAlreadyExists);
  ASSERT_TRUE(ipvs->UpdateDest(s.key, Dest("10.0.0.1", 80, 0)).ok());
  EXPECT_EQ((*ipvs->List())[0].dests[0].weight, 0u);
  EXPECT_EQ(ipvs->DeleteDest(s.key, Dest("10.0.0.2", 80, 1)).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(ipvs->AddDest(Fwmark(9).key, Dest("10.0.0.1", 80, 1)).code(),
            absl::StatusCode::kNotFound);
  ASSERT_TRUE(ipvs->DeleteService(s.key).ok());
  EXPECT_TRUE(ipvs->List()->empty());
}

}  // namespace
}  // namespace shoal::kernel::ipvs
