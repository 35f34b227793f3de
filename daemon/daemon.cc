#include "daemon/daemon.h"

#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "base/log.h"
#include "base/status.h"
#include "daemon/swarm_service.h"
#include "manager/ca/join.h"
#include "manager/ca/root_ca.h"

namespace shoal::daemon {
namespace {

constexpr char kNotInSwarm[] =
    "this node is not part of a swarm: run `shoal swarm init` to create one or "
    "`shoal swarm join` to join one";
constexpr char kWorkerNode[] =
    "this node is not a swarm manager: worker nodes cannot be used to view or modify cluster "
    "state; run the command on a manager node or promote this node to a manager";

std::string ErrText(const absl::Status& s) { return std::string(s.message()); }

}  // namespace

absl::StatusOr<std::unique_ptr<Daemon>> Daemon::Start(DaemonOptions options) {
  if (options.clock == nullptr || options.random == nullptr) {
    return absl::InvalidArgumentError("clock and random are required");
  }
  std::unique_ptr<Daemon> d(new Daemon(std::move(options)));
  d->SetControlTarget(nullptr, kNotInSwarm);
  if (HasNodeState(d->opts_.root)) {
    std::lock_guard<std::mutex> lock(d->mu_);
    if (auto s = d->Resume(); !s.ok()) {
      d->StopComponents();
      return absl::Status(s.code(), absl::StrCat("resuming the node from ", SwarmDir(d->opts_.root),
                                                 ": ", s.message()));
    }
  } else {
    base::Logger("daemon")->info(
        "not part of a swarm yet: waiting for `shoal swarm init` or `shoal swarm join`");
  }
  if (auto s = d->ServeSocket(); !s.ok()) {
    d->Stop();
    return s;
  }
  return d;
}

Daemon::~Daemon() { Stop(); }

absl::Status Daemon::ServeSocket() {
  std::string path = socket_path();
  std::error_code ec;
  std::filesystem::remove(path, ec);
  services_.push_back(std::make_unique<SwarmService>(*this));
  services_.push_back(std::make_unique<ControlProxy>([this] { return ControlTarget(); }));
  grpc::ServerBuilder b;
  b.AddListeningPort("unix:" + path, grpc::InsecureServerCredentials());
  b.SetMaxReceiveMessageSize(-1);
  for (auto& s : services_) b.RegisterService(s.get());
  // Tighten the umask while the socket is created so it is never reachable by others.
  mode_t old = ::umask(0077);
  server_ = b.BuildAndStart();
  ::umask(old);
  if (server_ == nullptr) return absl::UnavailableError(absl::StrCat("cannot listen on ", path));
  if (::chmod(path.c_str(), 0600) != 0) return base::ErrnoStatus(errno, "chmod ", path);
  base::Logger("daemon")->info("serving the Swarm and Control APIs on {}", path);
  return absl::OkStatus();
}

void Daemon::SetControlTarget(std::shared_ptr<api::Control::Stub> stub, std::string why_not) {
  std::lock_guard<std::mutex> lock(target_mu_);
  control_stub_ = std::move(stub);
  why_not_ = std::move(why_not);
}

ControlProxy::Target Daemon::ControlTarget() {
  std::lock_guard<std::mutex> lock(target_mu_);
  return {control_stub_, why_not_};
}

manager::node::ManagerOptions Daemon::ManagerBase(const NodeState& st) {
  manager::node::ManagerOptions o;
  o.state_dir = SwarmDir(opts_.root);
  o.listen_addr = st.listen_addr;
  o.advertise_addr = st.advertise_addr;
  o.control_socket = internal_control_socket();
  o.tick = opts_.raft_tick;
  o.clock = opts_.clock;
  o.random = opts_.random;
  return o;
}

absl::Status Daemon::StartManager(manager::node::ManagerOptions o) {
  ASSIGN_OR_RETURN(manager_, manager::node::Manager::Start(std::move(o)));
  node_id_ = manager_->identity().node_id;
  cluster_id_ = manager_->identity().cluster_id;
  SetControlTarget(api::Control::NewStub(grpc::CreateChannel("unix:" + internal_control_socket(),
                                                             grpc::InsecureChannelCredentials())),
                   "");
  return absl::OkStatus();
}

absl::Status Daemon::StartAgent(const manager::ca::TlsMaterial& tls,
                                const std::vector<std::string>& managers) {
  if (opts_.agent.disabled) return absl::OkStatus();
  // A manager's agent also starts with every raft member it knows (restored from its raft
  // state): after a restart the leader may be any of them, and node.json may name only this
  // node (the one that ran `swarm init`).
  std::vector<std::string> dial = managers;
  if (manager_ != nullptr) {
    for (const auto& m : manager_->RaftStatus().members) {
      if (!m.addr().empty() && std::find(dial.begin(), dial.end(), m.addr()) == dial.end()) {
        dial.push_back(m.addr());
      }
    }
  }
  auto agent = daemon::StartAgent(opts_.agent, tls, dial);
  if (!agent.ok()) {
    // The node stays in the swarm (its manager role works without it); `shoal swarm info`
    // and the log say why it runs no tasks.
    base::Logger("daemon")->error("the worker agent did not start: {}", ErrText(agent.status()));
    return agent.status();
  }
  agent_ = *std::move(agent);
  return absl::OkStatus();
}

absl::Status Daemon::Resume() {
  ASSIGN_OR_RETURN(state_, LoadNodeState(opts_.root));
  auto log = base::Logger("daemon");
  if (state_.manager) {
    RETURN_IF_ERROR(StartManager(ManagerBase(state_)));
    log->info("resumed as manager {} of cluster {} (raft member {}, {})", node_id_, cluster_id_,
              manager_->raft_id(), state_.advertise_addr);
    active_ = true;
    (void)StartAgent(manager_->tls(), state_.managers);
    StartRenewer({manager_->identity(), manager_->tls()});
    return absl::OkStatus();
  }
  ASSIGN_OR_RETURN(manager::ca::TlsMaterial tls, LoadCertificates(opts_.root));
  ASSIGN_OR_RETURN(manager::ca::RootCA root, manager::ca::RootCA::FromPem(tls.root_pem, ""));
  ASSIGN_OR_RETURN(manager::ca::NodeIdentity id,
                   root.VerifyNodeCertificate(tls.cert_pem, opts_.clock->Now()));
  node_id_ = id.node_id;
  cluster_id_ = id.cluster_id;
  SetControlTarget(nullptr, kWorkerNode);
  active_ = true;
  log->info("resumed as worker {} of cluster {}", node_id_, cluster_id_);
  (void)StartAgent(tls, state_.managers);
  StartRenewer({id, tls});
  return absl::OkStatus();
}

absl::Status Daemon::NotInSwarm() {
  if (active_) {
    return absl::FailedPreconditionError(
        "this node is already part of a swarm: use `shoal swarm leave` to leave it and join "
        "another one");
  }
  // Leftovers of an init/join interrupted before node.json was written.
  return RemoveSwarmState(opts_.root);
}

absl::StatusOr<NodeState> Daemon::Addresses(const std::string& listen,
                                            const std::string& advertise) {
  NodeState st;
  st.data_path_port = opts_.data_path_port;
  ASSIGN_OR_RETURN(
      st.listen_addr,
      NormalizeAddr("--listen-addr", listen.empty() ? opts_.listen_addr : listen, 2377));
  std::string adv = advertise.empty() ? opts_.advertise_addr : advertise;
  std::string port = st.listen_addr.substr(st.listen_addr.rfind(':') + 1);
  if (adv.empty()) {
    ASSIGN_OR_RETURN(st.advertise_addr, DefaultAdvertiseAddr(st.listen_addr));
  } else {
    ASSIGN_OR_RETURN(st.advertise_addr, NormalizeAddr("--advertise-addr", adv, std::stoi(port)));
  }
  if (st.advertise_addr.rfind("0.0.0.0:", 0) == 0) {
    return absl::InvalidArgumentError(
        "--advertise-addr: 0.0.0.0 cannot be advertised; give an address peers can reach");
  }
  return st;
}

absl::StatusOr<api::SwarmInitResponse> Daemon::Init(const api::SwarmInitRequest& req) {
  std::lock_guard<std::mutex> lock(mu_);
  RETURN_IF_ERROR(NotInSwarm());
  ASSIGN_OR_RETURN(NodeState st, Addresses(req.listen_addr(), req.advertise_addr()));
  manager::node::ManagerOptions o = ManagerBase(st);
  o.init = true;
  o.node_cert_expiry = opts_.node_cert_expiry;
  st.manager = true;
  st.managers = {st.advertise_addr};
  absl::Status s = StartManager(std::move(o));
  if (s.ok()) s = SaveNodeState(opts_.root, st);
  if (!s.ok()) {
    StopComponents();
    (void)RemoveSwarmState(opts_.root);
    return s;
  }
  state_ = st;
  active_ = true;
  base::Logger("daemon")->info("initialized cluster {}: this node {} is its first manager ({})",
                               cluster_id_, node_id_, st.advertise_addr);
  (void)StartAgent(manager_->tls(), st.managers);
  StartRenewer({manager_->identity(), manager_->tls()});
  api::SwarmInitResponse resp;
  resp.set_node_id(node_id_);
  return resp;
}

absl::StatusOr<api::SwarmJoinResponse> Daemon::Join(const api::SwarmJoinRequest& req) {
  std::lock_guard<std::mutex> lock(mu_);
  RETURN_IF_ERROR(NotInSwarm());
  if (req.token().empty()) return absl::InvalidArgumentError("--token: required");
  if (req.remote_addr().empty()) {
    return absl::InvalidArgumentError("remote address: required (a manager's host:port)");
  }
  ASSIGN_OR_RETURN(std::string remote, NormalizeAddr("remote address", req.remote_addr(), 2377));
  // The token decides the role: the certificate the CA issues for it says which.
  ASSIGN_OR_RETURN(manager::ca::JoinResult joined,
                   manager::ca::Join(remote, req.token(), *opts_.clock));
  NodeState st;
  st.data_path_port = opts_.data_path_port;
  absl::Status s;
  if (joined.identity.role == manager::ca::Role::kManager) {
    auto addrs = Addresses(req.listen_addr(), req.advertise_addr());
    if (!addrs.ok()) return addrs.status();
    st = *addrs;
    st.manager = true;
    manager::node::ManagerOptions o = ManagerBase(st);
    o.join_addr = remote;
    o.join_token = req.token();
    o.joined = joined;
    s = StartManager(std::move(o));
    st.managers = {remote, st.advertise_addr};
  } else {
    st.managers = {remote};
    s = SaveCertificates(opts_.root, joined.tls);
    node_id_ = joined.identity.node_id;
    cluster_id_ = joined.identity.cluster_id;
    SetControlTarget(nullptr, kWorkerNode);
  }
  if (s.ok()) s = SaveNodeState(opts_.root, st);
  if (!s.ok()) {
    StopComponents();
    (void)RemoveSwarmState(opts_.root);
    return s;
  }
  state_ = st;
  active_ = true;
  base::Logger("daemon")->info("joined cluster {} as {} {}", cluster_id_,
                               st.manager ? "manager" : "worker", node_id_);
  (void)StartAgent(joined.tls, st.managers);
  StartRenewer(joined);
  api::SwarmJoinResponse resp;
  resp.set_node_id(node_id_);
  resp.set_role(st.manager ? api::NODE_ROLE_MANAGER : api::NODE_ROLE_WORKER);
  return resp;
}

absl::Status Daemon::Leave(const api::SwarmLeaveRequest& req) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!active_) return absl::FailedPreconditionError("this node is not part of a swarm");
    if (state_.manager && !req.force()) {
      return absl::FailedPreconditionError(
          "this node is a manager: leaving removes it without shrinking the raft membership, so "
          "the remaining managers need a majority of the old count to keep working (demote it "
          "first with `shoal node demote`); use --force to leave anyway");
    }
  }
  TakeRenewer().reset();  // not under mu_: a renewal in progress takes mu_ to install itself
  std::lock_guard<std::mutex> lock(mu_);
  if (!active_) return absl::FailedPreconditionError("this node is not part of a swarm");
  StopComponents();
  RETURN_IF_ERROR(RemoveSwarmState(opts_.root));
  base::Logger("daemon")->info("left the swarm (node {})", node_id_);
  active_ = false;
  state_ = NodeState{};
  node_id_.clear();
  cluster_id_.clear();
  return absl::OkStatus();
}

