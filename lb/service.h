// Load-balanced services as the LB backends see them (DESIGN.md §5).
//
// A Service is a frontend — a VIP (daddr . protocol . port) or a published port (protocol .
// port on every local address, the routing mesh) — and a set of backends with weights.
// Weight 0 means draining: the backend gets no new connections while established ones finish
// (conntrack keeps their NAT binding). Changes are applied atomically (Backend::Apply), and a
// backend is chosen per new flow by a Scheduler (random, or Maglev so every node picks the same
// backend for a flow).
//
// Thread safety: plain values; Backend implementations document their own.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace shoal::lb {

enum class Protocol : uint8_t { kTcp = 6, kUdp = 17, kSctp = 132 };
enum class Frontend : uint8_t { kVip, kPublished };
enum class Scheduler : uint8_t { kRandom, kMaglev };

absl::string_view ProtocolName(Protocol p);  // "tcp", "udp", "sctp"
absl::StatusOr<Protocol> ParseProtocol(absl::string_view name);

struct BackendAddr {
  std::string ip;       // "10.0.1.5" (IPv4 or IPv6 text)
  uint16_t port = 0;    // target port
  uint32_t weight = 1;  // 0 = draining
  friend bool operator==(const BackendAddr&, const BackendAddr&) = default;
};

struct Service {
  std::string name;  // unique per node: [a-z0-9_-], 1..64 characters
  Frontend frontend = Frontend::kVip;
  std::string vip;  // kVip only
  Protocol protocol = Protocol::kTcp;
  uint16_t port = 0;  // VIP port or published port
  std::vector<BackendAddr> backends;
  Scheduler scheduler = Scheduler::kRandom;
  friend bool operator==(const Service&, const Service&) = default;
};

// Everything to change at once: services to add or replace, and names to remove.
struct Change {
  std::vector<Service> upsert;
  std::vector<std::string> remove;
};

// InvalidArgument naming the service and field: bad name, VIP missing/unparsable (or set on a
// published port), port 0, no backends, a backend with a bad address or port 0, duplicate
// backends, IPv4/IPv6 mix between VIP and backends.
absl::Status ValidateService(const Service& s);

// Validates each service and that no two share a frontend (same VIP/proto/port, or the same
// published proto/port): FailedPrecondition "port conflict: ..." naming both.
absl::Status ValidateServices(const std::vector<Service>& services);

// The one interface both dataplanes implement (nft on this machine, IPVS where the kernel has
// it). Apply is all-or-nothing: on error the previously applied state is untouched.
class Backend {
 public:
  virtual ~Backend() = default;
  virtual absl::string_view Name() const = 0;
  virtual absl::Status Apply(const Change& change) = 0;
  // The services as last applied successfully (sorted by name).
  virtual std::vector<Service> Services() const = 0;
};

// Sets the weight of backend ip:port of `service` to 0 (drain). NotFound when absent.
absl::Status Drain(Backend& backend, absl::string_view service, absl::string_view ip,
                   uint16_t port);

// What a Change does to a ServiceSet, service by service.
struct Delta {
  std::vector<Service> added;
  std::vector<std::pair<Service, Service>> changed;  // (old, new); identical upserts are dropped
  std::vector<Service> removed;
  bool empty() const { return added.empty() && changed.empty() && removed.empty(); }
};

// The applied services with a frontend index, so validating a change costs O(size of the
// change), not O(all services) (adding one service to 10,000 must stay cheap).
class ServiceSet {
 public:
  // Validates `change` against the current set without modifying it: InvalidArgument /
  // FailedPrecondition (port conflict) / NotFound (removing an absent service).
  absl::StatusOr<Delta> Plan(const Change& change) const;
  void Commit(const Delta& delta);

  const Service* Find(absl::string_view name) const;
  std::vector<Service> All() const;  // sorted by name
  size_t size() const { return by_name_.size(); }

 private:
  std::map<std::string, Service, std::less<>> by_name_;
  std::map<std::string, std::string> by_frontend_;  // FrontendKey -> name
};

// "10.0.0.2 tcp/80" or "* udp/30000".
std::string FrontendKey(const Service& s);

}  // namespace shoal::lb
