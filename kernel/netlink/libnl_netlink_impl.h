// Internal: the libnl-backed Netlink class, shared by libnl_netlink.cc (links) and
// libnl_rows.cc (addresses, routes, neighbours). Use LibnlNetlinkFactory instead.
#pragma once

#include "kernel/netlink/netlink.h"
#include "kernel/netlink/nl_util.h"

namespace shoal::kernel {

class LibnlNetlink : public Netlink {
 public:
  explicit LibnlNetlink(nl::Socket sk) : sk_(std::move(sk)) {}

  absl::StatusOr<Link> CreateLink(const LinkSpec& spec) override;
  absl::Status DeleteLink(int index) override;
  absl::StatusOr<Link> GetLink(absl::string_view name) override;
  absl::StatusOr<Link> GetLinkByIndex(int index) override;
  absl::StatusOr<std::vector<Link>> ListLinks() override;
  absl::Status SetLinkUp(int index, bool up) override;
  absl::Status SetLinkMtu(int index, uint32_t mtu) override;
  absl::Status SetLinkMaster(int index, int master_index) override;
  absl::Status MoveLink(int index, int netns_fd, absl::string_view new_name) override;

  absl::Status AddAddress(const Address& address) override;
  absl::Status DeleteAddress(const Address& address) override;
  absl::StatusOr<std::vector<Address>> ListAddresses() override;

  absl::Status AddRoute(const Route& route) override;
  absl::Status DeleteRoute(const Route& route) override;
  absl::StatusOr<std::vector<Route>> ListRoutes(int family) override;

  absl::Status SetNeighbor(const Neighbor& neighbor) override;
  absl::Status DeleteNeighbor(const Neighbor& neighbor) override;
  absl::StatusOr<std::vector<Neighbor>> ListNeighbors(NeighFamily family, int link_index) override;

  static Link ToLink(rtnl_link* l);

 private:
  nl_sock* sock() { return sk_.get(); }
  absl::Status Change(int index, rtnl_link* change, absl::string_view what);
  absl::Status SendNeigh(int type, int flags, const Neighbor& n, absl::string_view what);

  nl::Socket sk_;
};

}  // namespace shoal::kernel