api::SwarmInfoResponse Daemon::Info() {
  std::lock_guard<std::mutex> lock(mu_);
  api::SwarmInfoResponse r;
  r.set_data_path_port(opts_.data_path_port);
  if (!active_) return r;
  r.set_state(api::SwarmInfoResponse::LOCAL_STATE_ACTIVE);
  r.set_node_id(node_id_);
  r.set_cluster_id(cluster_id_);
  r.set_role(state_.manager ? api::NODE_ROLE_MANAGER : api::NODE_ROLE_WORKER);
  r.set_data_path_port(state_.data_path_port);
  r.set_agent_running(agent_ != nullptr && agent_->running());
  r.set_agent_status(agent_ != nullptr      ? agent_->status()
                     : opts_.agent.disabled ? "disabled (--no-agent)"
                                            : "not running (see the daemon log)");
  if (manager_ != nullptr) {
    r.set_advertise_addr(manager_->advertise_address());
    r.set_is_leader(manager_->IsLeader());
    r.set_leader_addr(manager_->leader_address());
    r.set_raft_id(manager_->raft_id());
    for (const auto& m : manager_->RaftStatus().members) r.add_managers(m.addr());
  } else {
    for (const auto& m : state_.managers) r.add_managers(m);
  }
  return r;
}

void Daemon::StartRenewer(const manager::ca::JoinResult& current) {
  CertRenewerOptions o;
  o.clock = opts_.clock;
  o.random = opts_.random;
  o.schedule = opts_.renewal;
  o.managers = [this] { return RenewalManagers(); };
  o.each_poll = [this] { RememberManagers(); };
  o.apply = [this](const manager::ca::JoinResult& r) { return ApplyCertificate(r); };
  o.running_role = [this] {
    std::lock_guard<std::mutex> lock(mu_);
    return state_.manager ? manager::ca::Role::kManager : manager::ca::Role::kWorker;
  };
  renewer_ = std::make_unique<CertRenewer>(std::move(o), current);
  renewer_->Start();
}

