// The name table the embedded resolver answers from (DESIGN.md §5, reference/dataplane.md §5).
//
// Per network it holds services and tasks; from them it derives:
//   <service> / <service alias>            -> VIP(s), or task IPs for endpoint mode dnsrr
//   tasks.<service> / tasks.<alias>        -> task IPs
//   task name, container name, hostname, task aliases -> task IP(s)
//   _<port>._<proto>.<service>             -> SRV per task (target = task name, + A glue)
//   reverse names                          -> PTR (task IP -> task name, VIP -> service)
// Any of these may be qualified with the network name ("web.frontend"). A name that is known
// but has no record of the asked type answers NODATA (NOERROR, empty); the table never answers
// names it does not know (the resolver forwards them or says NXDOMAIN).
//
// Names compare case-insensitively. Task records use a short TTL (clients must notice a task
// going away quickly; Docker's 600 s is reference/dataplane.md §11.8); VIPs are stable and use
// a longer one.
//
// Thread safety: all methods may be called concurrently (readers share a lock).
#pragma once

#include <cstdint>
#include <shared_mutex>
#include <string>
#include <vector>

#include "absl/container/btree_map.h"
#include "absl/container/btree_set.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "dns/message.h"

namespace shoal::dns {

// An IPv4 (4 bytes) or IPv6 (16 bytes) address in network byte order.
using IpBytes = std::string;
// Parses "10.0.0.2" / "fd00::2"; InvalidArgument naming `field` otherwise.
absl::StatusOr<IpBytes> ParseIp(absl::string_view text, absl::string_view field = "ip");
std::string FormatIp(const IpBytes& ip);

struct SrvPort {
  std::string name;      // "http"
  std::string protocol;  // "tcp" | "udp"
  uint16_t port = 0;     // target port on the task
};

struct ServiceRecord {
  std::string name;
  std::vector<std::string> aliases;
  std::vector<IpBytes> vips;  // empty for dnsrr
  bool dnsrr = false;
  std::vector<SrvPort> ports;
};

struct TaskRecord {
  std::string id;                  // unique within the network (task or container id)
  std::string service;             // "" for a plain container
  std::vector<std::string> names;  // task name, container name, hostname, aliases
  std::vector<IpBytes> ips;
};

struct LookupResult {
  enum Kind { kUnknown, kAnswer } kind = kUnknown;
  std::vector<Record> answers;
  std::vector<Record> additional;
};

struct TableOptions {
  uint32_t service_ttl = 60;
  uint32_t task_ttl = 5;
};

class RecordTable {
 public:
  explicit RecordTable(TableOptions options = {}) : options_(options) {}

  // Adds or replaces a service on `network`. InvalidArgument for an empty/invalid name, a VIP
  // on a dnsrr service, a vip-mode service without VIP, or a bad port protocol.
  absl::Status SetService(absl::string_view network, ServiceRecord service);
  // NotFound when absent.
  absl::Status RemoveService(absl::string_view network, absl::string_view name);

  // Adds or replaces the task with `task.id` on `network`. InvalidArgument for no id, no IPs,
  // or an invalid name. The service need not exist yet (records appear when it does).
  absl::Status SetTask(absl::string_view network, TaskRecord task);
  absl::Status RemoveTask(absl::string_view network, absl::string_view id);

  // Drops everything recorded for `network`.
  void RemoveNetwork(absl::string_view network);

  // Answers `q` for a client attached to `networks` (priority order: earlier networks win
  // when a name exists in several).
  LookupResult Lookup(const std::vector<std::string>& networks, const Question& q) const;

  // True when `network` has any records (for tests and metrics).
  size_t NameCount(absl::string_view network) const;

 private:
  struct Network {
    absl::flat_hash_map<std::string, ServiceRecord> services;     // by canonical name
    absl::flat_hash_map<std::string, std::string> service_alias;  // alias -> service key
    absl::flat_hash_map<std::string, TaskRecord> tasks;           // by id
    absl::flat_hash_map<std::string, absl::btree_set<std::string>> tasks_by_service;
    absl::flat_hash_map<std::string, absl::btree_set<std::string>> task_by_name;
    absl::flat_hash_map<IpBytes, absl::btree_map<std::string, std::string>>
        ptr;  // ip -> owner->name
  };

  // Resolves `name` (canonical) within one network; kUnknown when the name is not there.
  LookupResult LookupIn(const Network& net, const std::string& name, const Question& q) const;
  LookupResult LookupPtr(const std::vector<std::string>& networks, const Question& q) const;
  void UnindexTask(Network& net, const TaskRecord& t);
  void UnindexService(Network& net, const std::string& key);

  TableOptions options_;
  mutable std::shared_mutex mu_;
  absl::flat_hash_map<std::string, Network> networks_;
};

}  // namespace shoal::dns
