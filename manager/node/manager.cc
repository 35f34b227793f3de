#include "manager/node/manager.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/file.h"
#include "base/log.h"
#include "base/status.h"
#include "base/unique_fd.h"
#include "manager/ca/authz.h"
#include "manager/ca/ca_service.h"
#include "manager/ca/tls.h"
#include "manager/controlapi/control_service.h"
#include "manager/dispatcher/dispatcher.h"
#include "manager/dispatcher/service.h"
#include "manager/leader/allocator_component.h"
#include "manager/leader/components.h"
#include "manager/leader/loop.h"
#include "manager/leader/role_manager.h"
#include "manager/node/forwarding_ca.h"
#include "manager/node/forwarding_control.h"
#include "manager/node/membership_service.h"

namespace shoal::manager::node {
namespace {

namespace fs = std::filesystem;

constexpr absl::Duration kRpcTimeout = absl::Seconds(10);
// How often the leader compares the raft view of the managers with Node.manager_status.
constexpr absl::Duration kManagerStatusPeriod = absl::Milliseconds(250);

absl::Status FromGrpc(const grpc::Status& s, absl::string_view what) {
  if (s.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()),
                      absl::StrCat(what, ": ", s.error_message()));
}

// Resolves port 0 to a free port now: raft members advertise their address before the gRPC
// server (which needs the raft service registered first) is built.
absl::StatusOr<std::string> ConcreteAddress(const std::string& listen) {
  std::pair<std::string, std::string> hp = absl::StrSplit(listen, absl::MaxSplits(':', 1));
  int port = 0;
  if (hp.second.empty() || !absl::SimpleAtoi(hp.second, &port) || port < 0 || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("listen_addr: want host:port (IPv4), got '", listen, "'"));
  }
  if (port != 0) return listen;
  base::UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return base::ErrnoStatus(errno, "socket");
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  if (::inet_pton(AF_INET, hp.first.c_str(), &sa.sin_addr) != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("listen_addr: '", hp.first, "' is not an IPv4 address"));
  }
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) {
    return base::ErrnoStatus(errno, "bind ", listen);
  }
  socklen_t len = sizeof(sa);
  if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&sa), &len) != 0) {
    return base::ErrnoStatus(errno, "getsockname");
  }
  return absl::StrCat(hp.first, ":", ntohs(sa.sin_port));
}

std::string CertDir(const std::string& state) { return state + "/certificates"; }

// SessionMessage.managers: the managers as the leader records them (Node.manager_status),
// the leader first, then the reachable ones, then the rest (an agent tries them in order).
std::vector<api::WeightedPeer> ManagerPeers(const store::ReadTx& view) {
  std::vector<std::pair<int, api::WeightedPeer>> ranked;
  for (const auto& n : view.Find<api::Node>(store::All())) {
    const api::ManagerStatus& ms = n->manager_status();
    if (!n->has_manager_status() || ms.addr().empty()) continue;
    api::WeightedPeer p;
    p.set_node_id(n->id());
    p.set_addr(ms.addr());
    int rank = ms.leader()                                                       ? 0
               : ms.reachability() == api::ManagerStatus::REACHABILITY_REACHABLE ? 1
                                                                                 : 2;
    p.set_weight(3 - rank);
    ranked.emplace_back(rank, std::move(p));
  }
  std::stable_sort(ranked.begin(), ranked.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<api::WeightedPeer> out;
  for (auto& [rank, p] : ranked) out.push_back(std::move(p));
  return out;
}

absl::Status SaveTls(const std::string& state, const ca::TlsMaterial& tls, uint64_t raft_id) {
  std::error_code ec;
  fs::create_directories(CertDir(state), ec);
  if (ec) return absl::InternalError(absl::StrCat("creating ", CertDir(state), ": ", ec.message()));
  RETURN_IF_ERROR(base::WriteFileAtomic(CertDir(state) + "/root.crt", tls.root_pem));
  RETURN_IF_ERROR(base::WriteFileAtomic(CertDir(state) + "/node.crt", tls.cert_pem));
  RETURN_IF_ERROR(base::WriteFileAtomic(CertDir(state) + "/node.key", tls.key_pem, 0600));
  return base::WriteFileAtomic(state + "/raft-id", absl::StrCat(raft_id));
}

}  // namespace

