// Netlink transport for nf_tables. Why this shape:
//  * One batch = one sendmsg of NFNL_MSG_BATCH_BEGIN .. END: the kernel applies it as one
//    transaction (nfnetlink_rcv_batch) and processes it synchronously inside sendmsg, so after
//    the send every error/ack is already queued on our socket and can be drained without
//    blocking. Only the last op message asks for an ack; failures always produce an error
//    message whose sequence number names the op.
//  * The send buffer is raised (SO_SNDBUFFORCE, as nft does) to the batch size: netlink
//    rejects a message larger than sk_sndbuf with EMSGSIZE.
#include "kernel/nft/netlink_nft.h"

#include <libmnl/libmnl.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <sched.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <mutex>
#include <thread>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "base/status.h"
#include "kernel/nft/codec.h"
#include "kernel/nft/errors.h"

namespace shoal::kernel::nft {
namespace {

using internal::EncodeBatch;

struct MnlCloser {
  void operator()(mnl_socket* s) const { mnl_socket_close(s); }
};
using MnlPtr = std::unique_ptr<mnl_socket, MnlCloser>;

constexpr size_t kRecvBuf = 1 << 16;

class NetlinkNft : public Nft {
 public:
  explicit NetlinkNft(MnlPtr sock) : sock_(std::move(sock)), portid_(mnl_socket_get_portid(sock_.get())) {}

  absl::Status Apply(const Batch& batch) override {
    if (batch.empty()) return absl::OkStatus();
    std::lock_guard<std::mutex> lock(mu_);
    uint32_t first = NextSeq(0);
    ASSIGN_OR_RETURN(internal::EncodedBatch enc, EncodeBatch(batch, first));
    seq_ = enc.first_seq + enc.seq_to_op.size();
    RETURN_IF_ERROR(EnsureSndbuf(enc.bytes.size()));
    if (mnl_socket_sendto(sock_.get(), enc.bytes.data(), enc.bytes.size()) < 0) {
      return NftError(errno, "nft: send batch");
    }
    // Drain replies (already queued: the kernel processed the batch inside sendmsg).
    std::vector<char> buf(kRecvBuf);
    absl::Status first_error;
    bool acked = false;
    for (;;) {
      ssize_t n = recv(mnl_socket_get_fd(sock_.get()), buf.data(), buf.size(), MSG_DONTWAIT);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        return NftError(errno, "nft: receive batch result");
      }
      int len = static_cast<int>(n);
      for (auto* nlh = reinterpret_cast<nlmsghdr*>(buf.data()); mnl_nlmsg_ok(nlh, len);
           nlh = mnl_nlmsg_next(nlh, &len)) {
        if (nlh->nlmsg_type != NLMSG_ERROR) continue;
        auto* err = static_cast<nlmsgerr*>(mnl_nlmsg_get_payload(nlh));
        if (err->error == 0) {
          if (nlh->nlmsg_seq == enc.last_seq) acked = true;
          continue;
        }
        if (first_error.ok()) first_error = OpError(batch, enc, nlh->nlmsg_seq, -err->error);
      }
    }
    if (!first_error.ok()) return first_error;
    if (!acked) return absl::InternalError("nft: batch was not acknowledged by the kernel");
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<TableRef>> ListTables() override {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<TableRef> out;
    RETURN_IF_ERROR(Dump(
        [](char* b, uint32_t seq) { return internal::BuildDumpTables(b, seq); },
        [&](const nlmsghdr* nlh) {
          TableRef t;
          if (internal::DecodeTable(nlh, &t)) out.push_back(t);
        },
        "list tables"));
    return out;
  }

  absl::StatusOr<Table> GetTable(const TableRef& t) override {
    std::lock_guard<std::mutex> lock(mu_);
    std::string what = absl::StrCat("table ", FamilyName(t.family), " ", t.name);
    RETURN_IF_ERROR(Dump([&](char* b, uint32_t seq) { return internal::BuildGetTable(b, t, seq); },
                         [](const nlmsghdr*) {}, what));
    Table out;
    out.family = t.family;
    out.name = t.name;
    RETURN_IF_ERROR(Dump(
        [&](char* b, uint32_t seq) { return internal::BuildDumpChains(b, t.family, seq); },
        [&](const nlmsghdr* nlh) {
          Chain c;
          if (internal::DecodeChain(nlh, t, &c)) out.chains.push_back(std::move(c));
        },
        what));
    RETURN_IF_ERROR(Dump(
        [&](char* b, uint32_t seq) { return internal::BuildDumpSets(b, t, seq); },
        [&](const nlmsghdr* nlh) {
          Set s;
          if (internal::DecodeSet(nlh, t, &s)) out.sets.push_back(std::move(s));
        },
        what));
    for (Set& s : out.sets) {
      RETURN_IF_ERROR(Dump(
          [&](char* b, uint32_t seq) { return internal::BuildDumpElements(b, t, s.name, seq); },
          [&](const nlmsghdr* nlh) { internal::DecodeElements(nlh, s, &s.elements); }, what));
      std::sort(s.elements.begin(), s.elements.end(), [](const Element& a, const Element& b) {
        return internal::PackKey(a.key) < internal::PackKey(b.key);
      });
    }
    RETURN_IF_ERROR(Dump(
        [&](char* b, uint32_t seq) { return internal::BuildDumpRules(b, t, seq); },
        [&](const nlmsghdr* nlh) {
          Rule r;
          if (internal::DecodeRule(nlh, t, &r)) out.rules.push_back(std::move(r));
        },
        what));
    std::sort(out.chains.begin(), out.chains.end(),
              [](const Chain& a, const Chain& b) { return a.name < b.name; });
    std::sort(out.sets.begin(), out.sets.end(),
              [](const Set& a, const Set& b) { return a.name < b.name; });
    // Rules arrive per chain in evaluation order; group by chain name keeping that order.
    std::stable_sort(out.rules.begin(), out.rules.end(),
                     [](const Rule& a, const Rule& b) { return a.chain < b.chain; });
    return out;
  }