std::unique_ptr<CertRenewer> Daemon::TakeRenewer() {
  std::lock_guard<std::mutex> lock(mu_);
  return std::move(renewer_);
}

std::vector<std::string> Daemon::RenewalManagers() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> out;
  auto add = [&](const std::string& a) {
    if (!a.empty() && std::find(out.begin(), out.end(), a) != out.end()) return;
    if (!a.empty()) out.push_back(a);
  };
  if (manager_ != nullptr) {
    // Itself first (it forwards to the leader), then the leader and the other members: a
    // manager the leader just removed from raft may not know the leader any more.
    add(manager_->advertise_address());
    add(manager_->leader_address());
    for (const auto& m : manager_->RaftStatus().members) add(m.addr());
  }
  if (agent_ != nullptr) add(agent_->manager());
  for (const auto& m : state_.managers) add(m);
  return out;
}

void Daemon::RememberManagers() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!active_) return;
  // The managers this node has seen: the one its agent found through the dispatcher's list and,
  // on a manager, the raft members. After a restart the node (and its agent) can reach the
  // cluster through them even if every manager it was started with is gone.
  NodeState st = state_;
  auto add = [&](const std::string& m) {
    if (!m.empty() && std::find(st.managers.begin(), st.managers.end(), m) == st.managers.end()) {
      st.managers.push_back(m);
    }
  };
  if (agent_ != nullptr) add(agent_->manager());
  if (manager_ != nullptr) {
    for (const auto& m : manager_->RaftStatus().members) add(m.addr());
  }
  if (st.managers == state_.managers) return;
  if (auto s = SaveNodeState(opts_.root, st); !s.ok()) {
    base::Logger("daemon")->warn("remembering the managers: {}", ErrText(s));
    return;
  }
  state_ = std::move(st);
}