Manager::Manager(ManagerOptions options) : opts_(std::move(options)) {}

Manager::~Manager() { Stop(); }

absl::StatusOr<std::unique_ptr<Manager>> Manager::Start(ManagerOptions options) {
  if (options.state_dir.empty()) return absl::InvalidArgumentError("state_dir: required");
  if (options.clock == nullptr || options.random == nullptr) {
    return absl::InvalidArgumentError("clock and random are required");
  }
  if (options.init && !options.join_addr.empty()) {
    return absl::InvalidArgumentError("init and join_addr are mutually exclusive");
  }
  if (!options.join_addr.empty() && options.join_token.empty() && !options.joined.has_value()) {
    return absl::InvalidArgumentError("join_token: required to join through join_addr");
  }
  std::unique_ptr<Manager> m(new Manager(std::move(options)));
  if (auto s = m->Init(); !s.ok()) {
    m->Stop();
    return s;
  }
  return m;
}

absl::Status Manager::Init() {
  std::error_code ec;
  fs::create_directories(opts_.state_dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("state_dir: ", ec.message()));
  ::chmod(opts_.state_dir.c_str(), 0700);
  ASSIGN_OR_RETURN(address_, ConcreteAddress(opts_.listen_addr));
  advertise_ = opts_.advertise_addr.empty() ? address_ : opts_.advertise_addr;
  proposer_ = std::make_unique<raft::DeferredProposer>();
  store_ = std::make_unique<store::MemoryStore>(proposer_.get(), opts_.clock, opts_.random);

  // A worker keeps certificates in the same place: raft-id says this node was a manager.
  const bool has_state = fs::exists(CertDir(opts_.state_dir) + "/node.key") &&
                         fs::exists(opts_.state_dir + "/raft-id");
  if (has_state) {
    ASSIGN_OR_RETURN(tls_.tls.root_pem, base::ReadFile(CertDir(opts_.state_dir) + "/root.crt"));
    ASSIGN_OR_RETURN(tls_.tls.cert_pem, base::ReadFile(CertDir(opts_.state_dir) + "/node.crt"));
    ASSIGN_OR_RETURN(tls_.tls.key_pem, base::ReadFile(CertDir(opts_.state_dir) + "/node.key"));
    ASSIGN_OR_RETURN(std::string id, base::ReadFile(opts_.state_dir + "/raft-id"));
    if (!absl::SimpleAtoi(id, &raft_id_)) return absl::DataLossError("raft-id: corrupt");
    ASSIGN_OR_RETURN(ca::RootCA root, ca::RootCA::FromPem(tls_.tls.root_pem, ""));
    ASSIGN_OR_RETURN(tls_.identity,
                     root.VerifyNodeCertificate(tls_.tls.cert_pem, opts_.clock->Now()));
    RETURN_IF_ERROR(StartRaft(raft_id_, {}, {}));
    return StartServers();
  }
  if (opts_.init) {
    ASSIGN_OR_RETURN(ca::ClusterBootstrap boot,
                     ca::PrepareCluster(*opts_.clock, *opts_.random, opts_.node_cert_expiry));
    tls_ = boot.self;
    raft_id_ = 0;
    while (raft_id_ == 0) raft_id_ = opts_.random->Uint64();
    api::RaftMember self;
    self.set_raft_id(raft_id_);
    self.set_node_id(tls_.identity.node_id);
    self.set_addr(advertise_);
    RETURN_IF_ERROR(StartRaft(raft_id_, {self}, {}));
    absl::Time deadline = absl::Now() + absl::Seconds(30);  // real time: raft ticks in real time
    while (!raft_->IsLeader()) {
      if (absl::Now() > deadline) return absl::DeadlineExceededError("no raft leadership");
      absl::SleepFor(absl::Milliseconds(10));
    }
    RETURN_IF_ERROR(ca::StoreCluster(*store_, boot));
    RETURN_IF_ERROR(SaveTls(opts_.state_dir, tls_.tls, raft_id_));
    return StartServers();
  }
  if (opts_.join_addr.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("state_dir ", opts_.state_dir, " holds no cluster state; init or join"));
  }
  if (opts_.joined.has_value()) {
    tls_ = *opts_.joined;
  } else {
    ASSIGN_OR_RETURN(tls_, ca::Join(opts_.join_addr, opts_.join_token, *opts_.clock));
  }
  if (tls_.identity.role != ca::Role::kManager) {
    return absl::InvalidArgumentError("join_token: a worker token cannot join a manager");
  }
  // RaftMembership.Join on the leader (follow the redirect once or twice).
  std::string target = opts_.join_addr;
  api::JoinResponse resp;
  for (int attempt = 0;; ++attempt) {
    auto stub =
        api::RaftMembership::NewStub(ca::DialManager(target, ca::ChannelCredentials(tls_.tls)));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + absl::ToChronoMilliseconds(kRpcTimeout));
    api::JoinRequest req;
    req.set_addr(advertise_);
    grpc::Status s = stub->Join(&ctx, req, &resp);
    if (s.ok()) break;
    auto it = ctx.GetServerTrailingMetadata().find(kLeaderAddrMetadata);
    if (s.error_code() != grpc::StatusCode::FAILED_PRECONDITION || attempt >= 3 ||
        it == ctx.GetServerTrailingMetadata().end()) {
      return FromGrpc(s, absl::StrCat("joining raft through ", target));
    }
    target = std::string(it->second.data(), it->second.size());
  }
  raft_id_ = resp.raft_id();
  RETURN_IF_ERROR(SaveTls(opts_.state_dir, tls_.tls, raft_id_));
  RETURN_IF_ERROR(StartRaft(raft_id_, {}, {resp.members().begin(), resp.members().end()}));
  return StartServers();
}

