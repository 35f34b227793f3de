// The Netlink operations of FakeKernel (see fake_netlink.h for the modelled semantics).
#include <linux/if_ether.h>

#include "absl/strings/str_cat.h"
#include "base/status.h"
#include "kernel/netlink/fake_state.h"

namespace shoal::kernel {
namespace {

constexpr uint32_t kVxlanOverhead = 50;  // inner Ethernet 14 + IPv4 20 + UDP 8 + VXLAN 8

MacAddr RandomishMac(uint64_t ns, int index) {
  MacAddr m;
  m.bytes = {0x02,
             0xfa,
             static_cast<uint8_t>(ns >> 8),
             static_cast<uint8_t>(ns),
             static_cast<uint8_t>(index >> 8),
             static_cast<uint8_t>(index)};
  return m;
}

bool SameNeighKey(const Neighbor& a, const Neighbor& b) {
  if (a.family != b.family || a.link_index != b.link_index) return false;
  if (a.family == NeighFamily::kFdb) {
    return a.mac == b.mac && a.self == b.self && a.master == b.master;
  }
  return a.dst == b.dst;
}

class FakeNetlink : public Netlink {
 public:
  FakeNetlink(FakeKernel::State* s, uint64_t ns) : s_(s), ns_id_(ns) {}

  absl::StatusOr<Link> CreateLink(const LinkSpec& spec) override {
    RETURN_IF_ERROR(ValidateLinkSpec(spec));
    std::lock_guard<std::mutex> lock(s_->mu);
    ASSIGN_OR_RETURN(FakeNs * here, Here());
    FakeNs* there = here;
    if (spec.netns_fd >= 0) {
      ASSIGN_OR_RETURN(there, s_->Ns(spec.netns_fd));
    }
    std::string what = absl::StrCat("create ", LinkKindName(spec.kind), " ", spec.name);
    if (FindByName(*there, spec.name)) return absl::AlreadyExistsError(what + ": Object exists");
    if (spec.mtu != 0 && (spec.mtu < 68 || spec.mtu > 65535)) {
      return absl::InvalidArgumentError(what + ": Invalid input data or parameter");
    }
    Link l;
    l.name = spec.name;
    l.kind = spec.kind;
    l.mtu = spec.mtu ? spec.mtu : 1500;
    l.up = spec.up;
    l.parent_index = spec.parent_index;
    FakeNs* peer_ns = nullptr;
    if (spec.parent_index > 0) {
      auto p = here->links.find(spec.parent_index);
      if (p == here->links.end()) return absl::NotFoundError(what + ": No such device");
      if (spec.kind == LinkKind::kMacvlan) {
        for (auto& [id, other_ns] : s_->ns) {
          for (auto& [child, parent] : other_ns.lower) {
            const Link& other = other_ns.links[child];
            if (parent == std::make_pair(ns_id_, spec.parent_index) &&
                other.kind == LinkKind::kMacvlan &&
                (other.macvlan.mode == MacvlanMode::kPassthru ||
                 spec.macvlan.mode == MacvlanMode::kPassthru)) {
              return absl::InvalidArgumentError(what + ": passthru macvlan is exclusive");
            }
          }
        }
      }
      if (spec.mtu == 0) l.mtu = p->second.mtu;
    }
    if (spec.kind == LinkKind::kVeth) {
      peer_ns = here;
      if (spec.veth.peer_netns_fd >= 0) {
        ASSIGN_OR_RETURN(peer_ns, s_->Ns(spec.veth.peer_netns_fd));
      }
      if (FindByName(*peer_ns, spec.veth.peer_name) ||
          (peer_ns == there && spec.veth.peer_name == spec.name)) {
        return absl::AlreadyExistsError(what + ": Object exists");
      }
    }
    if (spec.kind == LinkKind::kVxlan) {
      for (auto& [n_id, n] : s_->ns) {
        for (auto& [i, src] : n.vxlan_src_ns) {
          const Link& v = n.links[i];
          if (src == ns_id_ && v.vxlan.vni == spec.vxlan.vni && v.vxlan.port == spec.vxlan.port) {
            return absl::AlreadyExistsError(what + ": Object exists");
          }
        }
      }
      if (spec.vxlan.underlay_index > 0) {
        auto u = here->links.find(spec.vxlan.underlay_index);
        if (u == here->links.end()) return absl::NotFoundError(what + ": No such device");
        uint32_t max = u->second.mtu - kVxlanOverhead;
        // Like vxlan_dev_configure(): clamp to what the underlay can carry.
        if (spec.mtu == 0 || spec.mtu > max) l.mtu = max;
      }
      l.vxlan = spec.vxlan;
    }
    l.macvlan = spec.macvlan;
    l.vlan = spec.vlan;
    l.index = there->next_index++;
    l.mac = spec.mac ? *spec.mac : RandomishMac(there->id, l.index);
    there->links[l.index] = l;
    if (spec.kind == LinkKind::kVxlan) there->vxlan_src_ns[l.index] = ns_id_;
    if (spec.parent_index > 0) there->lower[l.index] = {ns_id_, spec.parent_index};
    if (peer_ns != nullptr) {
      Link p;
      p.kind = LinkKind::kVeth;
      p.name = spec.veth.peer_name;
      p.mtu = l.mtu;
      p.index = peer_ns->next_index++;
      p.mac = spec.veth.peer_mac ? *spec.veth.peer_mac : RandomishMac(peer_ns->id, p.index);
      peer_ns->links[p.index] = p;
      there->veth_peer[l.index] = {peer_ns->id, p.index};
      peer_ns->veth_peer[p.index] = {there->id, l.index};
    }
    return l;
  }

