// What shoald remembers about its cluster membership, in <root>/swarm/node.json next to the
// node's certificates (<root>/swarm/certificates/{root.crt,node.crt,node.key}) and, for a
// manager, its raft state (<root>/swarm/raft, raft-id; manager/node/manager.h). The file is
// written last when a node joins, so its presence means "this node is part of a swarm".
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "manager/ca/root_ca.h"
#include "manager/ca/tls.h"

namespace shoal::daemon {

struct NodeState {
  bool manager = false;
  std::string listen_addr;     // host:port the manager listener binds
  std::string advertise_addr;  // host:port peers reach this manager at
  std::vector<std::string> managers;  // manager addresses known when joining
  uint32_t data_path_port = 4789;
};

std::string SwarmDir(const std::string& root);
bool HasNodeState(const std::string& root);
absl::StatusOr<NodeState> LoadNodeState(const std::string& root);
absl::Status SaveNodeState(const std::string& root, const NodeState& state);

// Worker certificates (managers keep theirs through manager::node::Manager, same layout).
absl::Status SaveCertificates(const std::string& root, const manager::ca::TlsMaterial& tls);
absl::StatusOr<manager::ca::TlsMaterial> LoadCertificates(const std::string& root);
// A renewed certificate replaces the current set atomically: the three files are written to
// certificates.new, which is exchanged with certificates in one rename (renameat2
// RENAME_EXCHANGE), so a crash leaves either the old or the new matching cert/key pair.
absl::Status ReplaceCertificates(const std::string& root, const manager::ca::TlsMaterial& tls);
// Raft state of a demoted manager (raft-id first: without it the directory is not resumed).
absl::Status RemoveRaftState(const std::string& root);

// Removes <root>/swarm (leave, or a failed init/join).
absl::Status RemoveSwarmState(const std::string& root);

// "host:port" validation and defaults: a missing port becomes `default_port`.
absl::StatusOr<std::string> NormalizeAddr(const std::string& flag, const std::string& addr,
                                          int default_port);
// The address peers should use when none was given: the listen address unless it is the
// wildcard, else the first non-loopback IPv4 address of this host (with the listen port).
absl::StatusOr<std::string> DefaultAdvertiseAddr(const std::string& listen_addr);

}  // namespace shoal::daemon