absl::Status Manager::StartRaft(uint64_t raft_id, std::vector<api::RaftMember> bootstrap,
                                std::vector<api::RaftMember> peers) {
  raft::NodeOptions o;
  o.id = raft_id;
  o.addr = advertise_;
  o.dir = opts_.state_dir + "/raft";
  o.tick = opts_.tick;
  o.bootstrap = std::move(bootstrap);
  o.peers = std::move(peers);
  // Raft traffic is mTLS like every other RPC.
  o.transport.channel_credentials = ca::ChannelCredentials(tls_.tls);
  o.transport.ssl_target_name = ca::kManagerServerName;
  ASSIGN_OR_RETURN(raft_, raft::RaftNode::Create(std::move(o), store_.get()));
  proposer_->Set(raft_.get());
  raft_->Start();
  return absl::OkStatus();
}

absl::Status Manager::StartServers() {
  auto root = ca::RootCA::FromPem(tls_.tls.root_pem, "");
  if (!root.ok()) return root.status();
  ca::Authorizer::Options ao;
  ao.root = std::make_shared<const ca::RootCA>(*std::move(root));
  ao.cluster_id = tls_.identity.cluster_id;
  ao.clock = opts_.clock;
  store::MemoryStore* st = store_.get();
  ao.is_removed = [st](const std::string& id) { return ca::IsRemovedNode(st->View(), id); };

  dispatcher::DispatcherOptions dopts;
  dopts.heartbeat_period = opts_.heartbeat_period;
  dopts.manager_id = tls_.identity.node_id;
  dopts.managers = [st] { return ManagerPeers(st->View()); };
  dispatcher_ =
      std::make_unique<dispatcher::Dispatcher>(*store_, *opts_.clock, *opts_.random, dopts);
  services_.push_back(std::make_unique<MembershipService>(*raft_, *opts_.random));
  services_.push_back(std::make_unique<ca::CAService>(*store_));
  node_ca_ = std::make_unique<ca::NodeCAService>(*store_, *opts_.clock, *opts_.random);
  auto leader = [this] {
    ForwardingControl::Leader l;
    l.is_self = raft_->IsLeader();
    if (!l.is_self) l.address = leader_address();
    return l;
  };
  auto to_leader = std::make_shared<LeaderChannel>(tls_.tls);  // Control and NodeCA share it
  services_.push_back(std::make_unique<ForwardingNodeCA>(*node_ca_, leader, to_leader));
  services_.push_back(std::make_unique<dispatcher::DispatcherService>(
      *dispatcher_, dispatcher::CertificateIdentity()));
  control_ = std::make_unique<controlapi::ControlService>(*store_, *opts_.random, opts_.clock);
  // Demotions are judged on the live raft view (SwarmKit: membership + transport.Active).
  control_->SetRaftMembers([this] {
    std::vector<controlapi::RaftMemberView> out;
    raft::NodeStatus st = raft_->Status();
    for (const raft::PeerStatus& p : raft_->Peers()) {
      controlapi::RaftMemberView v;
      v.raft_id = p.raft_id;
      v.self = p.self;
      v.reachable = p.self || p.reachability == raft::Reachability::kReachable;
      for (const auto& m : st.members) {
        if (m.raft_id() == p.raft_id) v.node_id = m.node_id();
      }
      out.push_back(std::move(v));
    }
    return out;
  });
  services_.push_back(std::make_unique<ForwardingControl>(*control_, leader, to_leader));

  grpc::ServerBuilder builder;
  builder.AddListeningPort(
      address_, ca::ServerCredentials(tls_.tls, std::make_shared<ca::Authorizer>(ao)), &port_);
  builder.SetMaxReceiveMessageSize(-1);
  builder.RegisterService(raft_->service());
  for (auto& s : services_) builder.RegisterService(s.get());
  server_ = builder.BuildAndStart();
  if (server_ == nullptr || port_ == 0) {
    return absl::UnavailableError(absl::StrCat("listen_addr: cannot listen on ", address_));
  }
  if (!opts_.control_socket.empty()) {
    std::error_code ec;
    fs::remove(opts_.control_socket, ec);
    grpc::ServerBuilder local;
    local.AddListeningPort("unix:" + opts_.control_socket, grpc::InsecureServerCredentials());
    local.RegisterService(services_.back().get());  // Control
    local_server_ = local.BuildAndStart();
    if (local_server_ == nullptr) {
      return absl::UnavailableError(
          absl::StrCat("control_socket: cannot listen on ", opts_.control_socket));
    }
    ::chmod(opts_.control_socket.c_str(), 0600);
  }
  monitor_ = std::thread([this] { MonitorLoop(); });
  return absl::OkStatus();
}