  absl::Status DeleteLink(int index) override {
    std::lock_guard<std::mutex> lock(s_->mu);
    ASSIGN_OR_RETURN(FakeNs * here, Here());
    if (!here->links.count(index)) {
      return absl::NotFoundError(absl::StrCat("delete link #", index, ": No such device"));
    }
    s_->RemoveLink(*here, index);
    return absl::OkStatus();
  }

  absl::StatusOr<Link> GetLink(absl::string_view name) override {
    std::lock_guard<std::mutex> lock(s_->mu);
    ASSIGN_OR_RETURN(FakeNs * here, Here());
    if (Link* l = FindByName(*here, std::string(name))) return *l;
    return absl::NotFoundError(absl::StrCat("get link ", std::string(name), ": No such device"));
  }

  absl::StatusOr<Link> GetLinkByIndex(int index) override {
    std::lock_guard<std::mutex> lock(s_->mu);
    ASSIGN_OR_RETURN(Link * l, Find(index, "get"));
    return *l;
  }

  absl::StatusOr<std::vector<Link>> ListLinks() override {
    std::lock_guard<std::mutex> lock(s_->mu);
    ASSIGN_OR_RETURN(FakeNs * here, Here());
    std::vector<Link> out;
    for (auto& [i, l] : here->links) out.push_back(l);
    return out;
  }

  absl::Status SetLinkUp(int index, bool up) override {
    std::lock_guard<std::mutex> lock(s_->mu);
    ASSIGN_OR_RETURN(Link * l, Find(index, "set up"));
    l->up = up;
    return absl::OkStatus();
  }

  absl::Status SetLinkMtu(int index, uint32_t mtu) override {
    std::lock_guard<std::mutex> lock(s_->mu);
    ASSIGN_OR_RETURN(Link * l, Find(index, "set mtu"));
    if (mtu < 68 || mtu > 65535) {
      return absl::InvalidArgumentError(absl::StrCat("set mtu ", mtu, ": Invalid input data"));
    }
    l->mtu = mtu;
    return absl::OkStatus();
  }

