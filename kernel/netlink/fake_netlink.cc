#include "kernel/netlink/fake_netlink.h"

#include <sys/mman.h>

#include "absl/strings/str_cat.h"
#include "base/status.h"
#include "kernel/netlink/fake_state.h"

namespace shoal::kernel {
namespace {

class FakeFactory : public NetlinkFactory {
 public:
  explicit FakeFactory(FakeKernel::State* s) : s_(s) {}
  absl::StatusOr<std::unique_ptr<Netlink>> Open(int netns_fd) override {
    std::lock_guard<std::mutex> lock(s_->mu);
    ASSIGN_OR_RETURN(FakeNs * ns, s_->Ns(netns_fd));
    return NewFakeNetlink(s_, ns->id);
  }

 private:
  FakeKernel::State* s_;
};

base::UniqueFd NewMemfd() { return base::UniqueFd(::memfd_create("fake-netns", MFD_CLOEXEC)); }

FakeNs MakeNs(uint64_t id) {
  FakeNs ns;
  ns.id = id;
  Link lo;
  lo.index = ns.next_index++;
  lo.name = "lo";
  lo.kind = LinkKind::kLoopback;
  lo.mtu = 65536;
  lo.up = true;
  ns.links[lo.index] = lo;
  return ns;
}

class FakeStore : public NetnsStore {
 public:
  explicit FakeStore(FakeKernel::State* s) : s_(s) {}

  absl::StatusOr<base::UniqueFd> Create(absl::string_view name) override {
    std::lock_guard<std::mutex> lock(s_->mu);
    std::string n(name);
    if (n.empty() || n.find('/') != std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat("netns name \"", n, "\" is invalid"));
    }
    if (s_->named.count(n)) return absl::AlreadyExistsError(absl::StrCat("netns ", n, " exists"));
    base::UniqueFd fd = NewMemfd();
    ASSIGN_OR_RETURN(uint64_t id, NetnsId(fd.get()));
    s_->ns[id] = MakeNs(id);
    s_->named[n] = fd.Release();
    return OpenLocked(n);
  }
  absl::StatusOr<base::UniqueFd> Open(absl::string_view name) override {
    std::lock_guard<std::mutex> lock(s_->mu);
    return OpenLocked(std::string(name));
  }
  absl::Status Delete(absl::string_view name) override {
    std::lock_guard<std::mutex> lock(s_->mu);
    auto it = s_->named.find(std::string(name));
    if (it == s_->named.end()) {
      return absl::NotFoundError(absl::StrCat("netns ", std::string(name), " does not exist"));
    }
    auto id = NetnsId(it->second);
    if (id.ok()) s_->DestroyNs(*id);
    ::close(it->second);
    s_->named.erase(it);
    return absl::OkStatus();
  }
  absl::StatusOr<std::vector<std::string>> List() override {
    std::lock_guard<std::mutex> lock(s_->mu);
    std::vector<std::string> out;
    for (const auto& [n, fd] : s_->named) out.push_back(n);
    return out;
  }

 private:
  absl::StatusOr<base::UniqueFd> OpenLocked(const std::string& n) {
    auto it = s_->named.find(n);
    if (it == s_->named.end()) return absl::NotFoundError(absl::StrCat("netns ", n, " not found"));
    int fd = ::dup(it->second);
    if (fd < 0) return base::ErrnoStatus(errno, "dup");
    return base::UniqueFd(fd);
  }
  FakeKernel::State* s_;
};

}  // namespace

absl::StatusOr<FakeNs*> FakeKernel::State::Ns(int netns_fd) {
  if (netns_fd < 0) return &ns[0];
  ASSIGN_OR_RETURN(uint64_t id, NetnsId(netns_fd));
  auto it = ns.find(id);
  if (it == ns.end()) return absl::NotFoundError(absl::StrCat("netns fd ", netns_fd, " is gone"));
  return &it->second;
}

FakeNs* FakeKernel::State::NsById(uint64_t id) {
  auto it = ns.find(id);
  return it == ns.end() ? nullptr : &it->second;
}

void FakeKernel::State::RemoveLink(FakeNs& n, int index) {
  if (!n.links.count(index)) return;
  n.links.erase(index);
  n.vxlan_src_ns.erase(index);
  for (auto it = n.addresses.begin(); it != n.addresses.end();) {
    it = it->link_index == index ? n.addresses.erase(it) : std::next(it);
  }
  for (auto it = n.routes.begin(); it != n.routes.end();) {
    it = it->out_index == index ? n.routes.erase(it) : std::next(it);
  }
  for (auto it = n.neighbors.begin(); it != n.neighbors.end();) {
    it = it->link_index == index ? n.neighbors.erase(it) : std::next(it);
  }
  n.lower.erase(index);
  for (auto& [i, l] : n.links) {
    if (l.master_index == index) l.master_index = 0;
  }
  // macvlan/vlan children die with their parent, in whichever namespace they live.
  std::vector<std::pair<uint64_t, int>> children;
  for (auto& [id, other] : ns) {
    for (auto& [child, parent] : other.lower) {
      if (parent == std::make_pair(n.id, index)) children.push_back({id, child});
    }
  }
  for (auto [id, child] : children) {
    if (FakeNs* o = NsById(id)) RemoveLink(*o, child);
  }
  auto peer = n.veth_peer.find(index);
  if (peer != n.veth_peer.end()) {
    auto [pns, pidx] = peer->second;
    n.veth_peer.erase(peer);
    if (FakeNs* other = NsById(pns)) {
      other->veth_peer.erase(pidx);
      RemoveLink(*other, pidx);
    }
  }
}

void FakeKernel::State::DestroyNs(uint64_t id) {
  FakeNs* n = NsById(id);
  if (n == nullptr) return;
  std::vector<int> idx;
  for (auto& [i, l] : n->links) idx.push_back(i);
  for (int i : idx) RemoveLink(*n, i);
  ns.erase(id);
}

FakeKernel::FakeKernel()
    : state_(std::make_unique<State>()),
      factory_(std::make_unique<FakeFactory>(state_.get())),
      store_(std::make_unique<FakeStore>(state_.get())) {
  state_->ns[0] = MakeNs(0);
}

FakeKernel::~FakeKernel() {
  for (auto& [n, fd] : state_->named) ::close(fd);
  for (auto& [id, fd] : state_->anon) ::close(fd);
}

NetlinkFactory& FakeKernel::factory() { return *factory_; }
NetnsStore& FakeKernel::netns_store() { return *store_; }

base::UniqueFd FakeKernel::NewNetns() {
  std::lock_guard<std::mutex> lock(state_->mu);
  base::UniqueFd fd = NewMemfd();
  uint64_t id = NetnsId(fd.get()).value();
  state_->ns[id] = MakeNs(id);
  state_->anon[id] = ::dup(fd.get());
  return fd;
}

void FakeKernel::DestroyNetns(int fd) {
  std::lock_guard<std::mutex> lock(state_->mu);
  auto id = NetnsId(fd);
  if (!id.ok()) return;
  state_->DestroyNs(*id);
  auto it = state_->anon.find(*id);
  if (it != state_->anon.end()) {
    ::close(it->second);
    state_->anon.erase(it);
  }
}

int FakeKernel::NetnsCount() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return static_cast<int>(state_->ns.size()) - 1;
}

}  // namespace shoal::kernel