void Manager::PublishManagerStatus() {
  raft::NodeStatus st = raft_->Status();
  std::map<uint64_t, raft::Reachability> seen;
  for (const raft::PeerStatus& p : raft_->Peers()) {
    seen[p.raft_id] = p.self ? raft::Reachability::kReachable : p.reachability;
  }
  // What every node's manager_status should be; written only where it differs, so a steady
  // cluster costs no raft writes.
  std::map<std::string, std::optional<api::ManagerStatus>> changes;
  auto view = store_->View();
  std::set<std::string> members;
  for (const api::RaftMember& m : st.members) {
    if (m.node_id().empty()) continue;
    members.insert(m.node_id());
    auto node = view.Get<api::Node>(m.node_id());
    if (node == nullptr) continue;
    api::ManagerStatus want;
    want.set_raft_id(m.raft_id());
    want.set_addr(m.addr());
    want.set_leader(m.raft_id() == st.leader);
    switch (seen.contains(m.raft_id()) ? seen[m.raft_id()] : raft::Reachability::kUnknown) {
      case raft::Reachability::kReachable:
        want.set_reachability(api::ManagerStatus::REACHABILITY_REACHABLE);
        break;
      case raft::Reachability::kUnreachable:
        want.set_reachability(api::ManagerStatus::REACHABILITY_UNREACHABLE);
        break;
      case raft::Reachability::kUnknown:
        // A leader judges a peer only after leading for an election timeout: until then the
        // recorded value stands (no flapping through UNKNOWN at every leader change).
        want.set_reachability(node->manager_status().reachability());
        break;
    }
    if (node->manager_status().SerializeAsString() != want.SerializeAsString()) {
      changes[node->id()] = want;
    }
  }
  // Nodes that left the raft membership (demoted, removed) no longer have a manager status.
  for (const auto& n : view.Find<api::Node>(store::All())) {
    if (n->has_manager_status() && !members.contains(n->id())) changes[n->id()] = std::nullopt;
  }
  if (changes.empty()) return;
  auto r = store_->Update([&](store::Tx& tx) -> absl::Status {
    for (const auto& [id, want] : changes) {
      auto node = tx.Get<api::Node>(id);
      if (node == nullptr) continue;
      api::Node next = *node;
      if (want.has_value()) {
        *next.mutable_manager_status() = *want;
      } else {
        next.clear_manager_status();
      }
      RETURN_IF_ERROR(tx.Update(next));
    }
    return absl::OkStatus();
  });
  if (!r.ok()) {
    base::Logger("manager")->warn("publishing manager status: {}",
                                  std::string(r.status().message()));
  }
}