 private:
  uint32_t NextSeq(uint32_t n) {
    if (seq_ == 0) seq_ = 1;
    uint32_t s = seq_;
    seq_ += n;
    return s;
  }

  absl::Status OpError(const Batch& batch, const internal::EncodedBatch& enc, uint32_t seq,
                       int err) {
    int64_t idx = static_cast<int64_t>(seq) - enc.first_seq;
    if (idx < 0 || idx >= static_cast<int64_t>(enc.seq_to_op.size()) || enc.seq_to_op[idx] < 0) {
      return NftError(err, "nft batch");
    }
    int op = enc.seq_to_op[idx];
    return NftError(err, absl::StrCat("nft op ", op, " (", DescribeOp(batch.ops()[op]), ")"));
  }

  absl::Status EnsureSndbuf(size_t need) {
    if (need + 4096 <= sndbuf_) return absl::OkStatus();
    int size = static_cast<int>(std::max<size_t>(need * 2, 1 << 20));
    if (setsockopt(mnl_socket_get_fd(sock_.get()), SOL_SOCKET, SO_SNDBUFFORCE, &size,
                   sizeof(size)) < 0 &&
        setsockopt(mnl_socket_get_fd(sock_.get()), SOL_SOCKET, SO_SNDBUF, &size, sizeof(size)) < 0) {
      return NftError(errno, "nft: raise socket send buffer");
    }
    sndbuf_ = static_cast<size_t>(size);
    return absl::OkStatus();
  }

  // Sends one request and runs callbacks until NLMSG_DONE / the ack.
  template <typename Build, typename OnMsg>
  absl::Status Dump(Build build, OnMsg on_msg, absl::string_view what) {
    std::vector<char> buf(kRecvBuf);
    uint32_t seq = NextSeq(1);
    nlmsghdr* nlh = build(buf.data(), seq);
    if (mnl_socket_sendto(sock_.get(), nlh, nlh->nlmsg_len) < 0) {
      return NftError(errno, absl::StrCat("nft: request ", what));
    }
    struct Ctx {
      OnMsg* on_msg;
    } ctx{&on_msg};
    auto cb = [](const nlmsghdr* m, void* data) -> int {
      (*static_cast<Ctx*>(data)->on_msg)(m);
      return MNL_CB_OK;
    };
    for (;;) {
      ssize_t n = mnl_socket_recvfrom(sock_.get(), buf.data(), buf.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        return NftError(errno, absl::StrCat("nft: receive ", what));
      }
      int ret = mnl_cb_run(buf.data(), n, seq, portid_, cb, &ctx);
      if (ret < 0) {
        if (errno == EINTR) continue;
        return NftError(errno, absl::StrCat("nft: ", what));
      }
      if (ret == MNL_CB_STOP) return absl::OkStatus();
    }
  }

  std::mutex mu_;
  MnlPtr sock_;
  uint32_t portid_;
  uint32_t seq_ = 0;
  size_t sndbuf_ = 0;
};

absl::StatusOr<MnlPtr> OpenSocket() {
  MnlPtr s(mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC));
  if (!s) return NftError(errno, "nft: open netlink socket");
  if (mnl_socket_bind(s.get(), 0, MNL_SOCKET_AUTOPID) < 0) {
    return NftError(errno, "nft: bind netlink socket");
  }
  int on = 1;
  // Extended acks give the kernel's reason text; harmless if unsupported.
  mnl_socket_setsockopt(s.get(), NETLINK_EXT_ACK, &on, sizeof(on));
  // Error replies would otherwise echo the whole failing request (up to ~100 KiB for a large
  // element list) and could be truncated by our receive buffer.
  mnl_socket_setsockopt(s.get(), NETLINK_CAP_ACK, &on, sizeof(on));
  int rcv = 1 << 20;
  setsockopt(mnl_socket_get_fd(s.get()), SOL_SOCKET, SO_RCVBUFFORCE, &rcv, sizeof(rcv));
  return s;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Nft>> OpenNft(int netns_fd) {
  absl::StatusOr<MnlPtr> sock = absl::InternalError("not opened");
  if (netns_fd < 0) {
    sock = OpenSocket();
  } else {
    // A netlink socket belongs to the netns of the thread that creates it (§9.2 of the
    // dataplane notes): open it on a throwaway thread that joined the target namespace.
    std::thread t([&] {
      if (setns(netns_fd, CLONE_NEWNET) != 0) {
        sock = base::ErrnoStatus(errno, "nft: setns(netns fd ", netns_fd, ")");
        return;
      }
      sock = OpenSocket();
    });
    t.join();
  }
  if (!sock.ok()) return sock.status();
  return std::unique_ptr<Nft>(new NetlinkNft(std::move(*sock)));
}

}  // namespace shoal::kernel::nft