absl::Status Daemon::ApplyCertificate(const manager::ca::JoinResult& renewed) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!active_ || stopped_) return absl::FailedPreconditionError("not part of a swarm any more");
  if (renewed.identity.node_id != node_id_) {
    return absl::PermissionDeniedError(absl::StrCat(
        "renewed certificate names node ", renewed.identity.node_id, ", this node is ", node_id_));
  }
  // state_.manager is the role this node is in (node.json); manager_ may be missing when a
  // restart on a renewed certificate failed: the next attempt starts it again.
  const bool to_manager = renewed.identity.role == manager::ca::Role::kManager;
  if (to_manager && !state_.manager) return Promote(renewed);
  if (!to_manager && state_.manager) return Demote(renewed);
  if (to_manager) {
    // Same role, manager: its listener and raft transport hold the old certificate, so the
    // manager restarts on the new one (raft state kept; a leader hands leadership over first).
    RETURN_IF_ERROR(ReplaceCertificates(opts_.root, renewed.tls));
    if (manager_ != nullptr && manager_->IsLeader()) {
      absl::Status s = manager_->HandOverLeadership();
      base::Logger("daemon")->info("restarting the leader on its renewed certificate: {}",
                                   s.ok() ? "leadership handed over" : ErrText(s));
    }
    if (manager_ != nullptr) manager_->Stop();
    manager_.reset();
    SetControlTarget(nullptr, "this manager is restarting on its renewed certificate; retry");
    if (absl::Status s = StartManager(ManagerBase(state_)); !s.ok()) {
      base::Logger("daemon")->error("manager restart on the renewed certificate failed: {}",
                                    ErrText(s));
      return s;
    }
  } else {
    RETURN_IF_ERROR(ReplaceCertificates(opts_.root, renewed.tls));
  }
  if (agent_ != nullptr) agent_->SetTls(renewed.tls);
  return absl::OkStatus();
}