  absl::Status SetLinkMaster(int index, int master_index) override {
    std::lock_guard<std::mutex> lock(s_->mu);
    ASSIGN_OR_RETURN(Link * l, Find(index, "set master"));
    if (master_index != 0) {
      ASSIGN_OR_RETURN(Link * m, Find(master_index, "set master"));
      if (m->kind != LinkKind::kBridge) {
        return absl::InvalidArgumentError(absl::StrCat("set master: ", m->name, " is no bridge"));
      }
    }
    l->master_index = master_index;
    return absl::OkStatus();
  }

  absl::Status MoveLink(int index, int netns_fd, absl::string_view new_name) override {
    std::lock_guard<std::mutex> lock(s_->mu);
    ASSIGN_OR_RETURN(FakeNs * here, Here());
    ASSIGN_OR_RETURN(Link * l, Find(index, "move"));
    ASSIGN_OR_RETURN(FakeNs * there, s_->Ns(netns_fd));
    if (l->kind == LinkKind::kBridge || l->kind == LinkKind::kLoopback) {
      return absl::InvalidArgumentError("move link: Invalid argument (namespace-local device)");
    }
    std::string name = new_name.empty() ? l->name : std::string(new_name);
    if (FindByName(*there, name)) return absl::AlreadyExistsError("move link: Object exists");
    Link moved = *l;
    moved.name = name;
    moved.up = false;
    moved.master_index = 0;
    moved.index = there->next_index++;
    auto peer = here->veth_peer.find(index);
    std::optional<std::pair<uint64_t, int>> peer_ref;
    if (peer != here->veth_peer.end()) {
      peer_ref = peer->second;
      here->veth_peer.erase(peer);
    }
    s_->RemoveLink(*here, index);
    there->links[moved.index] = moved;
    if (peer_ref) {
      there->veth_peer[moved.index] = *peer_ref;
      if (FakeNs* pn = s_->NsById(peer_ref->first)) {
        pn->veth_peer[peer_ref->second] = {there->id, moved.index};
      }
    }
    return absl::OkStatus();
  }

  absl::Status AddAddress(const Address& a) override {
    std::lock_guard<std::mutex> lock(s_->mu);
    ASSIGN_OR_RETURN(FakeNs * here, Here());
    RETURN_IF_ERROR(Find(a.link_index, "add address").status());
    for (const Address& e : here->addresses) {
      if (e.link_index == a.link_index && e.prefix.addr == a.prefix.addr) {
        return absl::AlreadyExistsError(
            absl::StrCat("add address ", a.prefix.ToString(), ": Object exists"));
      }
    }
    here->addresses.insert(a);
    return absl::OkStatus();
  }