void Manager::MonitorLoop() {
  absl::Time next_status = absl::InfinitePast();
  while (!stop_.load()) {
    bool leader = raft_->IsLeader();
    if (leader && !leading_) BecomeLeader();
    if (!leader && leading_) StopLeading();
    if (leader && absl::Now() >= next_status) {
      PublishManagerStatus();
      next_status = absl::Now() + kManagerStatusPeriod;
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
  if (leading_) StopLeading();
}

void Manager::BecomeLeader() {
  auto log = base::Logger("manager");
  log->info("raft member {} became the leader: starting the leader components", raft_id_);
  if (auto s = dispatcher_->Start(); !s.ok()) {
    log->warn("dispatcher start: {}", std::string(s.message()));
  }
  components_.clear();
  components_.push_back(std::make_unique<leader::AllocatorComponent>());
  components_.push_back(std::make_unique<leader::SchedulerComponent>(*opts_.clock));
  components_.push_back(
      std::make_unique<leader::OrchestratorComponent>(*opts_.clock, *opts_.random));
  membership_ = std::make_unique<leader::RaftNodeMembership>(*raft_);
  components_.push_back(std::make_unique<leader::RoleManager>(*membership_));
  std::vector<leader::Component*> raw;
  for (auto& c : components_) raw.push_back(c.get());
  loop_ = std::make_unique<leader::LeaderLoop>(*store_, *opts_.clock, raw);
  loop_->Start();
  leading_ = true;
}

void Manager::StopLeading() {
  base::Logger("manager")->info("raft member {} is no longer the leader", raft_id_);
  if (loop_) loop_->Stop();
  loop_.reset();
  components_.clear();
  membership_.reset();
  dispatcher_->Stop();
  leading_ = false;
}

std::string Manager::leader_address() const {
  raft::NodeStatus st = raft_->Status();
  for (const auto& m : st.members) {
    if (m.raft_id() == st.leader) return m.addr();
  }
  return "";
}

absl::Status Manager::HandOverLeadership() {
  if (raft_ == nullptr || !raft_->IsLeader() || raft_->Status().members.size() < 2) {
    return absl::OkStatus();
  }
  return leader::RaftNodeMembership(*raft_).TransferLeadership();
}

absl::StatusOr<std::pair<std::string, std::string>> Manager::JoinTokens() const {
  ASSIGN_OR_RETURN(auto cluster, ca::GetCluster(store_->View()));
  return std::make_pair(cluster->root_ca().join_tokens().worker(),
                        cluster->root_ca().join_tokens().manager());
}

void Manager::Stop() {
  if (stop_.exchange(true)) return;
  if (monitor_.joinable()) monitor_.join();
  if (local_server_) local_server_->Shutdown(std::chrono::system_clock::now());
  if (server_) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  if (raft_) raft_->Stop();
}

}  // namespace shoal::manager::node