absl::Status Daemon::Promote(const manager::ca::JoinResult& renewed) {
  auto log = base::Logger("daemon");
  ASSIGN_OR_RETURN(NodeState st, Addresses("", ""));
  st.manager = true;
  st.data_path_port = state_.data_path_port;
  // Join raft through a manager this node knows (the one its agent talks to first).
  std::vector<std::string> via;
  if (agent_ != nullptr && !agent_->manager().empty()) via.push_back(agent_->manager());
  for (const auto& m : state_.managers) via.push_back(m);
  RETURN_IF_ERROR(ReplaceCertificates(opts_.root, renewed.tls));
  (void)RemoveRaftState(opts_.root);  // a stale one from an earlier demotion would be resumed
  absl::Status s = absl::UnavailableError("no manager address known to join raft through");
  for (const auto& addr : via) {
    manager::node::ManagerOptions o = ManagerBase(st);
    o.join_addr = addr;
    o.joined = renewed;
    s = StartManager(std::move(o));
    if (s.ok()) break;
    log->warn("promotion: joining raft through {}: {}", addr, ErrText(s));
  }
  if (!s.ok()) {
    SetControlTarget(nullptr, kWorkerNode);
    (void)RemoveRaftState(opts_.root);
    return s;
  }
  st.managers = state_.managers;
  if (std::find(st.managers.begin(), st.managers.end(), st.advertise_addr) == st.managers.end()) {
    st.managers.push_back(st.advertise_addr);
  }
  RETURN_IF_ERROR(SaveNodeState(opts_.root, st));
  state_ = st;
  if (agent_ != nullptr) agent_->SetTls(renewed.tls);
  log->info("promoted: this node {} is now a manager (raft member {}, {})", node_id_,
            manager_->raft_id(), st.advertise_addr);
  return absl::OkStatus();
}

absl::Status Daemon::Demote(const manager::ca::JoinResult& renewed) {
  // The leader removed this member from raft before it set the worker role (RoleManager).
  SetControlTarget(nullptr, kWorkerNode);
  if (manager_ != nullptr) manager_->Stop();
  manager_.reset();
  RETURN_IF_ERROR(ReplaceCertificates(opts_.root, renewed.tls));
  NodeState st = state_;
  st.manager = false;
  RETURN_IF_ERROR(SaveNodeState(opts_.root, st));
  state_ = st;
  RETURN_IF_ERROR(RemoveRaftState(opts_.root));
  if (agent_ != nullptr) agent_->SetTls(renewed.tls);
  base::Logger("daemon")->info(
      "demoted: this node {} is now a worker (manager stopped, raft "
      "state removed)",
      node_id_);
  return absl::OkStatus();
}

void Daemon::StopComponents() {
  SetControlTarget(nullptr, kNotInSwarm);
  agent_.reset();
  if (manager_ != nullptr) manager_->Stop();
  manager_.reset();
}

void Daemon::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopped_) return;
    stopped_ = true;
  }
  TakeRenewer().reset();
  // Not under mu_: Shutdown waits for running handlers, which may be waiting for mu_.
  if (server_ != nullptr) {
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  }
  std::lock_guard<std::mutex> lock(mu_);
  StopComponents();
  std::error_code ec;
  std::filesystem::remove(socket_path(), ec);
}

}  // namespace shoal::daemon
