#include "agent/agent.h"

#include <filesystem>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "agent/controller.h"
#include "agent/network.h"
#include "agent/reporter.h"
#include "agent/session.h"
#include "agent/worker.h"
#include "base/log.h"
#include "runtime/images/store.h"

namespace shoal::agent {

namespace {

absl::Status Validate(const AgentOptions& o) {
  auto bad = [](const char* field, const char* why) {
    return absl::InvalidArgumentError(absl::StrCat("agent options: ", field, ": ", why));
  };
  if (o.state_dir.empty() || o.state_dir[0] != '/')
    return bad("state_dir", "absolute path required");
  if (o.exec_root.empty() || o.exec_root[0] != '/')
    return bad("exec_root", "absolute path required");
  if (o.image_root.empty() || o.image_root[0] != '/') {
    return bad("image_root", "absolute path required");
  }
  if (o.monitor_path.empty()) return bad("monitor_path", "required");
  if (!o.dial) return bad("dial", "required");
  if (o.cgroup_parent.empty() || o.cgroup_parent[0] == '/' ||
      o.cgroup_parent.find("..") != std::string::npos) {
    return bad("cgroup_parent", "a relative cgroup path without \"..\" is required");
  }
  if (o.rpc_timeout <= absl::ZeroDuration()) return bad("rpc_timeout", "must be > 0");
  if (o.backoff_initial <= absl::ZeroDuration() || o.backoff_max < o.backoff_initial) {
    return bad("backoff_initial", "need 0 < backoff_initial <= backoff_max");
  }
  return absl::OkStatus();
}

}  // namespace

class Agent::Impl {
 public:
  explicit Impl(AgentOptions o) : opts_(std::move(o)) {}
  ~Impl() { Stop(); }

  absl::Status Init() {
    if (opts_.clock == nullptr) {
      own_clock_ = std::make_unique<base::RealClock>();
      opts_.clock = own_clock_.get();
    }
    if (opts_.random == nullptr) {
      own_random_ = std::make_unique<base::SystemRandom>();
      opts_.random = own_random_.get();
    }
    api::NodeDescription host = DescribeHost();
    api::NodeDescription& d = opts_.description;
    if (d.hostname().empty()) d.set_hostname(host.hostname());
    if (!d.has_platform()) *d.mutable_platform() = host.platform();
    if (!d.has_resources()) *d.mutable_resources() = host.resources();
    for (const std::string& dir : {opts_.state_dir + "/containers", opts_.exec_root + "/containers",
                                   opts_.state_dir + "/volumes"}) {
      std::error_code ec;
      std::filesystem::create_directories(dir, ec);
      if (ec) return absl::InternalError(absl::StrCat("create ", dir, ": ", ec.message()));
    }
    auto store = runtime::images::Store::Open(opts_.image_root);
    if (!store.ok()) return store.status();
    images_ = *std::move(store);
    ExecEnv env;
    env.options = &opts_;
    env.images = images_.get();
    if (opts_.networking) {
      net_ = std::make_unique<Networking>(opts_);
      env.net = net_.get();
    }
    worker_ = std::make_unique<Worker>(std::move(env), reporter_, *opts_.clock);
    adopted_ = worker_->AdoptExisting();
    if (!adopted_.empty()) {
      base::Logger("agent")->info("agent: re-adopted {} container(s)", adopted_.size());
    }
    session_ =
        std::make_unique<SessionLoop>(opts_, *opts_.clock, *opts_.random, reporter_, *worker_);
    session_->Start();
    return absl::OkStatus();
  }

  void Stop() {
    std::lock_guard<std::mutex> lock(stop_mu_);
    if (session_) session_->Stop();
    if (worker_) worker_->Close();
  }

  AgentStatus status() const {
    AgentStatus st;
    if (session_) session_->Fill(&st);
    st.tasks = reporter_.States();
    st.adopted = adopted_;
    return st;
  }

 private:
  AgentOptions opts_;
  std::unique_ptr<base::RealClock> own_clock_;
  std::unique_ptr<base::SystemRandom> own_random_;
  std::unique_ptr<runtime::images::Store> images_;
  std::unique_ptr<Networking> net_;  // outlives the worker
  StatusReporter reporter_;
  std::unique_ptr<Worker> worker_;
  std::unique_ptr<SessionLoop> session_;
  std::vector<std::string> adopted_;
  std::mutex stop_mu_;
};

absl::StatusOr<std::unique_ptr<Agent>> Agent::Start(AgentOptions options) {
  if (absl::Status s = Validate(options); !s.ok()) return s;
  auto impl = std::make_unique<Impl>(std::move(options));
  if (absl::Status s = impl->Init(); !s.ok()) return s;
  return std::unique_ptr<Agent>(new Agent(std::move(impl)));
}

Agent::Agent(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Agent::~Agent() { Stop(); }
void Agent::Stop() {
  if (impl_) impl_->Stop();
}
AgentStatus Agent::status() const { return impl_->status(); }

}  // namespace shoal::agent
