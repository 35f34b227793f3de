#include "daemon/node_state.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdio.h>
#include <netinet/in.h>

#include <filesystem>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "base/file.h"
#include "base/status.h"
#include "nlohmann/json.hpp"

namespace shoal::daemon {
namespace {

namespace fs = std::filesystem;

std::string StatePath(const std::string& root) { return SwarmDir(root) + "/node.json"; }
std::string CertDir(const std::string& root) { return SwarmDir(root) + "/certificates"; }

}  // namespace

std::string SwarmDir(const std::string& root) { return root + "/swarm"; }

bool HasNodeState(const std::string& root) {
  std::error_code ec;
  return fs::exists(StatePath(root), ec);
}

absl::StatusOr<NodeState> LoadNodeState(const std::string& root) {
  ASSIGN_OR_RETURN(std::string text, base::ReadFile(StatePath(root)));
  auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return absl::DataLossError(absl::StrCat(StatePath(root), ": not valid JSON"));
  }
  NodeState s;
  s.manager = j.value("role", "") == "manager";
  s.listen_addr = j.value("listen_addr", "");
  s.advertise_addr = j.value("advertise_addr", "");
  s.data_path_port = j.value("data_path_port", 4789u);
  if (j.contains("managers") && j["managers"].is_array()) {
    for (const auto& m : j["managers"]) {
      if (m.is_string()) s.managers.push_back(m.get<std::string>());
    }
  }
  return s;
}

absl::Status SaveNodeState(const std::string& root, const NodeState& s) {
  nlohmann::json j;
  j["role"] = s.manager ? "manager" : "worker";
  j["listen_addr"] = s.listen_addr;
  j["advertise_addr"] = s.advertise_addr;
  j["managers"] = s.managers;
  j["data_path_port"] = s.data_path_port;
  RETURN_IF_ERROR(base::WriteFileAtomic(StatePath(root), j.dump(2) + "\n", 0600));
  return base::FsyncDir(SwarmDir(root));
}

absl::Status SaveCertificates(const std::string& root, const manager::ca::TlsMaterial& tls) {
  std::error_code ec;
  fs::create_directories(CertDir(root), ec);
  if (ec) return absl::InternalError(absl::StrCat("creating ", CertDir(root), ": ", ec.message()));
  fs::permissions(SwarmDir(root), fs::perms::owner_all, ec);
  RETURN_IF_ERROR(base::WriteFileAtomic(CertDir(root) + "/root.crt", tls.root_pem));
  RETURN_IF_ERROR(base::WriteFileAtomic(CertDir(root) + "/node.crt", tls.cert_pem));
  return base::WriteFileAtomic(CertDir(root) + "/node.key", tls.key_pem, 0600);
}

absl::StatusOr<manager::ca::TlsMaterial> LoadCertificates(const std::string& root) {
  manager::ca::TlsMaterial tls;
  ASSIGN_OR_RETURN(tls.root_pem, base::ReadFile(CertDir(root) + "/root.crt"));
  ASSIGN_OR_RETURN(tls.cert_pem, base::ReadFile(CertDir(root) + "/node.crt"));
  ASSIGN_OR_RETURN(tls.key_pem, base::ReadFile(CertDir(root) + "/node.key"));
  return tls;
}

absl::Status ReplaceCertificates(const std::string& root, const manager::ca::TlsMaterial& tls) {
  const std::string next = SwarmDir(root) + "/certificates.new";
  std::error_code ec;
  fs::remove_all(next, ec);  // leftovers of an interrupted replacement
  if (!fs::exists(CertDir(root), ec)) return SaveCertificates(root, tls);
  fs::create_directories(next, ec);
  if (ec) return absl::InternalError(absl::StrCat("creating ", next, ": ", ec.message()));
  RETURN_IF_ERROR(base::WriteFileAtomic(next + "/root.crt", tls.root_pem));
  RETURN_IF_ERROR(base::WriteFileAtomic(next + "/node.crt", tls.cert_pem));
  RETURN_IF_ERROR(base::WriteFileAtomic(next + "/node.key", tls.key_pem, 0600));
  RETURN_IF_ERROR(base::FsyncDir(next));
  if (::renameat2(AT_FDCWD, next.c_str(), AT_FDCWD, CertDir(root).c_str(), RENAME_EXCHANGE) != 0) {
    return base::ErrnoStatus(errno, "exchanging ", next);
  }
  RETURN_IF_ERROR(base::FsyncDir(SwarmDir(root)));
  fs::remove_all(next, ec);  // now the old set
  return absl::OkStatus();
}

absl::Status RemoveRaftState(const std::string& root) {
  std::error_code ec;
  fs::remove(SwarmDir(root) + "/raft-id", ec);
  if (ec) return absl::InternalError(absl::StrCat("removing raft-id: ", ec.message()));
  fs::remove_all(SwarmDir(root) + "/raft", ec);
  if (ec) return absl::InternalError(absl::StrCat("removing raft state: ", ec.message()));
  return base::FsyncDir(SwarmDir(root));
}

absl::Status RemoveSwarmState(const std::string& root) {
  std::error_code ec;
  fs::remove_all(SwarmDir(root), ec);
  if (ec) return absl::InternalError(absl::StrCat("removing ", SwarmDir(root), ": ", ec.message()));
  return absl::OkStatus();
}

absl::StatusOr<std::string> NormalizeAddr(const std::string& flag, const std::string& addr,
                                          int default_port) {
  std::string host = addr;
  std::string port_text;
  if (auto colon = addr.rfind(':'); colon != std::string::npos) {
    host = addr.substr(0, colon);
    port_text = addr.substr(colon + 1);
  }
  in_addr a{};
  if (host.empty() || ::inet_pton(AF_INET, host.c_str(), &a) != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, ": '", addr, "' is not an IPv4 address or IPv4:port"));
  }
  int port = default_port;
  if (!port_text.empty() && (!absl::SimpleAtoi(port_text, &port) || port < 1 || port > 65535)) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, ": port '", port_text, "' is not a number in 1-65535"));
  }
  return absl::StrCat(host, ":", port);
}

absl::StatusOr<std::string> DefaultAdvertiseAddr(const std::string& listen_addr) {
  auto colon = listen_addr.rfind(':');
  std::string host = listen_addr.substr(0, colon);
  std::string port = listen_addr.substr(colon + 1);
  if (host != "0.0.0.0") return listen_addr;
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) return base::ErrnoStatus(errno, "getifaddrs");
  std::string found;
  for (ifaddrs* i = list; i != nullptr && found.empty(); i = i->ifa_next) {
    if (i->ifa_addr == nullptr || i->ifa_addr->sa_family != AF_INET) continue;
    if ((i->ifa_flags & IFF_LOOPBACK) || !(i->ifa_flags & IFF_UP)) continue;
    char buf[INET_ADDRSTRLEN];
    auto* sin = reinterpret_cast<sockaddr_in*>(i->ifa_addr);
    if (::inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof(buf)) != nullptr) found = buf;
  }
  ::freeifaddrs(list);
  if (found.empty()) {
    return absl::InvalidArgumentError(
        "advertise_addr: the listen address is 0.0.0.0 and this host has no non-loopback IPv4 "
        "address to advertise; pass --advertise-addr");
  }
  return absl::StrCat(found, ":", port);
}

}  // namespace shoal::daemon