  absl::Status DeleteAddress(const Address& a) override {
    std::lock_guard<std::mutex> lock(s_->mu);
    ASSIGN_OR_RETURN(FakeNs * here, Here());
    if (!here->addresses.erase(a)) {
      return absl::NotFoundError(
          absl::StrCat("delete address ", a.prefix.ToString(), ": Object not found"));
    }
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<Address>> ListAddresses() override {
    std::lock_guard<std::mutex> lock(s_->mu);
    ASSIGN_OR_RETURN(FakeNs * here, Here());
    return std::vector<Address>(here->addresses.begin(), here->addresses.end());
  }

  absl::Status AddRoute(const Route& r) override {
    std::lock_guard<std::mutex> lock(s_->mu);
    ASSIGN_OR_RETURN(FakeNs * here, Here());
    std::string what = absl::StrCat("add route ", r.dst.ToString());
    Route n = r;
    n.dst = r.dst.Network();
    if (r.out_index > 0) RETURN_IF_ERROR(Find(r.out_index, "add route").status());
    if (r.gateway.is_set()) {
      bool reachable = false;
      for (const Address& a : here->addresses) {
        if (a.prefix.Contains(r.gateway) && (r.out_index == 0 || a.link_index == r.out_index)) {
          reachable = true;
          if (n.out_index == 0) n.out_index = a.link_index;
        }
      }
      if (!reachable) return absl::InvalidArgumentError(what + ": gateway unreachable");
    }
    for (const Route& e : here->routes) {
      if (e.dst == n.dst) return absl::AlreadyExistsError(what + ": Object exists");
    }
    here->routes.insert(n);
    return absl::OkStatus();
  }

  absl::Status DeleteRoute(const Route& r) override {
    std::lock_guard<std::mutex> lock(s_->mu);
    ASSIGN_OR_RETURN(FakeNs * here, Here());
    for (auto it = here->routes.begin(); it != here->routes.end(); ++it) {
      if (it->dst == r.dst.Network()) {
        here->routes.erase(it);
        return absl::OkStatus();
      }
    }
    return absl::NotFoundError(absl::StrCat("delete route ", r.dst.ToString(), ": not found"));
  }

  absl::StatusOr<std::vector<Route>> ListRoutes(int family) override {
    std::lock_guard<std::mutex> lock(s_->mu);
    ASSIGN_OR_RETURN(FakeNs * here, Here());
    std::vector<Route> out;
    for (const Route& r : here->routes) {
      if (r.dst.addr.family == family) out.push_back(r);
    }
    return out;
  }

  absl::Status SetNeighbor(const Neighbor& n) override {
    std::lock_guard<std::mutex> lock(s_->mu);
    ASSIGN_OR_RETURN(FakeNs * here, Here());
    RETURN_IF_ERROR(Find(n.link_index, "set neighbour").status());
    for (auto it = here->neighbors.begin(); it != here->neighbors.end(); ++it) {
      if (SameNeighKey(*it, n)) {
        here->neighbors.erase(it);
        break;
      }
    }
    here->neighbors.insert(n);
    return absl::OkStatus();
  }

  absl::Status DeleteNeighbor(const Neighbor& n) override {
    std::lock_guard<std::mutex> lock(s_->mu);
    ASSIGN_OR_RETURN(FakeNs * here, Here());
    for (auto it = here->neighbors.begin(); it != here->neighbors.end(); ++it) {
      if (SameNeighKey(*it, n)) {
        here->neighbors.erase(it);
        return absl::OkStatus();
      }
    }
    return absl::NotFoundError(
        absl::StrCat("delete neighbour ", n.mac.ToString(), ": Object not found"));
  }

  absl::StatusOr<std::vector<Neighbor>> ListNeighbors(NeighFamily family, int link_index) override {
    std::lock_guard<std::mutex> lock(s_->mu);
    ASSIGN_OR_RETURN(FakeNs * here, Here());
    std::vector<Neighbor> out;
    for (const Neighbor& n : here->neighbors) {
      if (n.family == family && (link_index == 0 || n.link_index == link_index)) out.push_back(n);
    }
    return out;
  }

 private:
  absl::StatusOr<FakeNs*> Here() {
    FakeNs* n = s_->NsById(ns_id_);
    if (n == nullptr) return absl::UnavailableError("fake netns was destroyed");
    return n;
  }
  absl::StatusOr<Link*> Find(int index, absl::string_view what) {
    ASSIGN_OR_RETURN(FakeNs * here, Here());
    auto it = here->links.find(index);
    if (it == here->links.end()) {
      return absl::NotFoundError(absl::StrCat(what, " link #", index, ": No such device"));
    }
    return &it->second;
  }
  static Link* FindByName(FakeNs& ns, const std::string& name) {
    for (auto& [i, l] : ns.links)
      if (l.name == name) return &l;
    return nullptr;
  }
  FakeKernel::State* s_;
  uint64_t ns_id_;
};

}  // namespace

std::unique_ptr<Netlink> NewFakeNetlink(FakeKernel::State* state, uint64_t ns_id) {
  return std::make_unique<FakeNetlink>(state, ns_id);
}

}  // namespace shoal::kernel
